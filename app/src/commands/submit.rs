//! `clavm submit [FILE|-]`: send a patch to a running engine and print its reply.
//!
//! Exit status: 0 playing (or, quantised, waiting for its beat); 1 refused (diagnostics as FILE:LINE:COL) or failed
//! its test run; 2 a usage error (as for every command); 3 engine not responding.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_submit::{Outcome, SubmitError};

#[derive(clap::Args)]
pub struct SubmitArgs {
    /// The patch file, or - for standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// The engine to send to (as named by `clavm play --engine`; default: $CLAVM_ENGINE or "default").
    #[arg(long)]
    pub engine: Option<String>,
    /// Seconds to wait for the engine's reply (0..3600).
    #[arg(long, default_value_t = 2.0, value_parser = crate::args::reply_timeout)]
    pub timeout: f64,
    /// The name diagnostics show for standard input.
    #[arg(long, default_value = "<stdin>")]
    pub name: String,
    /// Land on the next multiple of Q beats (0 = the next block; default: the engine's --quant).
    #[arg(long, value_parser = crate::args::quant, allow_negative_numbers = true)]
    pub quant: Option<clavm_audio::clock::Quant>,
}

pub fn run(a: SubmitArgs) -> anyhow::Result<ExitCode> {
    let engine = crate::remote::engine_name(a.engine);
    let (name, code) = if a.file.as_os_str() == "-" {
        let mut code = String::new();
        std::io::stdin().read_to_string(&mut code).context("reading the patch from standard input")?;
        (a.name, code)
    } else {
        let bytes = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
        let code = String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!("{}: not UTF-8 text (byte {})", a.file.display(), e.utf8_error().valid_up_to())
        })?;
        (a.file.display().to_string(), code)
    };
    let t0 = Instant::now();
    let quant = a.quant.map(|q| q.beats());
    match clavm_submit::send_quantised(&engine, &name, &code, quant, Duration::from_secs_f64(a.timeout)) {
        Ok(r) => {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            eprint!("{}", r.text);
            match r.outcome {
                Outcome::Playing => {
                    println!(
                        "{name}: version {} playing: compile {:.2} ms, test run {:.2} ms, swap {:.2} ms (round trip {:.2} ms)",
                        r.version,
                        ms(r.compile),
                        ms(r.test),
                        ms(r.swap),
                        ms(t0.elapsed())
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Outcome::Waiting => {
                    println!(
                        "{name}: version {} compiled in {:.2} ms, test run {:.2} ms: {} (round trip {:.2} ms)",
                        r.version,
                        ms(r.compile),
                        ms(r.test),
                        r.text.lines().last().unwrap_or("waiting for its beat"),
                        ms(t0.elapsed())
                    );
                    Ok(ExitCode::SUCCESS)
                }
                _ => Ok(ExitCode::from(1)),
            }
        }
        Err(e @ SubmitError::NotResponding { .. }) => {
            eprintln!("clavm: {e}");
            Ok(ExitCode::from(e.exit_code() as u8))
        }
        Err(e) => {
            eprintln!("clavm: {e}");
            Ok(ExitCode::from(e.exit_code() as u8))
        }
    }
}
