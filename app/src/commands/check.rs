//! `clavm check PATCH.c`: compile only.

use std::path::PathBuf;
use std::process::ExitCode;

use clavm_audio::patch::{self, sites::SiteRegistry, CompileOptions};

use crate::crash;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The patch to compile.
    pub patch: PathBuf,
    /// Extra folder for #include "..." (repeatable).
    #[arg(short = 'I', long = "include")]
    pub include: Vec<PathBuf>,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let Some(source) = super::load_patch(&args.patch) else {
        return Ok(ExitCode::FAILURE);
    };
    crash::arm(&source.name);
    crash::start_watchdog(std::time::Duration::from_secs(10));
    crash::set_phase(crash::Phase::Compiling);
    let options = CompileOptions { include_paths: args.include };
    let result = patch::compile(&source, &SiteRegistry::default(), &options);
    crash::set_phase(crash::Phase::Idle);
    match result {
        Ok(p) => {
            for w in &p.program.warnings {
                eprintln!("{w}");
            }
            println!(
                "{}: ok ({} stateful call sites, compiled in {:.2} ms)",
                source.name,
                p.plan.sites.len(),
                p.timings.total().as_secs_f64() * 1e3
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            super::print_patch_error(&e);
            Ok(ExitCode::FAILURE)
        }
    }
}
