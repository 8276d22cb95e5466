//! Every command with bad values: a documented exit status (2 for usage
//! errors, 1 for runtime errors; README "Exit status"), one line on stderr,
//! never a panic or a backtrace, and nothing left in the working folder.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

mod common;
use common::Dir;

/// What a row must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// clap's own usage error: status 2, "error: ..." and its hint.
    Clap,
    /// Our usage error: status 2, one line `clavm: error: ...`.
    Usage,
    /// A runtime error: status 1, one line `clavm: error: ...`.
    Runtime,
    /// A `.bars` file refused: status 1, one line `FILE:LINE: error: ...`.
    Diagnostic,
    /// `submit`, `param` or `tap` with no engine: status 3 (not responding)
    /// or 1, one line starting `clavm:` (`clavm: engine ... not responding`).
    Refused,
}

struct Case {
    args: Vec<String>,
    expect: Expect,
    /// A piece of the message (the allowed range, the file's problem).
    says: &'static str,
}

const PATCH: &str = "void play(void) { _out(0, 0.2f * Cycle(440)); }\n";

fn hostile(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/files").join(name).to_string_lossy().into_owned()
}

/// The table: `{p}` is a good patch, `{d}` the folder, `{o}` an output in it.
fn table() -> Vec<Case> {
    use Expect::*;
    let rows: &[(&str, Expect, &str)] = &[
        // render: numbers
        ("render {p} -o {o} --rate 0", Clap, "8000..=384000"),
        ("render {p} -o {o} --rate -1", Clap, "8000..=384000"),
        ("render {p} -o {o} --rate 65536000", Clap, "8000..=384000"),
        ("render {p} -o {o} --channels 0", Clap, "1..=16"),
        ("render {p} -o {o} --channels 65536", Clap, "1..=16"),
        ("render {p} -o {o} --channels NaN", Clap, "1..=16"),
        ("render {p} -o {o} --seconds 0", Clap, "0 < x <= 3600"),
        ("render {p} -o {o} --seconds -1", Clap, "0 < x <= 3600"),
        ("render {p} -o {o} --seconds NaN", Clap, "0 < x <= 3600"),
        ("render {p} -o {o} --seconds inf", Clap, "0 < x <= 3600"),
        ("render {p} -o {o} --seconds 1e300", Clap, "0 < x <= 3600"),
        ("render {p} -o {o} --timeout 1e300", Clap, "1..=3600"),
        ("render {p} -o {o} --timeout 0", Clap, "1..=3600"),
        ("render {p} -o {o} --timeout 1e-300", Clap, "1..=3600"),
        ("render {p} -o {o} --timeout NaN", Clap, "1..=3600"),
        ("render {p} -o {o} --crossfade -1", Clap, "0..=10000"),
        ("render {p} -o {o} --crossfade inf", Clap, "0..=10000"),
        ("render {p} -o {o} --seed -1", Clap, "invalid digit"),
        ("render {p} -o {o} --param 0=NaN", Usage, "finite"),
        ("render {p} -o {o} --param 0=inf", Usage, "finite"),
        ("render {p} -o {o} --param 0=-inf", Usage, "finite"),
        ("render {p} -o {o} --param 0=1e300", Usage, "finite"),
        ("render {p} -o {o} --param 128=1", Usage, "0..=127"),
        ("render {p} -o {o} --param 0", Usage, "N=V"),
        ("render {p} -o {o} --param =", Usage, "0..=127"),
        ("render {p} -o {o} --int 0=1.5", Usage, "whole number"),
        ("render {p} -o {o} --int 0=1e300", Usage, "whole number"),
        ("render {p} -o {o} --cc 0=2", Usage, "0..=1"),
        ("render {p} -o {o} --cc 0=NaN", Usage, "0..=1"),
        ("render {p} -o {o} --swap 1e300:{p}", Usage, "0..=3600"),
        ("render {p} -o {o} --swap NaN:{p}", Usage, "0..=3600"),
        ("render {p} -o {o} --swap 1:", Usage, "missing"),
        ("render {p} -o {o} --swap x", Usage, "T:OTHER.c"),
        ("render {p} -o {o} --format f64", Clap, "invalid value"),
        ("render {p} -o {o} --seconds 3600 --rate 384000 --channels 16", Usage, "at most 174 seconds"),
        // render: paths
        ("render {p} -o {d}", Runtime, "is a directory"),
        ("render {p} -o {d}/missing/out.wav", Runtime, "No such file or directory"),
        ("render {p} -o {p}", Runtime, "same file as the input"),
        ("render {p} -o {o} --swap 1:{o}", Runtime, "No such file"),
        ("render {d}/missing.c -o {o}", Runtime, "No such file or directory"),
        ("render {d} -o {o}", Runtime, "not a regular file"),
        ("render /dev/zero -o {o}", Runtime, "not a regular file"),
        ("render {p} -o {o} --bars {d}/missing.bars", Runtime, "No such file or directory"),
        ("render {p} -o {o} --bars /dev/zero", Runtime, "not a regular file"),
        ("render {p} -o {o} --bars {d}", Runtime, "not a regular file"),
        ("render {p} -o {o} --bars {huge}", Runtime, "1..=20000 Hz"),
        ("render {p} -o {o} --bars {tiny}", Runtime, "1..=20000 Hz"),
        // snapshot (every row fails before a GPU is opened)
        ("snapshot {p} -o {d}/x.png --at -1", Clap, "0..=3600"),
        ("snapshot {p} -o {d}/x.png --at NaN", Clap, "0..=3600"),
        ("snapshot {p} -o {d}/x.png --at 1e300", Clap, "0..=3600"),
        ("snapshot {p} -o {d}/x.png --rate 0", Clap, "8000..=384000"),
        ("snapshot {p} -o {d}/x.png --channels 9", Clap, "1..=8"),
        ("snapshot {p} -o {d}/x.png --timeout 1e300", Clap, "1..=3600"),
        ("snapshot {p} -o {d}/x.png --size 0x0", Clap, "at least 1"),
        ("snapshot {p} -o {d}/x.png --size 99999x1", Clap, "16384"),
        ("snapshot --engine x -o {d}/x.png --listen -1", Clap, "0..=60"),
        ("snapshot {p} -o {d}", Runtime, "is a directory"),
        ("snapshot {p} -o {p}", Runtime, "same file as the input"),
        ("snapshot {d}/missing.c -o {d}/x.png", Runtime, "No such file"),
        ("snapshot {p} -o {d}/x.png --bars {huge}", Runtime, "1..=20000 Hz"),
        // record
        ("record {p} -o {d}/x.mp4 --fps 0", Clap, "1..=240"),
        ("record {p} -o {d}/x.mp4 --fps 100000", Clap, "1..=240"),
        ("record {p} -o {d}/x.mp4 --seconds 1e300", Clap, "0 < x <= 3600"),
        ("record {p} -o {d}/x.mp4 --size 3x3", Usage, "even"),
        ("record {p} -o {d}/x.avi", Usage, ".mp4, .mkv or .mov"),
        ("record {p} -o {d}", Usage, ".mp4, .mkv or .mov"),
        ("record {p} -o {d}/missing/x.mp4", Runtime, "No such file"),
        ("record {d}/missing.c -o {d}/x.mp4", Runtime, "No such file"),
        // check
        ("check {d}/missing.c", Runtime, "No such file"),
        ("check {d}", Runtime, "not a regular file"),
        ("check /dev/zero", Runtime, "not a regular file"),
        ("check ''", Clap, "a value is required"),
        // bars
        ("bars show {d}/missing.bars", Runtime, "No such file"),
        ("bars show {d}", Runtime, "not a regular file"),
        ("bars check /dev/zero", Runtime, "not a regular file"),
        ("bars check ''", Clap, "a value is required"),
        ("bars show {huge}", Diagnostic, ":3: error: base `1e308` is out of range"),
        ("bars check {huge}", Diagnostic, "1..=20000 Hz"),
        ("bars check {tiny}", Diagnostic, "1..=20000 Hz"),
        ("bars check {nan}", Diagnostic, "1..=20000 Hz"),
        ("bars check {above}", Diagnostic, "1..=20000 Hz"),
        ("bars sim --threads 0", Clap, "1..=256"),
        ("bars sim --threads 100000", Clap, "1..=256"),
        ("bars sim --threads 18446744073709551616", Clap, "1..=256"),
        ("bars sim --bars 0", Clap, "1..="),
        ("bars sim --bars 100000", Clap, "1..="),
        ("bars sim --configs 0", Clap, "1..="),
        ("bars sim --mean-gap NaN", Clap, "1..=1000000000"),
        ("bars sim --mean-gap 1e300", Clap, "1..=1000000000"),
        ("bars sim --mean-gap 0", Clap, "1..=1000000000"),
        // play: numbers, refused before any audio device is opened
        ("play {p} --rate 0", Usage, "8000..=384000"),
        ("play {p} --rate 4000000000", Usage, "8000..=384000"),
        ("play {p} --channels 0", Usage, "1..=16"),
        ("play {p} --channels 65536", Clap, "invalid value"),
        ("play {p} --buffer 0", Usage, "16..=8192"),
        ("play {p} --crossfade NaN", Usage, "0..=10000"),
        ("play {p} --crossfade -5", Clap, "unexpected argument"),
        ("play {p} --seconds 0", Clap, "0 < x <= 31536000"),
        ("play {p} --seconds NaN", Clap, "0 < x <= 31536000"),
        ("play {p} --engine ''", Usage, "empty"),
        // the main job's headless fallback
        ("--seconds 0", Clap, "0 < x <= 3600"),
        ("--seconds inf", Clap, "0 < x <= 3600"),
        // another session's commands, with no engine running
        ("submit {p} --engine {none}", Refused, ""),
        ("param 0 1 --engine {none}", Refused, ""),
        ("tap -o {o} --engine {none}", Refused, ""),
        // their numbers: usage errors before any engine is looked for
        ("param 0 NaN --engine {none}", Clap, "finite"),
        ("param 0 inf --engine {none}", Clap, "finite"),
        ("param 0 1e300 --engine {none}", Clap, "finite"),
        ("param 128 1 --engine {none}", Clap, "0..=127"),
        ("param 99999 1 --engine {none}", Clap, "0..=127"),
        ("tap -o {o} --seconds 0 --engine {none}", Clap, "0 < x <= 86400"),
        ("tap -o {o} --seconds 1e300 --engine {none}", Clap, "0 < x <= 86400"),
        ("tap -o {o} --seconds NaN --engine {none}", Clap, "0 < x <= 86400"),
        ("submit {p} --timeout 1e300 --engine {none}", Clap, "0..=3600"),
        ("submit {p} --timeout NaN --engine {none}", Clap, "0..=3600"),
    ];
    rows.iter().map(|(line, expect, says)| Case { args: split(line), expect: *expect, says }).collect()
}

