//! `clavm devices`: the audio hosts, which of them run, and each running
//! host's devices with the rates, block sizes and channels they offer, and
//! the one `--host auto` would pick.

use std::process::ExitCode;

use crate::live::{hosts, Host};

pub fn run() -> anyhow::Result<ExitCode> {
    print!("{}", hosts::report());
    match hosts::resolve(Host::Auto) {
        Ok(h) => println!("--host auto: {} (--host {})", h.name(), h.flag()),
        Err(e) => println!("--host auto: {e:#}"),
    }
    Ok(ExitCode::SUCCESS)
}
