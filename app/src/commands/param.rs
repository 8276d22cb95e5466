//! `clavm param N VALUE`: set `_p(N)` (or `_i(N)` with --int, `_cc(N)` with --cc)
//! in a running engine, through its shared-memory param channel.

use std::process::ExitCode;

use clavm_submit::ParamKind;

#[derive(clap::Args)]
pub struct ParamArgs {
    /// Parameter number, 0..127.
    #[arg(value_parser = crate::args::param_index)]
    pub index: u8,
    /// The value (for --cc, 0..1).
    #[arg(allow_negative_numbers = true, value_parser = crate::args::param_value)]
    pub value: f64,
    /// Set `_i(N)` (the value is rounded).
    #[arg(long, conflicts_with = "cc")]
    pub int: bool,
    /// Set `_cc(N)`.
    #[arg(long)]
    pub cc: bool,
    /// The engine (default: $CLAVM_ENGINE or "default").
    #[arg(long)]
    pub engine: Option<String>,
}

pub fn run(a: ParamArgs) -> anyhow::Result<ExitCode> {
    let kind = match (a.int, a.cc) {
        (true, _) => ParamKind::I,
        (_, true) => ParamKind::Cc,
        _ => ParamKind::P,
    };
    let engine = crate::remote::engine_name(a.engine);
    match clavm_submit::set_param(&engine, kind, a.index as u32, a.value) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("clavm: {e}");
            Ok(ExitCode::from(e.exit_code() as u8))
        }
    }
}
