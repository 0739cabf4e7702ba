//! `muxlink service install|uninstall`: the agent as a user service that the
//! service manager starts at login and restarts after a failure: a systemd
//! user unit on Linux, a launchd agent on macOS.
//!
//! The pure parts are separate so they can be tested without a service
//! manager: [`service_file`] decides where the file goes, [`render_unit`] and
//! [`render_plist`] write its text from the executable and the environment.
//! The service runs `muxlink run`, which reads config.toml like every other
//! command; the only environment it is given is the directories chosen
//! explicitly at install time (`MUXLINK_HOME`, `--config-dir`, `--data-dir`),
//! since they say where that config is. Without `systemctl` (or `launchctl`)
//! on PATH the file is still written and the commands to run are printed.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::ServiceCommand;
use crate::config::{self, Config, Overrides};
use crate::error::CliError;
use crate::pidfile;
use crate::store::Store;

/// The systemd unit's name.
pub const UNIT_NAME: &str = "muxlink.service";
/// The launchd job's label (and the plist's name without `.plist`).
pub const LAUNCHD_LABEL: &str = "muxlink.agent";
/// Seconds systemd waits before restarting a failed agent.
pub const RESTART_SEC: u32 = 10;

/// The service manager of this platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// systemd user units (Linux and other non-macOS Unix).
    Systemd,
    /// launchd agents (macOS).
    Launchd,
}

