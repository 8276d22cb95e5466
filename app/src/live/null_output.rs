//! The engine's clock when there is no audio device: a thread that asks the
//! processor for a block every block period and throws the samples away
//! (they still reach the tap, so the visuals move). Realtime rules still
//! hold inside `process`; the thread itself is ordinary.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clavm_audio::live::LiveProcessor;

use super::GainStage;

const BLOCK: usize = 256;

pub struct NullOutput {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NullOutput {
    pub fn start(mut processor: LiveProcessor, mut gain: GainStage, rate: u32, channels: usize) -> NullOutput {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let period = Duration::from_secs_f64(BLOCK as f64 / rate.max(1) as f64);
        let thread = std::thread::Builder::new()
            .name("clavm-null-output".into())
            .spawn(move || {
                let mut out = vec![0.0f32; BLOCK * channels.max(1)];
                let mut next = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    processor.process(&[], &mut out);
                    gain.apply(&mut out, channels);
                    next += period;
                    match next.checked_duration_since(Instant::now()) {
                        Some(wait) => std::thread::sleep(wait),
                        // Far behind (a suspended machine): do not burst to catch up.
                        None if Instant::now() - next > period * 8 => next = Instant::now(),
                        None => {}
                    }
                }
            })
            .expect("spawning the null output thread");
        NullOutput { stop, thread: Some(thread) }
    }
}

impl Drop for NullOutput {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
