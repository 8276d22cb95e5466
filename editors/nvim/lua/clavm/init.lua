-- CLAVM for Neovim: send the buffer (or a range) to a running CLAVM engine
-- through libclavm_submit.so (shared memory, LuaJIT FFI), show the engine's
-- diagnostics with vim.diagnostic and its timings in a message.
local M = {}
local uv = vim.uv or vim.loop -- Neovim 0.10+ / older (Debian 12 ships 0.7)

local ffi = require("ffi")
ffi.cdef([[
const char *clavm_send_quant(const char *engine, const char *name, const char *code, double quant, int timeout_ms);
void clavm_free(const char *reply);
int clavm_param(const char *engine, int kind, int index, double value);
]])

M.config = {
  -- The engine to talk to (`clavm play --engine NAME`).
  engine = vim.env.CLAVM_ENGINE or "default",
  -- How long to wait for the engine's reply.
  timeout_ms = 1000,
  -- Where a send lands: nil = the engine's --quant, 0 = the next block,
  -- Q = the next multiple of Q beats (1 = the next beat, 4 = the next bar of four).
  quant = nil,
  -- Send a clavm buffer every time it is written.
  send_on_write = true,
  -- Send a clavm buffer on every change (debounced), as the original CLAVM did.
  send_on_change = false,
  debounce_ms = 150,
  -- Path of libclavm_submit.so (default: $CLAVM_SUBMIT_LIB, beside `clavm`, or this repo's target/).
  lib = nil,
  -- Buffers whose names match these Lua patterns are clavm buffers from the start;
  -- any other buffer becomes one with its first :ClavmSend.
  patterns = {},
}

M.ns = vim.api.nvim_create_namespace("clavm")
-- Buffers that send on write/change.
M.attached = {}
-- The last reply (a table), for statuslines and tests.
M.last = nil

local lib = nil

local function exists(path)
  return path and uv.fs_stat(path) ~= nil
end

local function candidates()
  local list = { M.config.lib, vim.env.CLAVM_SUBMIT_LIB }
  local exe = vim.fn.exepath("clavm")
  if exe ~= "" then
    local dir = vim.fn.fnamemodify(vim.fn.resolve(exe), ":h")
    table.insert(list, dir .. "/libclavm_submit.so")
    table.insert(list, dir .. "/../lib/libclavm_submit.so")
  end
  -- This file is editors/nvim/lua/clavm/init.lua in the CLAVM repository.
  local here = debug.getinfo(1, "S").source:sub(2)
  local root = vim.fn.fnamemodify(here, ":h:h:h:h:h")
  table.insert(list, root .. "/target/release/libclavm_submit.so")
  table.insert(list, root .. "/target/debug/libclavm_submit.so")
  return list
end

function M.library()
  if lib then
    return lib
  end
  for _, path in ipairs(candidates()) do
    if exists(path) then
      lib = ffi.load(path)
      M.lib_path = path
      return lib
    end
  end
  error("clavm: libclavm_submit.so not found: build it (cargo build --release -p clavm-submit) or set require('clavm').setup({ lib = ... })")
end

local severities = {
  error = vim.diagnostic.severity.ERROR,
  warning = vim.diagnostic.severity.WARN,
  note = vim.diagnostic.severity.INFO,
}

local function notify(msg, level)
  if level == vim.log.levels.ERROR then
    -- Not vim.notify: at ERROR it raises inside the command (Neovim 0.7), aborting what follows.
    vim.api.nvim_echo({ { msg, "ErrorMsg" } }, true, {})
  else
    vim.notify(msg, level or vim.log.levels.INFO, { title = "clavm" })
  end
end

-- Sends lines line1..line2 (1-based, inclusive; default: the whole buffer) of bufnr.
function M.send(opts)
  opts = opts or {}
  local buf = (opts.bufnr == nil or opts.bufnr == 0) and vim.api.nvim_get_current_buf() or opts.bufnr
  local line1 = opts.line1 or 1
  local line2 = opts.line2 or vim.api.nvim_buf_line_count(buf)
  local lines = vim.api.nvim_buf_get_lines(buf, line1 - 1, line2, false)
  local code = table.concat(lines, "\n") .. "\n"
  local name = vim.api.nvim_buf_get_name(buf)
  if name == "" then
    name = "[buffer " .. buf .. "]"
  end
  M.attached[buf] = true

  local ok, l = pcall(M.library)
  if not ok then
    notify(tostring(l), vim.log.levels.ERROR)
    return nil
  end
  local raw = l.clavm_send_quant(M.config.engine, name, code, M.config.quant or -1, M.config.timeout_ms)
  local text = ffi.string(raw)
  l.clavm_free(raw)
  local reply = vim.json.decode(text)
  M.last = reply

  local diags = {}
  for _, d in ipairs(reply.diagnostics or {}) do
    local here = d.file == name
    table.insert(diags, {
      lnum = here and (d.line - 1 + line1 - 1) or (line1 - 1),
      col = here and math.max(d.col - 1, 0) or 0,
      severity = severities[d.severity] or vim.diagnostic.severity.ERROR,
      message = here and d.message or (d.file .. ":" .. d.line .. ":" .. d.col .. ": " .. d.message),
      source = "clavm",
    })
  end
  vim.diagnostic.set(M.ns, buf, diags)

  if reply.status == "waiting" then
    local last = ""
    for l in (reply.message or ""):gmatch("[^\n]+") do
      last = l
    end
    notify(string.format("clavm: v%d compiled (compile %d µs, test %d µs): %s", reply.version,
      reply.compile_us, reply.test_us, last))
  elseif reply.ok then
    notify(string.format("clavm: v%d playing (compile %d µs, test %d µs, swap %d µs)", reply.version,
      reply.compile_us, reply.test_us, reply.swap_us))
  elseif reply.status == "rejected" then
    notify(string.format("clavm: rejected: %d diagnostic(s)", #diags), vim.log.levels.WARN)
  else
    local first = (reply.message or ""):match("[^\n]*") or ""
    notify("clavm: " .. reply.status .. ": " .. first, vim.log.levels.ERROR)
  end
  return reply
end

-- Sets _p(index) (kind "p"), _i(index) ("i") or _cc(index) ("cc") in the engine.
function M.param(kind, index, value)
  local kinds = { p = 0, i = 1, cc = 2 }
  local rc = M.library().clavm_param(M.config.engine, kinds[kind] or 0, index, value)
  if rc ~= 0 then
    notify("clavm: the engine is not running or is busy", vim.log.levels.ERROR)
  end
  return rc == 0
end

--- Sets the engine's tempo in beats per minute (10..1000): _beat() bends to it, never jumps.
function M.tempo(bpm)
  local rc = M.library().clavm_param(M.config.engine, 3, 0, bpm)
  if rc ~= 0 then
    notify("clavm: the engine is not running or is busy", vim.log.levels.ERROR)
  end
  return rc == 0
end

local timers = {}

local function on_change(buf)
  if not (M.config.send_on_change and M.attached[buf]) then
    return
  end
  local t = timers[buf]
  if t then
    t:stop()
  else
    t = uv.new_timer()
    timers[buf] = t
  end
  t:start(M.config.debounce_ms, 0, vim.schedule_wrap(function()
    if vim.api.nvim_buf_is_valid(buf) then
      M.send({ bufnr = buf })
    end
  end))
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", M.config, opts or {})
  if M.config.lib then
    lib = nil
  end
  local group = vim.api.nvim_create_augroup("clavm", { clear = true })
  vim.api.nvim_create_autocmd("BufWritePost", {
    group = group,
    callback = function(ev)
      if M.config.send_on_write and M.attached[ev.buf] then
        M.send({ bufnr = ev.buf })
      end
    end,
  })
  vim.api.nvim_create_autocmd({ "TextChanged", "TextChangedI" }, {
    group = group,
    callback = function(ev)
      on_change(ev.buf)
    end,
  })
  vim.api.nvim_create_autocmd("BufReadPost", {
    group = group,
    callback = function(ev)
      local name = vim.api.nvim_buf_get_name(ev.buf)
      for _, p in ipairs(M.config.patterns) do
        if name:match(p) then
          M.attached[ev.buf] = true
        end
      end
    end,
  })
  vim.api.nvim_create_autocmd("BufWipeout", {
    group = group,
    callback = function(ev)
      M.attached[ev.buf] = nil
      if timers[ev.buf] then
        timers[ev.buf]:close()
        timers[ev.buf] = nil
      end
    end,
  })
end

return M
