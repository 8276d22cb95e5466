//! What the window measures about itself, for `clavm bench --ui`
//! (written as JSON to `$CLAVM_STATS` at exit): how long after a key press
//! the frame showing it was presented, and how long frames take to draw.

use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Stats {
    /// Key presses not yet in a drawn frame.
    waiting: Vec<Instant>,
    /// Key presses in the frame committed last, until the compositor's frame callback.
    in_flight: Vec<Instant>,
    /// Key press to frame callback of the frame that showed it.
    pub key_to_present: Vec<Duration>,
    pub draw: Vec<Duration>,
    /// Frame callbacks received: frames the compositor took.
    pub presented: u64,
    /// The last frame's logical size and its buffer's size in pixels.
    pub logical: (u32, u32),
    pub buffer: (u32, u32),
}

impl Stats {
    pub fn key_arrived(&mut self) {
        self.waiting.push(Instant::now());
    }

    pub fn frame_started(&mut self) {
        // Every waiting key is in this frame's input.
        self.in_flight.append(&mut self.waiting);
    }

    pub fn frame_committed(&mut self, took: Duration) {
        self.draw.push(took);
    }

    /// The compositor's frame callback: the last frame is on screen (or
    /// about to be) and it wants the next.
    pub fn frame_presented(&mut self) {
        self.presented += 1;
        let now = Instant::now();
        self.key_to_present.extend(self.in_flight.drain(..).map(|t| now - t));
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let ms =
            |v: &[Duration]| v.iter().map(|d| format!("{:.3}", d.as_secs_f64() * 1e3)).collect::<Vec<_>>().join(",");
        std::fs::write(
            path,
            format!(
                "{{\"key_to_present_ms\":[{}],\"draw_ms\":[{}],\"presented\":{},\"logical\":[{},{}],\"buffer\":[{},{}]}}\n",
                ms(&self.key_to_present),
                ms(&self.draw),
                self.presented,
                self.logical.0,
                self.logical.1,
                self.buffer.0,
                self.buffer.1
            ),
        )
    }
}
