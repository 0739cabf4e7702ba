//! `muxlink start` / `stop`: the agent as a background process, found through
//! its locked pidfile.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{Config, Overrides};
use crate::error::CliError;
use crate::pidfile;
use crate::status::AgentStatus;
use crate::store::Store;

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
    crate::store::ensure_private_dir(&cfg.paths.data_dir)?;
    let log_path = cfg.paths.log_file();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| CliError::io("open", &log_path, &e))?;
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
        .env("MUXLINK_CONFIG_DIR", &cfg.paths.config_dir)
        .env("MUXLINK_DATA_DIR", &cfg.paths.data_dir);
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
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::Other(format!("cannot start the agent: {e}")))?;
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::Other(format!(
                "the agent exited at once ({status}); see {}",
                log_path.display()
            )));
        }
        let ready =
            AgentStatus::read(&cfg.paths.status_file()).is_some_and(|s| s.pid as i32 == pid);
        if ready {
            break;
        }
        if Instant::now() >= deadline {
            return Err(CliError::Other(format!(
                "the agent did not become ready within 15 s; see {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while pidfile::running_pid(&path).is_some() {
        if Instant::now() >= deadline {
            return Err(CliError::Other(format!(
                "the agent (pid {pid}) did not stop within 20 s; `kill -9 {pid}` ends it"
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    println!("agent stopped");
    Ok(())
}
