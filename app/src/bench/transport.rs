//! `clavm bench --transport`: the shared-memory channels against the
//! alternatives, measured in the same run, and `clavm submit`'s round trip.
//!
//! A. Round trip between two processes (8-byte ping, 8-byte pong): our
//!    channel sleeping on its futex, our channel busy-waiting, a Unix-domain
//!    socket, and a consumer that polls every 100 µs (the seed's default).
//! B. Throughput of 8-byte messages between two threads, one producer and four.
//! C. `clavm submit`'s round trip through the submit channel, for every
//!    example patch, against the engine's own in-process submit-to-sound.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::live::LiveEvent;
use clavm_audio::PatchSource;
use clavm_channel::{Config, Mode, Receiver, Sender, Wait};

use super::live::{self, AudioThread};
use super::stats::Percentiles;

const ROUND_TRIPS: usize = 20_000;
const POLL: Duration = Duration::from_micros(100);

/// How the two sides of a round trip wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    Sleep,
    Spin,
    Poll,
    Socket,
}

impl Style {
    fn name(self) -> &'static str {
        match self {
            Style::Sleep => "channel, futex sleep",
            Style::Spin => "channel, busy-wait",
            Style::Poll => "channel, 100 µs polling (the seed's default)",
            Style::Socket => "Unix-domain socket",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Style::Sleep => "sleep",
            Style::Spin => "spin",
            Style::Poll => "poll",
            Style::Socket => "socket",
        }
    }
}

fn receive(rx: &mut Receiver, style: Style) -> u64 {
    loop {
        let got = match style {
            Style::Sleep => rx.recv_bytes(Wait::Sleep, Duration::from_secs(5)),
            Style::Spin => rx.recv_bytes(Wait::Spin, Duration::from_secs(5)),
            _ => match rx.try_recv_bytes() {
                Ok(m) => Ok(m),
                Err(e) => {
                    std::thread::sleep(POLL);
                    Err(e)
                }
            },
        };
        if let Ok(m) = got {
            return u64::from_le_bytes(m[..8].try_into().unwrap_or_default());
        }
        if matches!(style, Style::Sleep | Style::Spin) {
            // Five seconds without a ping: the other side is gone.
            std::process::exit(1);
        }
    }
}

/// The other process of a round trip (`clavm __echo ENGINE STYLE`): answers each ping.
pub fn echo(engine: &str, style: &str) -> ! {
    if style == "socket" {
        let mut s = UnixStream::connect(engine).unwrap_or_else(|_| std::process::exit(1));
        let mut b = [0u8; 8];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
        std::process::exit(0);
    }
    let style = match style {
        "sleep" => Style::Sleep,
        "spin" => Style::Spin,
        _ => Style::Poll,
    };
    let run = || -> anyhow::Result<()> {
        let mut ping = Receiver::create(engine, "ping", Config::new(Mode::Spsc, 64, 64))?;
        let pong = Sender::open(engine, "pong")?;
        println!("ready");
        std::io::stdout().flush()?;
        loop {
            let n = receive(&mut ping, style);
            if n == u64::MAX {
                return Ok(());
            }
            while pong.try_send_bytes(&n.to_le_bytes()).is_err() {}
        }
    };
    std::process::exit(if run().is_ok() { 0 } else { 1 })
}

