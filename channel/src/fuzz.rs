//! The channel reader against random bytes: a real channel whose header and
//! slots are scribbled over (through the file, as another process would) and
//! whose file is cut to a random length. Whatever the bytes, every operation
//! returns (each is bounded by construction, so the cases finish), nothing
//! panics, no SIGBUS reaches the process, and a ring that held garbage works
//! again after the consumer has said so.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;

use crate::{path_of, Config, Mode, Receiver, RecvError, SendError, Sender, Wait};

fn engine() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("fuzz{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// One scribble: `bytes` written at `offset` (taken modulo the file's length).
fn scribbles() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    prop::collection::vec((any::<usize>(), prop::collection::vec(any::<u8>(), 1..64)), 0..24)
}

/// Receives and sends for a while, collecting what happened.
fn exercise(rx: &mut Receiver, tx: Option<&Sender>) -> (usize, usize) {
    let max = rx.config().slot_size;
    let (mut got, mut errors) = (0, 0);
    for i in 0..64u32 {
        if let Some(tx) = tx {
            match tx.try_send_bytes(&i.to_le_bytes()) {
                Ok(()) | Err(SendError::Full | SendError::Garbage | SendError::Abandoned) => {}
                Err(SendError::Broken) => errors += 1,
                Err(e @ SendError::TooLarge { .. }) => panic!("a 4-byte message refused as {e}"),
            }
        }
        match rx.try_recv_bytes() {
            Ok(m) => {
                assert!(m.len() <= max, "a message longer than its slot");
                got += 1;
            }
            Err(RecvError::Empty | RecvError::Reset) => {}
            Err(RecvError::Broken) => errors += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    // A blocking receive keeps its (short) deadline whatever the ring holds.
    let _ = rx.recv_bytes(Wait::Sleep, Duration::from_millis(1));
    (got, errors)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn scribbled_and_cut_channels_never_hang_panic_or_fault(
        mode in prop_oneof![Just(Mode::Spsc), Just(Mode::Mpsc)],
        slots in prop_oneof![Just(2usize), Just(4), Just(16)],
        writes in scribbles(),
        cut in prop::option::of(any::<u64>()),
    ) {
        let e = engine();
        let mut rx = Receiver::create(&e, "c", Config::new(mode, 64, slots)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        for i in 0..slots as u32 / 2 {
            let _ = tx.try_send_bytes(&i.to_le_bytes());
        }
        let path = path_of(&e, "c").unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        for (offset, bytes) in &writes {
            file.write_all_at(bytes, *offset as u64 % len).unwrap();
        }
        if let Some(cut) = cut {
            file.set_len(cut % len).unwrap();
        }
        let (_, broken) = exercise(&mut rx, Some(&tx));
        prop_assert!(cut.is_some() || broken == 0, "an uncut file reported broken");
        // Opening the scribbled file again: refused, or a channel that works.
        match Sender::open(&e, "c") {
            Ok(again) => { let _ = again.try_send_bytes(b"x"); }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
        // Once the consumer has seen garbage and reset, an honest message gets through (uncut files).
        if cut.is_none() {
            let mut through = false;
            for _ in 0..4 {
                let _ = tx.try_send_bytes(b"honest");
                while let Ok(m) = rx.try_recv_bytes() {
                    through |= &*m == b"honest";
                }
                if through { break; }
            }
            prop_assert!(through, "the ring never recovered");
        }
    }

    #[test]
    fn random_files_under_a_channel_name_are_refused_or_survive(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        header_ok in any::<bool>(),
    ) {
        let e = engine();
        let path = path_of(&e, "c").unwrap();
        let mut bytes = bytes;
        if header_ok {
            // A real header in front of random slots, so the reader gets past the identity checks.
            let rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 16, 4)).unwrap();
            let real = std::fs::read(&path).unwrap();
            let h = std::mem::size_of::<crate::layout::Header>();
            bytes.resize(real.len(), 0);
            bytes[..h].copy_from_slice(&real[..h]);
            std::mem::forget(rx); // keeps the owner (us) alive in the header, and the file in place
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all_at(&bytes, 0).unwrap();
        } else {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
            f.write_all_at(&bytes, 0).unwrap();
        }
        match Receiver::open(&e, "c") {
            Ok(mut rx) => { exercise(&mut rx, None); }
            Err(err) => prop_assert!(!header_ok || !err.to_string().is_empty()),
        }
        let _ = std::fs::remove_file(&path);
    }
}
