//! `test`, `lint` and `e2e`: the checks CI runs. `test` is the README's test
//! command and what `.ci/run` calls.

use anyhow::Result;

use crate::run::{cargo, have, run};

/// Every static check of `lint`, then every test (unit, integration, e2e, doc tests).
pub fn test() -> Result<()> {
    // First, so the server binary built below embeds the current web client.
    crate::web::web_if_available()?;
    lint()?;
    // nextest does not run doc tests (the crate docs carry compiled examples),
    // so they run first and the suite's summary closes the output.
    run(cargo().args(["test", "--workspace", "--doc"]))?;
    // nextest when installed, else cargo test.
    let runner: &[&str] = if nextest_available() {
        &["nextest", "run"]
    } else {
        &["test"]
    };
    run(cargo().args(runner).args(["--workspace", "--no-fail-fast"]))?;
    Ok(())
}

/// Static checks only: fmt, clippy (also of `muxlink` without the bundled
/// server), rustdoc warnings and `cargo deny`.
pub fn lint() -> Result<()> {
    fmt_check()?;
    clippy()?;
    // `muxlink` without the bundled server (agent-bin's feature `serve` off).
    run(cargo().args([
        "clippy",
        "--package",
        "agent-bin",
        "--no-default-features",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    if have("cargo-deny", &["--version"]) {
        // Advisories need the advisory database from the network; licenses,
        // bans and sources are checked from the lock file alone.
        run(cargo().args(["deny", "check", "licenses", "bans", "sources"]))?;
        if std::env::var_os("MUXLINK_DENY_ADVISORIES").is_some() {
            run(cargo().args(["deny", "check", "advisories"]))?;
        }
    } else {
        eprintln!(
            "cargo-deny is not installed: skipping `cargo deny check` (cargo install cargo-deny)"
        );
    }
    Ok(())
}

/// Only the end-to-end suite in `tests/` (with the web client's browser test).
pub fn e2e() -> Result<()> {
    crate::web::web_if_available()?;
    // The browser test drives the signaling server binary.
    run(cargo().args([
        "build",
        "--package",
        "signaling-server",
        "--bin",
        "muxlink-signaling-server",
    ]))?;
    if nextest_available() {
        run(cargo().args(["nextest", "run", "-p", "muxlink-e2e", "--no-fail-fast"]))
    } else {
        run(cargo().args(["test", "-p", "muxlink-e2e", "--no-fail-fast"]))
    }
}

fn fmt_check() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> Result<()> {
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

fn nextest_available() -> bool {
    have("cargo-nextest", &["nextest", "--version"])
}
