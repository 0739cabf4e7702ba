//! `demo`: builds the `muxlink` binary and the demo driver, then runs the whole
//! product on this machine (server, agent, tmux, phone) and prints a report.

use anyhow::Result;

use crate::run::{cargo, project_root, run};

pub fn demo() -> Result<()> {
    run(cargo().args([
        "build",
        "--package",
        "agent-bin",
        "--bin",
        "muxlink",
        "--package",
        "muxlink-e2e",
        "--bin",
        "muxlink-demo",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    let mut cmd = std::process::Command::new(target.join("debug").join("muxlink-demo"));
    cmd.current_dir(project_root());
    run(&mut cmd)
}
