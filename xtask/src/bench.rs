//! `bench`: builds the `muxlink` binary and the bench driver with `--release`,
//! then runs the measurements; the driver writes `target/bench/report.json`.
//! Then the scale-out load run (`muxlink-bench-scale`: signaling instances on
//! a private PostgreSQL and NATS under 1000 simulated devices) writes
//! `target/bench/scale.json`.
//! `MUXLINK_BENCH_ONLY=connect,echo,slow,lossy,scale` (any of them) runs only those
//! sections (the agent's sections print their rows and JSON and write no
//! report file; `scale` writes its own).

use anyhow::Result;

use crate::run::{build_with_agent, cargo, project_root, run, target_dir};

/// The section that is the scale-out load run rather than a part of `muxlink-bench`.
const SCALE: &str = "scale";

pub fn bench() -> Result<()> {
    let only: Option<Vec<String>> = std::env::var("MUXLINK_BENCH_ONLY")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.split(',').map(|p| p.trim().to_owned()).collect());
    let agent_sections: Option<Vec<&str>> = only.as_ref().map(|o| {
        o.iter()
            .map(String::as_str)
            .filter(|s| *s != SCALE)
            .collect()
    });
    let run_agent = agent_sections.as_ref().is_none_or(|s| !s.is_empty());
    let run_scale = only.as_ref().is_none_or(|o| o.iter().any(|s| s == SCALE));
    let bench_dir = target_dir().join("bench");
    if run_agent {
        let driver = build_with_agent(true, "muxlink-bench")?;
        let mut cmd = std::process::Command::new(driver);
        cmd.current_dir(project_root())
            .arg("--out")
            .arg(bench_dir.join("report.json"));
        if let Some(sections) = &agent_sections {
            cmd.arg("--only").arg(sections.join(","));
        }
        run(&mut cmd)?;
    }
    if run_scale {
        // The load run starts the server binary, which it finds beside itself.
        run(cargo().args([
            "build",
            "--release",
            "--package",
            "muxlink-e2e",
            "--bin",
            "muxlink-bench-scale",
            "--package",
            "signaling-server",
            "--bin",
            "muxlink-signaling-server",
        ]))?;
        let scale = target_dir().join("release").join("muxlink-bench-scale");
        run(std::process::Command::new(scale)
            .current_dir(project_root())
            .arg("--out")
            .arg(bench_dir.join("scale.json")))?;
    }
    Ok(())
}
