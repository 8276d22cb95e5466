//! The live engine's protocol (docs/LIVE_PROTOCOL.md), model-checked with spin:
//! runs docs/protocol/check.sh on docs/protocol/live.pml. Needs `spin` and
//! `gcc` (scripts/setup.sh installs both).

use std::process::Command;

/// Every run check.sh must report as `ok`: the properties, and the BUG
/// variant that shows the checks are not vacuous.
const RUNS: [&str; 6] =
    ["safety", "block_progress", "compile_answer", "failed_replaced", "BUG_safety", "BUG_block_progress"];

#[test]
fn live_protocol_model_holds() {
    match Command::new("spin").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("`spin -V` failed ({}): run scripts/setup.sh to install spin", o.status),
        Err(e) => panic!("spin is not installed ({e}): run scripts/setup.sh to install it"),
    }
    let out = Command::new("bash")
        .arg("../docs/protocol/check.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run bash ../docs/protocol/check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "docs/protocol/check.sh failed ({}):\n{stdout}\n{stderr}", out.status);
    for run in RUNS {
        assert!(
            stdout.lines().any(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some("ok") && w.next() == Some(run)
            }),
            "check.sh did not report `{run}` as ok:\n{stdout}"
        );
    }
}
