//! `cargo xtask man`: the man pages, generated from the CLI definitions.
//!
//! The pages come from the `muxlink` binary itself (its hidden `__man DIR`
//! command, built on `clap_mangen`), so xtask, which is compiled on every
//! `cargo xtask` call, depends neither on agent-bin nor on the generator.

use std::process::Command;

use anyhow::{Context, Result};

use crate::run::{cargo, run, target_dir};

/// Builds `muxlink` and writes `target/man/muxlink.1` and one page per command.
pub fn man() -> Result<()> {
    run(cargo().args(["build", "--package", "agent-bin", "--bin", "muxlink"]))?;
    let out = target_dir().join("man");
    // Start empty, so a page of a removed command does not linger.
    if out.exists() {
        std::fs::remove_dir_all(&out)
            .with_context(|| format!("cannot remove {}", out.display()))?;
    }
    let bin = target_dir().join("debug").join("muxlink");
    run(Command::new(bin).arg("__man").arg(&out))?;
    eprintln!("read one with: man {}", out.join("muxlink.1").display());
    Ok(())
}
