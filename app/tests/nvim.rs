//! The Neovim plugin (editors/nvim) in a real `nvim --headless`, driving a real
//! `clavm play` on a real JACK server through libclavm_submit.so.

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

mod common;
use common::jack::{drain_stderr, play_on, Jackd};

static SERIAL: Mutex<()> = Mutex::new(());

/// libclavm_submit.so as cargo built it for this test run's profile.
fn library() -> std::path::PathBuf {
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_clavm"));
    let lib = exe.with_file_name("libclavm_submit.so");
    assert!(lib.exists(), "{} is missing: build the workspace first (cargo build --workspace)", lib.display());
    lib
}

const SCRIPT: &str = r#"
local results = {}
local ok, err = pcall(function()
local clavm = require("clavm")
clavm.setup({ engine = ENGINE, lib = LIB, debounce_ms = 50 })
local function diags()
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(0, { namespace = clavm.ns })) do
    table.insert(out, { lnum = d.lnum, col = d.col, severity = d.severity, message = d.message })
  end
  return out
end
-- 1. :ClavmSend on a good buffer.
vim.cmd("edit " .. PATCH)
vim.cmd("ClavmSend")
results.send = clavm.last
-- 2. Send on write: break line 2; diagnostics at line 2.
vim.api.nvim_buf_set_lines(0, 1, 2, false, { "  _out(0, Cycle(440) +);" })
vim.cmd("write")
results.write = clavm.last
results.write_diags = diags()
-- 3. A range: lines 4..6 hold a complete patch of their own; its error is placed in the buffer.
vim.api.nvim_buf_set_lines(0, 3, 3, false, { "void play(void) {", "  _out(0, Cycle(220) * );", "}" })
vim.cmd("4,6ClavmSend")
results.range_diags = diags()
-- 4. Send on every change (debounced): fix the buffer and wait for the reply.
vim.api.nvim_buf_set_lines(0, 0, -1, false, { "void play(void) {", "  _out(0, 0.3f * Cycle(330));", "}" })
vim.cmd("ClavmLive on")
clavm.last = nil
vim.api.nvim_buf_set_lines(0, 1, 2, false, { "  _out(0, 0.3f * Cycle(331));" })
vim.api.nvim_exec_autocmds("TextChanged", { buffer = 0 })
vim.wait(3000, function() return clavm.last ~= nil end, 10)
results.live = clavm.last
results.live_diags = diags()
-- 5. An engine that is not there.
clavm.config.engine = "nobody-here"
clavm.config.timeout_ms = 200
vim.cmd("ClavmSend")
results.missing = clavm.last
end)
if not ok then results.error = tostring(err) end
vim.fn.writefile({ vim.json.encode(results) }, OUT)
vim.cmd("qa!")
"#;

#[test]
fn the_plugin_sends_on_command_write_and_change_and_places_diagnostics() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if Command::new("nvim").arg("--version").output().is_err() {
        panic!("nvim (Debian package neovim) must be installed: run scripts/setup.sh");
    }
    let jackd = Jackd::start();
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("live.c");
    std::fs::write(&patch, "void play(void) {\n  _out(0, 0.3f * Cycle(440));\n}\n").unwrap();
    let engine = format!("nv{}", std::process::id());
    let mut play = play_on(&jackd, &patch, &["--engine", &engine, "--no-osc", "--midi", "none"]);
    let play_err = drain_stderr(&mut play);
    // Wait for the engine's channels.
    let t0 = std::time::Instant::now();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    while !std::path::Path::new(&format!("/dev/shm/clavm-{uid}-{engine}.submit")).exists() {
        assert!(t0.elapsed() < Duration::from_secs(20), "the engine never opened its submit channel");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = dir.path().join("results.json");
    let script = dir.path().join("test.lua");
    let lua_str = |s: &str| format!("{s:?}");
    std::fs::write(
        &script,
        format!(
            "ENGINE = {}\nLIB = {}\nPATCH = {}\nOUT = {}\n{SCRIPT}",
            lua_str(&engine),
            lua_str(library().to_str().unwrap()),
            lua_str(patch.to_str().unwrap()),
            lua_str(out.to_str().unwrap())
        ),
    )
    .unwrap();
    let plugin = concat!(env!("CARGO_MANIFEST_DIR"), "/../editors/nvim");
    let mut nvim = Command::new("nvim")
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n"])
        .args(["--cmd", &format!("set rtp^={plugin}"), "--cmd", "runtime plugin/clavm.lua"])
        .args(["-c", &format!("luafile {}", script.display())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A script that stops half-way leaves nvim running: never wait forever.
    let t0 = std::time::Instant::now();
    while nvim.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = nvim.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = nvim.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let results = std::fs::read_to_string(&out).unwrap_or_else(|_| panic!("nvim wrote no results: {said}"));
    // SAFETY: signalling our own child: Ctrl-C.
    unsafe { libc::kill(play.id() as i32, libc::SIGINT) };
    assert!(play.wait().unwrap().success());
    let play_err = play_err.join().unwrap();
    let r: serde_json::Value = serde_json::from_str(&results).unwrap();
    let ctx = format!("{r:#}\n--- nvim:\n{said}\n--- clavm play:\n{play_err}");
    assert!(r["error"].is_null(), "the script failed: {ctx}");

    assert_eq!(r["send"]["status"], "playing", "{ctx}");
    assert!(r["send"]["compile_us"].as_f64().unwrap() > 0.0, "{ctx}");
    assert_eq!(r["write"]["status"], "rejected", "{ctx}");
    let d = &r["write_diags"][0];
    assert_eq!(d["lnum"], 1, "the error is on line 2: {ctx}");
    assert!(d["col"].as_u64().unwrap() > 0, "{ctx}");
    assert_eq!(d["severity"], 1, "an error: {ctx}");
    assert_eq!(r["range_diags"][0]["lnum"], 4, "line 2 of the range is buffer line 5: {ctx}");
    assert_eq!(r["live"]["status"], "playing", "{ctx}");
    assert_eq!(r["live_diags"].as_array().map(|a| a.len()), Some(0), "{ctx}");
    assert_eq!(r["missing"]["status"], "not_responding", "{ctx}");
    let (first, live) = (r["send"]["version"].as_u64().unwrap(), r["live"]["version"].as_u64().unwrap());
    assert!(live > first, "{ctx}");
    assert!(play_err.contains(&format!("version {live} playing")), "{ctx}");
}
