//! `demo`: builds the `muxlink` binary and the demo driver, then runs the whole
//! product on this machine (server, agent, tmux, phone) and prints a report.

use anyhow::Result;

use crate::run::{build_with_agent, project_root, run};

pub fn demo() -> Result<()> {
    // The demo prints the web client's URL: serve the real page where npm exists.
    crate::web::web_if_available()?;
    let driver = build_with_agent(false, "muxlink-demo")?;
    let mut cmd = std::process::Command::new(driver);
    cmd.current_dir(project_root());
    run(&mut cmd)
}
