//! `cargo xtask`: the one entry point for checking, testing, benchmarking and
//! demonstrating muxlink, so CI and people run exactly the same commands.
//!
//! Each subcommand lives in its own module; this file only dispatches.

mod bench;
mod demo;
mod fuzz;
mod import_cycles;
mod man;
mod run;
mod stress;
mod test;
mod tidy;
mod web;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  bench             release build, loopback measurements, target/bench/report.json
  demo              run server, agent, tmux and a phone on this machine and report
  test              fmt check, clippy -D warnings, every unit, integration and e2e test
  lint              fmt check, clippy, rustdoc warnings, cargo deny (if installed)
  man               man pages from the CLI: target/man/muxlink.1 and one per command
  e2e               only the end-to-end tests in tests/ (real tmux, server, WebRTC)
  stress <t> [n]    run e2e test <t> n times (default 50) without retries, count passes
  fuzz <target> <s> run one cargo-fuzz target for <s> seconds (needs nightly + cargo-fuzz)
  fuzz --list       list the fuzz targets
  web               npm ci, vite build of web/ (embedded by the server), vitest run
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "test" => test::test(),
        "lint" => test::lint(),
        "e2e" => test::e2e(),
        "stress" => stress::stress(rest),
        "fuzz" => fuzz::fuzz(rest),
        "demo" => demo::demo(),
        "bench" => bench::bench(),
        "man" => man::man(),
        "web" => web::web(),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}
