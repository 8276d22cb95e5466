-- Commands of the CLAVM plugin; configure with require("clavm").setup({ ... }).
if vim.g.loaded_clavm then
  return
end
vim.g.loaded_clavm = true

local clavm = require("clavm")
clavm.setup(vim.g.clavm or {})

vim.api.nvim_create_user_command("ClavmSend", function(c)
  clavm.send({ bufnr = 0, line1 = c.line1, line2 = c.line2 })
end, { range = "%", desc = "Send the buffer (or the range) to the CLAVM engine" })

vim.api.nvim_create_user_command("ClavmAttach", function()
  clavm.attached[vim.api.nvim_get_current_buf()] = true
end, { desc = "Send this buffer on every write (and change, if enabled)" })

vim.api.nvim_create_user_command("ClavmLive", function(c)
  local arg = c.args
  if arg == "" or arg == "toggle" then
    clavm.config.send_on_change = not clavm.config.send_on_change
  else
    clavm.config.send_on_change = (arg == "on")
  end
  clavm.attached[vim.api.nvim_get_current_buf()] = true
  vim.notify("clavm: send on every change " .. (clavm.config.send_on_change and "on" or "off"))
end, { nargs = "?", complete = function() return { "on", "off", "toggle" } end,
  desc = "Send the buffer on every change (debounced)" })

vim.api.nvim_create_user_command("ClavmParam", function(c)
  local kind, index, value = c.fargs[1], tonumber(c.fargs[2]), tonumber(c.fargs[3])
  if not (index and value) then
    vim.notify("usage: :ClavmParam p|i|cc N VALUE", vim.log.levels.ERROR)
    return
  end
  clavm.param(kind, index, value)
end, { nargs = "+", desc = "Set _p, _i or _cc in the engine" })
