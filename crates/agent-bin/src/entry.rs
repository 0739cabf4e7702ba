//! The process entry shared by the `muxlink` binary and the e2e suite's copy of
//! it: parse the command line, set up logging, run, print errors as one line.

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Runs `muxlink` with the process arguments; the exit code to return from `main`.
pub fn main_entry() -> ExitCode {
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Run | Command::Serve { .. });
    crate::logging::init(cli.verbose, daemon);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("muxlink: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(crate::commands::dispatch(cli));
    // Do not wait for stray blocking tasks (e.g. a stuck HTTP call) on exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("muxlink: {e}");
            ExitCode::FAILURE
        }
    }
}
