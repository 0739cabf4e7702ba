//! `muxlink start` / `stop`: the agent as a background process, found through
//! its locked pidfile. `start` waits on a pipe the agent writes to once ready
//! (see `readiness`); `stop` waits for the pidfile lock to be released.
//!
//! The agent logs to `agent.log` in the state dir, rotated by size
//! (`logging::RotatingFile`); its stdout and stderr start on that file too, so
//! whatever it prints before logging is set up (a refusal, a panic) is there.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::config::{Config, Overrides};
use crate::error::CliError;
use crate::logging::open_log;
use crate::pidfile;
use crate::readiness::{Readiness, ReadyPipe};
use crate::store::Store;

/// How long `start` waits for the agent to report that it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long `stop` waits for the agent to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts `muxlink run` detached unless an agent already runs; returns its pid.
pub fn start(cfg: &Config, o: &Overrides, quiet: bool) -> Result<i32, CliError> {
    if let Some(pid) = pidfile::running_pid(&cfg.paths.pid_file()) {
        if !quiet {
            println!("the agent is already running (pid {pid})");
        }
        return Ok(pid);
    }
    // Fail here, with the real reason, rather than in a log file.
    let store = Store::new(&cfg.paths.data_dir);
    store.load_identity()?;
    cfg.require_server()?;
    if store.load_paired()?.is_none() {
        return Err(CliError::NotPaired);
    }
    crate::store::secure_dirs(&cfg.paths)?;
    for dir in [&cfg.paths.runtime_dir, &cfg.paths.state_dir] {
        crate::store::ensure_private_dir(dir)?;
    }
    let log_path = cfg.paths.log_file();
    let log = open_log(&log_path)?;
    let log2 = log
        .try_clone()
        .map_err(|e| CliError::io("open", &log_path, &e))?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("cannot find the muxlink executable: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .env(crate::logging::ENV_LOG_FILE, &log_path);
    // Only directories given explicitly are passed on: the agent resolves the
    // XDG ones itself, and so finds its pidfile where this process looked.
    for (var, dir) in [
        (crate::config::ENV_HOME, &o.home),
        (crate::config::ENV_CONFIG_DIR, &o.config_dir),
        (crate::config::ENV_DATA_DIR, &o.data_dir),
    ] {
        if let Some(d) = dir {
            cmd.env(var, d);
        }
    }
    for (var, val) in [
        ("MUXLINK_SERVER", &o.server_url),
        ("MUXLINK_HMAC_SECRET", &o.hmac_secret),
        ("MUXLINK_HOST_NAME", &o.host_name),
        ("MUXLINK_TMUX_SOCKET", &o.tmux_socket),
    ] {
        if let Some(v) = val {
            cmd.env(var, v);
        }
    }
    if let Some(v) = o.loopback_only {
        cmd.env("MUXLINK_LOOPBACK_ONLY", v.to_string());
    }
    // Own process group: a Ctrl-C in this terminal must not reach the agent.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let ready = ReadyPipe::new()
        .map_err(|e| CliError::Other(format!("cannot create the start-up pipe: {e}")))?;
    ready.pass_to(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::Other(format!("cannot start the agent: {e}")))?;
    let pid = child.id() as i32;
    let waited = ready
        .wait(START_TIMEOUT)
        .map_err(|e| CliError::Other(format!("cannot wait for the agent: {e}")))?;
    match waited {
        Readiness::Ready => {}
        Readiness::Exited => {
            let status = child
                .wait()
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            return Err(CliError::Other(format!(
                "the agent exited at once ({status}); see {}",
                log_path.display()
            )));
        }
        Readiness::TimedOut => {
            return Err(CliError::Other(format!(
                "the agent did not become ready within {} s; see {}",
                START_TIMEOUT.as_secs(),
                log_path.display()
            )));
        }
    }
    if !quiet {
        println!("agent started (pid {pid}); logs in {}", log_path.display());
    }
    Ok(pid)
}

/// Stops the running agent with SIGTERM and waits for it to release the pidfile.
pub fn stop(cfg: &Config) -> Result<(), CliError> {
    let path = cfg.paths.pid_file();
    let Some(pid) = pidfile::running_pid(&path) else {
        println!("the agent is not running");
        return Ok(());
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|e| CliError::Other(format!("cannot signal the agent (pid {pid}): {e}")))?;
    if !pidfile::wait_released(&path, STOP_TIMEOUT) {
        return Err(CliError::Other(format!(
            "the agent (pid {pid}) did not stop within {} s; `kill -9 {pid}` ends it",
            STOP_TIMEOUT.as_secs()
        )));
    }
    println!("agent stopped");
    Ok(())
}