impl Manager {
    /// launchd on macOS, systemd elsewhere.
    pub fn current() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// Where the service file goes: `$XDG_CONFIG_HOME/systemd/user/muxlink.service`
/// (default `~/.config`), or `~/Library/LaunchAgents/muxlink.agent.plist`.
/// A relative `XDG_CONFIG_HOME` is ignored, as the XDG spec says.
pub fn service_file(manager: Manager, xdg_config_home: Option<&Path>, home: &Path) -> PathBuf {
    match manager {
        Manager::Systemd => xdg_config_home
            .filter(|p| p.is_absolute())
            .map_or_else(|| home.join(".config"), Path::to_path_buf)
            .join("systemd/user")
            .join(UNIT_NAME),
        Manager::Launchd => home
            .join("Library/LaunchAgents")
            .join(format!("{LAUNCHD_LABEL}.plist")),
    }
}

/// The systemd user unit that runs `<exe> run` with `env` set.
pub fn render_unit(exe: &Path, env: &[(String, String)]) -> String {
    let mut unit = String::from(
        "# Written by `muxlink service install`; `muxlink service uninstall` removes it.\n\
         [Unit]\n\
         Description=muxlink agent: your tmux sessions on your phone\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n",
    );
    unit.push_str(&format!(
        "ExecStart={} run\n",
        systemd_quote(&exe.to_string_lossy(), true)
    ));
    unit.push_str(&format!(
        "Restart=on-failure\n\
         RestartSec={RESTART_SEC}s\n\
         # The agent may start the tmux server; stopping the agent must not kill\n\
         # that server and every session in it, so only the agent is signalled.\n\
         KillMode=process\n\
         WorkingDirectory=%h\n"
    ));
    for (k, v) in env {
        unit.push_str(&format!(
            "Environment={}\n",
            systemd_quote(&format!("{k}={v}"), false)
        ));
    }
    unit.push_str("\n[Install]\nWantedBy=default.target\n");
    unit
}

/// One double-quoted word for a unit file: `\` and `"` escaped, control
/// characters as C escapes, `%` doubled (specifiers), and in a command line
/// `$` doubled (variable expansion).
fn systemd_quote(s: &str, command_line: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            '$' if command_line => out.push_str("$$"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The launchd agent that runs `<exe> run` at login and keeps it alive, with
/// `env` set; its stdout and stderr go to `log` (the agent's own rotating log,
/// which `env` should name through `MUXLINK_LOG_FILE`).
pub fn render_plist(exe: &Path, env: &[(String, String)], log: &Path) -> String {
    let x = |s: &str| xml_escape(s);
    let mut plist = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by `muxlink service install`; `muxlink service uninstall` removes it. -->\n\
         <plist version=\"1.0\">\n<dict>\n",
    );
    plist.push_str(&format!(
        "  <key>Label</key>\n  <string>{LAUNCHD_LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n  <array>\n    <string>{}</string>\n    <string>run</string>\n  </array>\n\
         \x20 <key>RunAtLoad</key>\n  <true/>\n\
         \x20 <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n\
         \x20 <key>ThrottleInterval</key>\n  <integer>{RESTART_SEC}</integer>\n\
         \x20 <!-- The tmux server the agent may start outlives the agent. -->\n\
         \x20 <key>AbandonProcessGroup</key>\n  <true/>\n\
         \x20 <key>StandardOutPath</key>\n  <string>{log}</string>\n\
         \x20 <key>StandardErrorPath</key>\n  <string>{log}</string>\n",
        x(&exe.to_string_lossy()),
        log = x(&log.to_string_lossy()),
    ));
    if !env.is_empty() {
        plist.push_str("  <key>EnvironmentVariables</key>\n  <dict>\n");
        for (k, v) in env {
            plist.push_str(&format!(
                "    <key>{}</key>\n    <string>{}</string>\n",
                x(k),
                x(v)
            ));
        }
        plist.push_str("  </dict>\n");
    }
    plist.push_str("</dict>\n</plist>\n");
    plist
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The environment the service gets: the directories given explicitly now
/// (made absolute), so the service finds the same config and data.
pub fn service_env(o: &Overrides) -> Vec<(String, String)> {
    [
        (config::ENV_HOME, &o.home),
        (config::ENV_CONFIG_DIR, &o.config_dir),
        (config::ENV_DATA_DIR, &o.data_dir),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        let v = v.as_ref()?;
        let v = std::path::absolute(v).unwrap_or_else(|_| v.clone());
        Some((k.to_string(), v.to_string_lossy().into_owned()))
    })
    .collect()
}

/// Runs `muxlink service install|uninstall`.
pub fn service(command: ServiceCommand, o: &Overrides) -> Result<(), CliError> {
    let manager = Manager::current();
    let home = directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or(CliError::NoHomeDir)?;
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    let file = service_file(manager, xdg.as_deref(), &home);
    match command {
        ServiceCommand::Install => install(manager, &file, o),
        ServiceCommand::Uninstall => uninstall(manager, &file),
    }
}

/// The overrides the service will see: the explicit directories only.
fn dirs_only(o: &Overrides) -> Overrides {
    Overrides {
        home: o.home.clone(),
        config_dir: o.config_dir.clone(),
        data_dir: o.data_dir.clone(),
        ..Overrides::default()
    }
}

/// Settings given here by flag or environment that the service, reading
/// only config.toml, will not have: one line each.
fn settings_the_service_lacks(o: &Overrides, service: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    let mut differs = |given: Option<&str>, has: &str, var: &str, key: &str| {
        if given.is_some_and(|g| g != has) {
            notes.push(format!(
                "note: {var} is set here, but the service reads only config.toml: \
                 put `{key}` there for the service to use it"
            ));
        }
    };
    differs(
        o.server_url.as_deref(),
        service.server_url.as_deref().unwrap_or(""),
        "MUXLINK_SERVER / --server",
        "server_url",
    );
    differs(
        o.hmac_secret.as_deref(),
        &service.hmac_secret,
        "MUXLINK_HMAC_SECRET / --hmac-secret",
        "hmac_secret",
    );
    differs(
        o.host_name.as_deref(),
        &service.host_name,
        "MUXLINK_HOST_NAME",
        "host_name",
    );
    differs(
        o.tmux_socket.as_deref(),
        &service.tmux_socket,
        "MUXLINK_TMUX_SOCKET / --tmux-socket",
        "tmux_socket",
    );
    notes
}

fn install(manager: Manager, file: &Path, o: &Overrides) -> Result<(), CliError> {
    // What the service will run with: config.toml and the explicit dirs.
    let cfg = Config::load(&dirs_only(o))?;
    // Refuse now what would make the service fail and restart for ever.
    let store = Store::new(&cfg.paths.data_dir);
    store.load_identity()?;
    if cfg.server_url.is_none() {
        return Err(CliError::Other(format!(
            "no server_url in {}: the service reads only that file; \
             run `muxlink init --server URL` first",
            cfg.paths.config_file().display()
        )));
    }
    if store.load_paired()?.is_none() {
        return Err(CliError::NotPaired);
    }
    for note in settings_the_service_lacks(o, &cfg) {
        eprintln!("muxlink: {note}");
    }
    let reinstall = file.exists();
    if !reinstall && let Some(pid) = pidfile::running_pid(&cfg.paths.pid_file()) {
        return Err(CliError::Other(format!(
            "an agent started by `muxlink start` is running (pid {pid}): \
             run `muxlink stop` first, then install the service again"
        )));
    }
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Other(format!("cannot find the muxlink executable: {e}")))?;
    let mut env = service_env(o);
    let text = match manager {
        Manager::Systemd => render_unit(&exe, &env),
        Manager::Launchd => {
            let log = cfg.paths.log_file();
            crate::store::ensure_private_dir(&cfg.paths.state_dir)?;
            env.push((
                crate::logging::ENV_LOG_FILE.to_string(),
                log.to_string_lossy().into_owned(),
            ));
            render_plist(&exe, &env, &log)
        }
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io("create", dir, &e))?;
    }
    crate::store::write_private(file, text.as_bytes())?;
    println!("wrote {}", file.display());
    let file_arg = file.to_string_lossy().into_owned();
    let steps: Vec<Vec<&str>> = match manager {
        Manager::Systemd => {
            let mut s = vec![
                vec!["--user", "daemon-reload"],
                vec!["--user", "enable", "--now", UNIT_NAME],
            ];
            if reinstall {
                s.push(vec!["--user", "restart", UNIT_NAME]);
            }
            s
        }
        Manager::Launchd => {
            let mut s = Vec::new();
            if reinstall {
                s.push(vec!["unload", file_arg.as_str()]);
            }
            s.push(vec!["load", "-w", file_arg.as_str()]);
            s
        }
    };
    let tool = tool_name(manager);
    let Some(program) = find_program(tool) else {
        println!("{tool} not found; to start the agent now and at every login, run:");
        for step in &steps {
            println!("  {tool} {}", step.join(" "));
        }
        return Ok(());
    };
    for step in &steps {
        run(&program, tool, step, file)?;
    }
    match manager {
        Manager::Systemd => {
            println!("the agent runs as the systemd user service {UNIT_NAME}");
            println!("logs: journalctl --user -u muxlink   status: muxlink status");
            println!(
                "it starts at login; to keep it running while you are logged out: \
                 loginctl enable-linger $USER"
            );
        }
        Manager::Launchd => {
            println!("the agent runs as the launchd agent {LAUNCHD_LABEL}");
            println!(
                "logs: {}   status: muxlink status",
                cfg.paths.log_file().display()
            );
        }
    }
    Ok(())
}

