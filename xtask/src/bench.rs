//! `bench`: builds the `muxlink` binary and the bench driver with `--release`,
//! then runs the measurements; the driver writes `target/bench/report.json`.
//! `MUXLINK_BENCH_ONLY=connect,slow,lossy` (any of them) runs only those
//! sections (their rows and JSON printed, no report file written).

use anyhow::Result;

use crate::run::{build_with_agent, project_root, run, target_dir};

pub fn bench() -> Result<()> {
    let driver = build_with_agent(true, "muxlink-bench")?;
    let report = target_dir().join("bench").join("report.json");
    let mut cmd = std::process::Command::new(driver);
    cmd.current_dir(project_root()).arg("--out").arg(&report);
    if let Ok(only) = std::env::var("MUXLINK_BENCH_ONLY")
        && !only.trim().is_empty()
    {
        cmd.arg("--only").arg(only.trim());
    }
    run(&mut cmd)
}
