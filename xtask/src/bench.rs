//! `bench`: builds the `muxlink` binary and the bench driver with `--release`,
//! then runs the measurements; the driver writes `target/bench/report.json`.

use anyhow::Result;

use crate::run::{cargo, project_root, run};

pub fn bench() -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "--package",
        "agent-bin",
        "--bin",
        "muxlink",
        "--package",
        "muxlink-e2e",
        "--bin",
        "muxlink-bench",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    let report = target.join("bench").join("report.json");
    let mut cmd = std::process::Command::new(target.join("release").join("muxlink-bench"));
    cmd.current_dir(project_root()).arg("--out").arg(&report);
    run(&mut cmd)
}
