//! `fuzz`: runs one cargo-fuzz target from `fuzz/` for a bounded time. Needs a
//! nightly toolchain and `cargo-fuzz`; never part of CI.

use anyhow::{Context, Result, bail};

use crate::run::{project_root, run};

pub fn fuzz(args: &[String]) -> Result<()> {
    let dir = project_root().join("fuzz");
    if args.first().map(String::as_str) == Some("--list") {
        for entry in
            std::fs::read_dir(dir.join("fuzz_targets")).context("reading fuzz/fuzz_targets")?
        {
            let path = entry?.path();
            if let Some(stem) = path.file_stem() {
                println!("{}", stem.to_string_lossy());
            }
        }
        return Ok(());
    }
    let (Some(target), Some(seconds)) = (args.first(), args.get(1)) else {
        bail!("usage: cargo xtask fuzz <target> <seconds>   (cargo xtask fuzz --list)");
    };
    let seconds: u64 = seconds
        .parse()
        .with_context(|| format!("`{seconds}` is not a number of seconds"))?;
    let mut cmd = std::process::Command::new("cargo");
    cmd.current_dir(&dir)
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["+nightly", "fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={seconds}"));
    run(&mut cmd)
}