/// Splits a row on spaces; `''` is an empty argument.
fn split(line: &str) -> Vec<String> {
    line.split(' ').map(|w| if w == "''" { String::new() } else { w.to_string() }).collect()
}

#[test]
fn every_command_refuses_bad_values_with_one_line_and_its_status() {
    let d = Dir::new();
    let patch = d.file("p.c", PATCH);
    let none = format!("clavm-bad-input-{}", std::process::id());
    let subst = |a: &str| {
        a.replace("{p}", &patch.to_string_lossy())
            .replace("{o}", &d.path("out.wav").to_string_lossy())
            .replace("{d}", &d.0.path().to_string_lossy())
            .replace("{huge}", &hostile("base-huge.bars"))
            .replace("{tiny}", &hostile("base-tiny.bars"))
            .replace("{nan}", &hostile("base-nan.bars"))
            .replace("{above}", &hostile("base-above-hearing.bars"))
            .replace("{none}", &none)
    };
    let mut failures = Vec::new();
    for case in table() {
        let args: Vec<String> = case.args.iter().map(|a| subst(a)).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_clavm"))
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("CLAVM_ENGINE")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run clavm");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let lines: Vec<&str> = err.lines().collect();
        let code = out.status.code();
        let clap_message = code == Some(2)
            && err.starts_with("error: ")
            && err.trim_end().ends_with("For more information, try '--help'.");
        let one_line = lines.len() == 1;
        let ours = one_line && lines[0].starts_with("clavm: error: ");
        let ok = match case.expect {
            Expect::Clap => clap_message,
            Expect::Usage => code == Some(2) && ours,
            Expect::Runtime => code == Some(1) && ours,
            Expect::Diagnostic => code == Some(1) && one_line && lines[0].contains(": error: "),
            Expect::Refused => matches!(code, Some(1) | Some(3)) && one_line && lines[0].starts_with("clavm: "),
        };
        let says = err.contains(case.says) && err.matches("(os error").count() <= 1;
        let panicked = ["panicked", "backtrace", "RUST_BACKTRACE"].iter().any(|w| err.contains(w))
            || out.status.signal().is_some();
        if !ok || !says || panicked {
            failures.push(format!(
                "clavm {}\n  expected {:?} saying {:?}; got {:?} (signal {:?}):\n  {}",
                args.join(" "),
                case.expect,
                case.says,
                code,
                out.status.signal(),
                err.trim_end().replace('\n', "\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), table().len(), failures.join("\n"));
    // Nothing was written or left behind by any of them.
    d.assert_holds(&["p.c"]);
}

#[test]
fn each_os_error_is_said_once() {
    let d = Dir::new();
    let patch = d.file("p.c", PATCH);
    let missing = d.path("missing/out.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["render", &patch.to_string_lossy(), "-o", &missing.to_string_lossy(), "--seconds", "0.1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert_eq!(
        err.trim_end(),
        format!("clavm: error: cannot write {}: No such file or directory (os error 2)", missing.display())
    );
}
