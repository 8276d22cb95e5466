//! Channels between real processes: this test binary re-runs itself as the
//! other side (`CHANNEL_CHILD=role:engine`), and the tests kill it mid-way.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clavm_channel::{Config, Error, Mode, Receiver, SendError, Sender, Wait};

const CHILD: &str = "CHANNEL_CHILD";

/// The child's side; does nothing when run as a normal test.
#[test]
fn child_entry() {
    let Ok(job) = std::env::var(CHILD) else { return };
    let (role, engine) = job.split_once(':').unwrap();
    let ready = || println!("ready");
    match role {
        "owner" => {
            let _rx = Receiver::create(engine, "c", Config::new(Mode::Mpsc, 64, 8)).unwrap();
            ready();
            std::thread::sleep(Duration::from_secs(60));
        }
        "half-writer" => {
            let tx = Sender::open(engine, "c").unwrap();
            let mut g = tx.try_reserve(8).unwrap();
            g.bytes_mut()[0] = 1;
            ready();
            std::thread::sleep(Duration::from_secs(60));
            drop(g);
        }
        "producer" => {
            let tx = Sender::open(engine, "c").unwrap();
            ready();
            for n in 0..1000u32 {
                while tx.try_send_bytes(&n.to_le_bytes()) == Err(SendError::Full) {
                    std::thread::yield_now();
                }
            }
        }
        _ => panic!("unknown role {role}"),
    }
}

/// Starts the child in `role` and waits until it says it is ready.
fn child(role: &str, engine: &str) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{role}:{engine}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child {role} exited before it was ready");
        if line.trim_end().ends_with("ready") {
            break;
        }
    }
    // Keep reading: the test harness in the child writes its verdict at the end.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    c
}

fn kill(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

fn engine(tag: &str) -> String {
    format!("proc{}-{tag}", std::process::id())
}

#[test]
fn a_channel_left_by_a_killed_owner_is_reported_gone_and_replaced_on_the_next_start() {
    let e = engine("owner");
    let owner = child("owner", &e);
    let tx = Sender::open(&e, "c").unwrap();
    assert!(tx.owner_alive());
    kill(owner);
    assert!(!tx.owner_alive());
    // Sends into a dead owner's ring never block: they fill it and are dropped.
    let mut full = 0;
    for _ in 0..20 {
        if tx.try_send_bytes(b"x") == Err(SendError::Full) {
            full += 1;
        }
    }
    assert_eq!(full, 12);
    assert!(matches!(Sender::open(&e, "c"), Err(Error::OwnerGone { .. })));
    // A sweep removes what the dead owner left; a live engine's channels stay.
    let live = Receiver::create(&e, "live", Config::new(Mode::Mpsc, 8, 2)).unwrap();
    assert_eq!(clavm_channel::remove_stale(&e).unwrap(), 1);
    assert!(matches!(Sender::open(&e, "c"), Err(Error::NotFound(_))));
    assert!(Sender::open(&e, "live").is_ok());
    drop(live);
    // The next owner recovers the name.
    let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 64, 8)).unwrap();
    Sender::open(&e, "c").unwrap().try_send_bytes(b"fresh").unwrap();
    assert_eq!(&*rx.try_recv_bytes().unwrap(), b"fresh");
}

#[test]
fn a_producer_killed_halfway_through_a_message_does_not_block_the_channel() {
    let e = engine("writer");
    let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 64, 8)).unwrap();
    let writer = child("half-writer", &e);
    Sender::open(&e, "c").unwrap().try_send_bytes(b"behind").unwrap();
    // Stuck behind the live writer's reservation.
    assert!(rx.recv_bytes(Wait::Sleep, Duration::from_millis(50)).is_err());
    kill(writer);
    assert_eq!(&*rx.recv_bytes(Wait::Sleep, Duration::from_secs(5)).unwrap(), b"behind");
    assert_eq!(rx.stats().skipped_dead_producer, 1);
}

#[test]
fn a_sleeping_consumer_is_woken_by_another_process() {
    let e = engine("wake");
    let mut rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 16)).unwrap();
    let mut producer = child("producer", &e);
    for n in 0..1000u32 {
        let m = rx.recv_bytes(Wait::Sleep, Duration::from_secs(10)).unwrap();
        assert_eq!(u32::from_le_bytes(m[..4].try_into().unwrap()), n);
    }
    assert!(producer.wait().unwrap().success());
}
