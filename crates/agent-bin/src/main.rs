//! The `muxlink` binary: parses the command line, sets up logging and hands off
//! to `agent_bin::commands`. Errors print as one line and exit non-zero.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = agent_bin::cli::Cli::parse();
    let daemon = matches!(
        cli.command,
        agent_bin::cli::Command::Run | agent_bin::cli::Command::Serve { .. }
    );
    agent_bin::logging::init(cli.verbose, daemon);
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
    let result = runtime.block_on(agent_bin::commands::dispatch(cli));
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