fn spawn_echo(arg0: &str, style: Style) -> anyhow::Result<std::process::Child> {
    Command::new(std::env::current_exe()?)
        .args(["__echo", arg0, style.arg()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the echo process")
}

/// A. Round trips with one waiting style on both sides.
fn round_trip(style: Style) -> anyhow::Result<Percentiles> {
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    if style == Style::Socket {
        let path = std::env::temp_dir().join(format!("clavm-bench-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        let mut child = spawn_echo(path.to_str().unwrap_or_default(), style)?;
        let (mut s, _) = listener.accept()?;
        let mut b = [0u8; 8];
        for i in 0..ROUND_TRIPS as u64 {
            let t0 = Instant::now();
            s.write_all(&i.to_le_bytes())?;
            s.read_exact(&mut b)?;
            times.push(t0.elapsed());
        }
        drop(s);
        child.wait()?;
        let _ = std::fs::remove_file(&path);
        return Ok(Percentiles::of(&mut times));
    }
    let engine = format!("bench{}", std::process::id());
    let mut pong = Receiver::create(&engine, "pong", Config::new(Mode::Spsc, 64, 64))?;
    let mut child = spawn_echo(&engine, style)?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("echo stdout")?).read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "ready", "the echo process did not start");
    let ping = Sender::open(&engine, "ping")?;
    for i in 0..ROUND_TRIPS as u64 {
        let t0 = Instant::now();
        while ping.try_send_bytes(&i.to_le_bytes()).is_err() {}
        let n = receive(&mut pong, style);
        anyhow::ensure!(n == i, "echo answered {n} to {i}");
        times.push(t0.elapsed());
    }
    let _ = ping.try_send_bytes(&u64::MAX.to_le_bytes());
    child.wait()?;
    Ok(Percentiles::of(&mut times))
}

/// B. Messages per second from `producers` threads to one consumer.
fn throughput(producers: usize, per_producer: u64) -> anyhow::Result<f64> {
    let engine = format!("bench{}t{producers}", std::process::id());
    let mut rx = Receiver::create(&engine, "tp", Config::new(Mode::Mpsc, 8, 4096))?;
    let total = producers as u64 * per_producer;
    let start = std::sync::Barrier::new(producers + 1);
    let elapsed = std::thread::scope(|s| -> anyhow::Result<Duration> {
        for _ in 0..producers {
            let tx = Sender::open(&engine, "tp")?;
            let start = &start;
            s.spawn(move || {
                start.wait();
                for i in 0..per_producer {
                    while tx.try_send_bytes(&i.to_le_bytes()).is_err() {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        start.wait();
        let t0 = Instant::now();
        let mut got = 0;
        while got < total {
            if rx.try_recv_bytes().is_ok() {
                got += 1;
            }
        }
        Ok(t0.elapsed())
    })?;
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// C. One patch sent `n` times through the submit channel and `n` times by
/// `submit()` in-process: (channel: reply round trip, channel: submit to
/// sound, in-process: submit to sound).
fn submit_round_trip(source: &PatchSource, n: usize) -> anyhow::Result<[Percentiles; 3]> {
    let (engine, processor) = live::start()?;
    let name = format!("bench{}s", std::process::id());
    let server = crate::remote::submit::SubmitServer::start(&name, &engine)?;
    let events = engine.subscribe();
    let audio = AudioThread::start(processor);
    let mut client = clavm_submit::Client::connect(&name, Duration::from_secs(2))?;
    let (mut reply, mut sound, mut in_process) = (Vec::new(), Vec::new(), Vec::new());
    // When version `v` first sounded, from the event stream.
    let played = |v: u64| -> anyhow::Result<Instant> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(LiveEvent::Playing { version, played, .. }) = events.recv_timeout(Duration::from_millis(100)) {
                if version == v {
                    return Ok(played);
                }
            }
        }
        anyhow::bail!("version {v} never played")
    };
    for i in 0..=n {
        let text = format!("{}\n// edit {i}\n", source.text);
        let t0 = Instant::now();
        let r = client.send(&source.name, &text, Duration::from_secs(5))?;
        let answered = t0.elapsed();
        anyhow::ensure!(r.outcome == clavm_submit::Outcome::Playing, "{}: {}", source.name, r.text);
        let sounded = played(r.version)?.duration_since(t0);
        let mut s = source.clone();
        s.text = format!("{}\n// in-process edit {i}\n", source.text);
        let t1 = Instant::now();
        let id = engine.submit(s);
        let mut version = None;
        let ev = live::wait_for(&engine, Duration::from_secs(5), |e| match e {
            LiveEvent::Compiled { submit, version: v, .. } if *submit == id => {
                version = Some(*v);
                false
            }
            LiveEvent::Playing { version: v, .. } => version == Some(*v),
            _ => false,
        })?;
        // The first of each kind warms up.
        if let (LiveEvent::Playing { played: p, .. }, true) = (ev, i > 0) {
            in_process.push(p.duration_since(t1));
            reply.push(answered);
            sound.push(sounded);
        }
    }
    drop(audio);
    drop(server);
    engine.shutdown();
    Ok([Percentiles::of(&mut reply), Percentiles::of(&mut sound), Percentiles::of(&mut in_process)])
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

pub fn run(patches: &Path, filter: Option<&str>) -> anyhow::Result<String> {
    let mut s = String::from("### A. Round trip between two processes (8-byte messages)\n\n");
    s.push_str(&format!("{ROUND_TRIPS} round trips each.\n\n| transport | p50 µs | p99 µs |\n|---|---:|---:|\n"));
    let mut rows = Vec::new();
    for style in [Style::Sleep, Style::Spin, Style::Socket, Style::Poll] {
        eprint!("{:<46} ...", style.name());
        let p = round_trip(style)?;
        eprintln!(" done");
        s.push_str(&format!("| {} | {} | {} |\n", style.name(), us(p.p50), us(p.p99)));
        rows.push((style, p));
    }
    let of = |st: Style| rows.iter().find(|(x, _)| *x == st).map(|(_, p)| *p).unwrap_or_default();
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-12);
    s.push_str(&format!(
        "\nRatios at p50 (higher: the channel is faster): socket / sleeping channel {:.2}, 100 µs polling / sleeping channel {:.1}, socket / busy-waiting channel {:.0}. A sleeping receiver pays one wake-up per message, like a socket's reader: on these VMs waking an idle core dominates both (this run holds no PM QoS request; `clavm play` does).\n\n",
        ratio(of(Style::Sleep).p50, of(Style::Socket).p50),
        ratio(of(Style::Sleep).p50, of(Style::Poll).p50),
        ratio(of(Style::Spin).p50, of(Style::Socket).p50),
    ));

    s.push_str("### B. Throughput (8-byte messages, two threads of one process, 4096 slots)\n\n");
    s.push_str("| producers | messages/s |\n|---:|---:|\n");
    for producers in [1, 4] {
        eprint!("throughput, {producers} producer(s) ...");
        let best =
            (0..3).map(|_| throughput(producers, 5_000_000 / producers as u64)).collect::<Result<Vec<_>, _>>()?;
        let best = best.into_iter().fold(0.0, f64::max);
        eprintln!(" done");
        s.push_str(&format!("| {producers} | {:.1} M |\n", best / 1e6));
    }
    s.push_str("\nTarget: over 10 M/s with a single producer (best of 3 runs; on 2 cores the threads share them with everything else).\n\n");

    s.push_str("### C. `clavm submit` round trip\n\n");
    s.push_str("A patch sent through the submit channel (as `clavm submit` does): when its first block sounded, and when the reply that it plays arrived; against `submit()` in-process to its first block. All include compile, test run and the wait for the next 128-frame block, paced by a thread standing in for the device; 10 submits of each.\n\n");
    s.push_str("| patch | channel: submit to sound p50 ms | p99 | channel: reply p50 ms | p99 | in-process: submit to sound p50 ms | p99 |\n|---|---:|---:|---:|---:|---:|---:|\n");
    let files = super::patch_files(patches, filter)?;
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    for f in &files {
        let file = f.file_name().unwrap_or_default().to_string_lossy().into_owned();
        eprint!("{file:<18} submit round trip...");
        let src = PatchSource::from_file(f).map_err(|e| anyhow::anyhow!("{e}"))?;
        let [reply, sound, inproc] = submit_round_trip(&src, 10)?;
        eprintln!(" done");
        s.push_str(&format!(
            "| {file} | {} | {} | {} | {} | {} | {} |\n",
            ms(sound.p50),
            ms(sound.p99),
            ms(reply.p50),
            ms(reply.p99),
            ms(inproc.p50),
            ms(inproc.p99)
        ));
    }
    Ok(s)
}
