//! `clavm gpus`: the Vulkan devices, what each lacks, and the one chosen.

use std::process::ExitCode;

use clavm_render::gpu::{choose, Gpu, GpuChoice};

pub fn run() -> anyhow::Result<ExitCode> {
    let list = Gpu::list()?;
    for c in &list {
        println!("{c}");
    }
    match choose(&list, &GpuChoice::Auto) {
        Ok(i) => println!("auto: {i} ({})", list.iter().find(|c| c.index == i).map_or("?", |c| c.name.as_str())),
        Err(e) => {
            eprintln!("clavm: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
