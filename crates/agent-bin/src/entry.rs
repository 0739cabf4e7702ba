//! The process entry shared by the `muxlink` binary and the e2e suite's copy of
//! it: parse the command line, set up logging, run, print errors as one line.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::tmux_commands::{Lookup, TmuxCommands};

/// Runs `muxlink` with the process arguments; the exit code to return from `main`.
pub fn main_entry() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // tmux's pane pipe helper, before any other work.
    if let Some(code) = crate::pane_pipe::run_if_asked(&args) {
        return code;
    }
    if let Some(code) = help_for_tmux_command(&args) {
        return code;
    }
    let cli = crate::cli::parse();
    if let Command::Tmux(tmux_args) = &cli.command
        && let Some(code) = refuse_non_tmux_word(&cli, tmux_args)
    {
        return code;
    }
    let daemon = match &cli.command {
        Command::Run => true,
        #[cfg(feature = "serve")]
        Command::Serve(_) => true,
        _ => false,
    };
    if !daemon {
        restore_default_sigpipe();
    }
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

/// `muxlink ls` and friends go to tmux, but only when the word is one of the
/// installed tmux's commands; for anything else clap reports the unknown
/// subcommand with its "similar subcommand" tip, and no agent is started.
fn refuse_non_tmux_word(cli: &Cli, tmux_args: &[OsString]) -> Option<ExitCode> {
    let word = tmux_args.first()?.to_string_lossy().into_owned();
    // Before tmux's prefix matching: `serve` would otherwise run `server-access`.
    if let Some(line) = not_built(&word) {
        eprintln!("muxlink: {line}");
        return Some(ExitCode::from(2));
    }
    let socket = cli.tmux_socket.as_deref().unwrap_or("muxlink");
    // Without a usable tmux, passthrough reports that itself.
    let table = TmuxCommands::from_installed(socket)?;
    match table.lookup(&word) {
        Lookup::Command(_) => None,
        Lookup::Ambiguous(names) => {
            eprintln!(
                "muxlink: `{word}` is ambiguous among tmux's commands ({}); type more of it",
                names.join(", ")
            );
            Some(ExitCode::from(2))
        }
        Lookup::Unknown => {
            let _ = unknown_subcommand(&word).print();
            Some(ExitCode::from(2))
        }
    }
}

/// The one line for a command of the full `muxlink` that this build leaves
/// out: `serve` and `web` come with the bundled signaling server (cargo
/// feature `serve`); None for any other word, and always in a full build.
fn not_built(word: &str) -> Option<&'static str> {
    if cfg!(feature = "serve") {
        return None;
    }
    match word {
        "serve" => Some(
            "this muxlink is built without the bundled signaling server (cargo feature `serve`): run `muxlink-signaling-server` instead",
        ),
        "web" => Some(
            "this muxlink is built without the web client (cargo feature `serve`): host web/dist yourself, or export it with a muxlink built with the feature",
        ),
        _ => None,
    }
}

/// clap's own "unrecognized subcommand" error, with the tip it would give
/// without the tmux passthrough (muxlink commands similar to `word`).
fn unknown_subcommand(word: &str) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let mut cmd = Cli::command();
    let similar: Vec<String> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_owned())
        .filter(|name| strsim::jaro(word, name) > 0.7)
        .collect();
    let usage = cmd.render_usage();
    let mut err = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(&cmd);
    err.insert(
        ContextKind::InvalidSubcommand,
        ContextValue::String(word.to_owned()),
    );
    if !similar.is_empty() {
        err.insert(
            ContextKind::SuggestedSubcommand,
            ContextValue::Strings(similar),
        );
    }
    err.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    err
}

/// `muxlink help <tmux command>` explains the passthrough and prints tmux's
/// usage line for it, instead of clap's "unrecognized subcommand".
fn help_for_tmux_command(args: &[OsString]) -> Option<ExitCode> {
    let [_, help, word] = args else { return None };
    if help != "help" {
        return None;
    }
    let word = word.to_string_lossy();
    if Cli::command().find_subcommand(word.as_ref()).is_some() {
        return None;
    }
    if let Some(line) = not_built(&word) {
        eprintln!("muxlink: {line}");
        return Some(ExitCode::from(2));
    }
    let table = TmuxCommands::from_installed("muxlink")?;
    let Lookup::Command(name) = table.lookup(&word) else {
        return None;
    };
    let usage = std::process::Command::new("tmux")
        .args(["-L", "muxlink", "list-commands", &name])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("`muxlink {word}` runs tmux on muxlink's socket: tmux -L muxlink {name}");
    if !usage.is_empty() {
        println!("usage: {usage}");
    }
    println!("See `man tmux` for the details; the agent starts (or wakes) on the way.");
    Some(ExitCode::SUCCESS)
}

/// Short commands die quietly on a closed stdout (`muxlink status | head -1`)
/// instead of panicking in `println!`; the daemon keeps Rust's default
/// (SIGPIPE ignored, EPIPE returned) so a dead tmux pipe is an error, not a kill.
fn restore_default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called once at start-up before the runtime or any other thread
    // exists, and SIG_DFL installs no Rust code as a handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_left_out_of_the_build_say_so() {
        for word in ["serve", "web"] {
            let line = super::not_built(word);
            assert_eq!(line.is_some(), !cfg!(feature = "serve"), "{word}");
            if let Some(line) = line {
                assert!(line.contains("cargo feature `serve`"), "{line}");
            }
        }
        assert_eq!(super::not_built("ls"), None);
    }
}