fn uninstall(manager: Manager, file: &Path) -> Result<(), CliError> {
    if !file.exists() {
        println!(
            "no muxlink service is installed ({} is absent)",
            file.display()
        );
        return Ok(());
    }
    let tool = tool_name(manager);
    let file_arg = file.to_string_lossy().into_owned();
    let stop: Vec<&str> = match manager {
        Manager::Systemd => vec!["--user", "disable", "--now", UNIT_NAME],
        Manager::Launchd => vec!["unload", "-w", file_arg.as_str()],
    };
    let program = find_program(tool);
    match &program {
        Some(p) => run(p, tool, &stop, file)?,
        None => println!(
            "{tool} not found; if the agent still runs: {tool} {}",
            stop.join(" ")
        ),
    }
    std::fs::remove_file(file).map_err(|e| CliError::io("remove", file, &e))?;
    println!("removed {}", file.display());
    if manager == Manager::Systemd
        && let Some(p) = &program
    {
        run(p, tool, &["--user", "daemon-reload"], file)?;
    }
    Ok(())
}

fn tool_name(manager: Manager) -> &'static str {
    match manager {
        Manager::Systemd => "systemctl",
        Manager::Launchd => "launchctl",
    }
}

/// `name` in a directory of `PATH`, if it is an executable file there.
fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `program args`; a failure is one line with the command and its first error line.
fn run(program: &Path, tool: &str, args: &[&str], file: &Path) -> Result<(), CliError> {
    let shown = format!("{tool} {}", args.join(" "));
    let out = Command::new(program)
        .args(args.iter().map(OsStr::new))
        .output()
        .map_err(|e| CliError::Other(format!("cannot run `{shown}`: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map_or_else(|| out.status.to_string(), crate::printable::printable);
    Err(CliError::Other(format!(
        "`{shown}` failed: {why} (the service file is {})",
        file.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_files_go_where_the_managers_look() {
        let home = Path::new("/home/u");
        assert_eq!(
            service_file(Manager::Systemd, None, home),
            PathBuf::from("/home/u/.config/systemd/user/muxlink.service")
        );
        assert_eq!(
            service_file(Manager::Systemd, Some(Path::new("/x/cfg")), home),
            PathBuf::from("/x/cfg/systemd/user/muxlink.service")
        );
        assert_eq!(
            service_file(Manager::Systemd, Some(Path::new("rel")), home),
            PathBuf::from("/home/u/.config/systemd/user/muxlink.service")
        );
        assert_eq!(
            service_file(Manager::Launchd, Some(Path::new("/x")), home),
            PathBuf::from("/home/u/Library/LaunchAgents/muxlink.agent.plist")
        );
    }

    #[test]
    fn unit_runs_the_agent_and_restarts_it_on_failure() {
        let unit = render_unit(Path::new("/opt/bin/muxlink"), &[]);
        for line in [
            "ExecStart=\"/opt/bin/muxlink\" run",
            "Restart=on-failure",
            "RestartSec=10s",
            "KillMode=process",
            "WantedBy=default.target",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
        }
        assert!(!unit.contains("Environment="), "{unit}");
    }

    #[test]
    fn unit_quotes_odd_paths_and_carries_the_env() {
        let env = vec![("MUXLINK_HOME".to_string(), "/d/100% \"mine\"".to_string())];
        let unit = render_unit(Path::new("/o p/$HOME/mux\\link"), &env);
        assert!(
            unit.contains("ExecStart=\"/o p/$$HOME/mux\\\\link\" run\n"),
            "{unit}"
        );
        assert!(
            unit.contains("Environment=\"MUXLINK_HOME=/d/100%% \\\"mine\\\"\"\n"),
            "{unit}"
        );
        let weird = render_unit(Path::new("/a\nb"), &[]);
        assert!(weird.contains("ExecStart=\"/a\\x0ab\" run\n"), "{weird}");
    }

    #[test]
    fn plist_keeps_the_agent_alive_and_escapes() {
        let env = vec![("MUXLINK_LOG_FILE".to_string(), "/s/agent.log".to_string())];
        let plist = render_plist(Path::new("/A&B/muxlink"), &env, Path::new("/s/agent.log"));
        for part in [
            "<string>muxlink.agent</string>",
            "<string>/A&amp;B/muxlink</string>\n    <string>run</string>",
            "<key>RunAtLoad</key>\n  <true/>",
            "<key>KeepAlive</key>",
            "<key>MUXLINK_LOG_FILE</key>\n    <string>/s/agent.log</string>",
        ] {
            assert!(plist.contains(part), "{part} missing:\n{plist}");
        }
    }

    #[test]
    fn settings_only_in_this_shell_are_named() {
        let paths = crate::config::Paths {
            config_dir: "/c".into(),
            data_dir: "/d".into(),
            runtime_dir: "/d".into(),
            state_dir: "/d".into(),
        };
        let file = crate::config::FileConfig {
            server_url: Some("https://s.example".into()),
            host_name: Some("desk".into()),
            ..Default::default()
        };
        let service = Config::merge(paths, file, &Overrides::default()).unwrap();
        let o = Overrides {
            server_url: Some("https://s.example".into()),
            hmac_secret: Some("secret".into()),
            host_name: Some("desk".into()),
            ..Default::default()
        };
        let notes = settings_the_service_lacks(&o, &service);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("MUXLINK_HMAC_SECRET") && notes[0].contains("`hmac_secret`"));
        assert!(!notes[0].contains("secret\""), "the value is not shown");
    }

    #[test]
    fn only_explicit_dirs_reach_the_service() {
        assert!(service_env(&Overrides::default()).is_empty());
        let o = Overrides {
            home: Some("/h".into()),
            server_url: Some("https://x".into()),
            ..Default::default()
        };
        assert_eq!(
            service_env(&o),
            vec![("MUXLINK_HOME".to_string(), "/h".to_string())]
        );
    }
}
