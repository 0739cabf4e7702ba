//! `cargo xtask web`: builds the web client (`npm ci`, type check, `vite build`
//! into web/dist), runs its Vitest unit tests, and marks the server's build
//! script stale so the next cargo build embeds the fresh assets.

use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::run::{have, project_root, run};

/// An npm/npx command run inside web/.
fn npm(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(project_root().join("web"));
    cmd
}

pub fn web() -> Result<()> {
    if !have("npm", &["--version"]) {
        bail!("npm not found: install Node.js 20+ with npm to build the web client");
    }
    run(npm("npm").args(["ci", "--no-audit", "--no-fund"]))?;
    run(npm("npx").args(["tsc", "--noEmit", "-p", "."]))?;
    run(npm("npx").args(["vite", "build"]))?;
    run(npm("npx").args(["vitest", "run"]))?;
    // build.rs watches web/dist only once it exists; touching the script makes
    // cargo rerun it after the first build too.
    let script = project_root().join("crates/signaling-server/build.rs");
    std::fs::File::options()
        .write(true)
        .open(&script)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("cannot touch {}", script.display()))?;
    eprintln!("web client built into web/dist; the next cargo build of signaling-server embeds it");
    Ok(())
}
