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

vim.api.nvim_create_user_command("ClavmTempo", function(c)
  local bpm = tonumber(c.args)
  if not bpm then
    vim.notify("usage: :ClavmTempo BPM", vim.log.levels.ERROR)
    return
  end
  clavm.tempo(bpm)
end, { nargs = 1, desc = "Set the engine's tempo (beats per minute)" })

vim.api.nvim_create_user_command("ClavmQuant", function(c)
  if c.args == "" then
    vim.notify("clavm: quant " .. tostring(clavm.config.quant or "engine default"))
    return
  end
  local q = tonumber(c.args)
  if c.args == "default" then
    clavm.config.quant = nil
  elseif q and q >= 0 then
    clavm.config.quant = q
  else
    vim.notify("usage: :ClavmQuant BEATS|default", vim.log.levels.ERROR)
  end
end, { nargs = "?", desc = "Where :ClavmSend lands: 0 = the next block, 4 = the next bar of four" })
