//! tmux passthrough: `muxlink <anything else>` runs `tmux -L <socket> <args>`,
//! first starting the agent (when set up) or waking it from dormancy.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use crate::config::{Config, Overrides};
use crate::error::CliError;
use crate::pidfile;
use crate::store::Store;

/// Replaces this process with tmux; returns only on failure.
pub fn passthrough(cfg: &Config, o: &Overrides, args: &[OsString]) -> Result<(), CliError> {
    let pid_path = cfg.paths.pid_file();
    if pidfile::signal_agent(&pid_path, nix::sys::signal::Signal::SIGUSR1).is_none() {
        let store = Store::new(&cfg.paths.data_dir);
        let set_up = store.has_identity()
            && cfg.server_url.is_some()
            && matches!(store.load_paired(), Ok(Some(_)));
        if set_up && let Err(e) = super::background::start(cfg, o, true) {
            eprintln!("muxlink: warning: the agent did not start: {e}");
        }
    }
    let err = std::process::Command::new("tmux")
        .arg("-L")
        .arg(&cfg.tmux_socket)
        .args(args)
        .exec();
    Err(if err.kind() == std::io::ErrorKind::NotFound {
        CliError::Other("tmux is not installed: install tmux (3.2 or newer)".into())
    } else {
        CliError::Other(format!("cannot run tmux: {err}"))
    })
}
