//! `clavm tempo BPM`: change a running engine's tempo, through its
//! shared-memory param channel (as `clavm param` sets a parameter).
//! `_beat()` bends to the new tempo from the next block; it never jumps.

use std::process::ExitCode;

use clavm_audio::clock::Bpm;
use clavm_submit::ParamKind;

#[derive(clap::Args)]
pub struct TempoArgs {
    /// Beats per minute, 10..=1000.
    #[arg(value_parser = crate::args::bpm, allow_negative_numbers = true)]
    pub bpm: Bpm,
    /// The engine (default: $CLAVM_ENGINE or "default").
    #[arg(long)]
    pub engine: Option<String>,
}

pub fn run(a: TempoArgs) -> anyhow::Result<ExitCode> {
    let engine = crate::remote::engine_name(a.engine);
    match clavm_submit::set_param(&engine, ParamKind::Tempo, 0, a.bpm.get()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("clavm: {e}");
            Ok(ExitCode::from(e.exit_code() as u8))
        }
    }
}
