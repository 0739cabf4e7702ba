//! muxlink installed as a tool, through the real binary: `muxlink service
//! install|uninstall` against a fake `systemctl` that records its arguments
//! (the unit file is real, under a temporary `XDG_CONFIG_HOME`); the files of
//! a background agent where the XDG dirs say (pidfile and status in
//! `$XDG_RUNTIME_DIR/muxlink`, the log in `$XDG_STATE_HOME/muxlink`, none in
//! the data dir); and the agent's log lines on stderr, for a terminal-less
//! run and for one under systemd (no timestamps, never colour codes).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use muxlink_e2e::{Tmux, wait_output};
use test_support::wait_until_blocking;

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const T: Duration = Duration::from_secs(30);
const PHONE_ID: &str = "0123456789abcdef0123456789abcdef";
/// Nothing listens there: the agent keeps retrying, which is all these tests need.
const NO_SERVER: &str = "http://127.0.0.1:9";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A user's whole environment in one temp dir: HOME and every XDG dir, no
/// `MUXLINK_*` directory variable, and a bin dir put first on PATH.
struct User {
    root: tempfile::TempDir,
    tmux: Tmux,
}

impl User {
    fn new() -> User {
        let root = tempfile::tempdir().unwrap();
        for d in ["home", "config", "data", "state", "run", "bin"] {
            std::fs::create_dir(root.path().join(d)).unwrap();
        }
        std::fs::set_permissions(
            root.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        User {
            root,
            tmux: Tmux::new(),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let path = format!(
            "{}:{}",
            self.dir("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = Command::new(BIN);
        c.args(args)
            .env("HOME", self.dir("home"))
            .env("XDG_CONFIG_HOME", self.dir("config"))
            .env("XDG_DATA_HOME", self.dir("data"))
            .env("XDG_STATE_HOME", self.dir("state"))
            .env("XDG_RUNTIME_DIR", self.dir("run"))
            .env("PATH", path)
            .env("MUXLINK_TMUX_SOCKET", &self.tmux.socket)
            .env("MUXLINK_LOOPBACK_ONLY", "true")
            .env("MUXLINK_HOST_NAME", "e2e-host");
        for var in [
            "MUXLINK_HOME",
            "MUXLINK_CONFIG_DIR",
            "MUXLINK_DATA_DIR",
            "MUXLINK_SERVER",
            "MUXLINK_HMAC_SECRET",
            "MUXLINK_LOG_FILE",
            "JOURNAL_STREAM",
            "INVOCATION_ID",
            "RUST_LOG",
        ] {
            c.env_remove(var);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        wait_output(self.cmd(args).spawn().unwrap(), T).unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.output(args);
        assert!(
            o.status.success(),
            "muxlink {args:?} failed: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// `init` against a server that is not there, and a pairing record
    /// written by hand: enough for `start`, `run` and `service install`.
    fn init_and_pair(&self) -> PathBuf {
        self.ok(&["init", "--server", NO_SERVER]);
        let data = self.dir("data").join("muxlink");
        assert!(data.join("ed25519-private-key").is_file());
        let record = format!(r#"[{{"deviceId":"{PHONE_ID}","pairedAt":"2026-11-30T10:00:00Z"}}]"#);
        for (name, bytes) in [
            ("paired_devices.json".to_string(), record.into_bytes()),
            (format!("shared-secret-{PHONE_ID}"), vec![7u8; 32]),
        ] {
            std::fs::write(data.join(&name), bytes).unwrap();
            std::fs::set_permissions(data.join(&name), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        data
    }

    /// A fake `systemctl` first on PATH: appends its arguments to
    /// `systemctl.log`, prints `stderr` and exits with `code`.
    fn fake_systemctl(&self, code: i32, stderr: &str) {
        let script = self.dir("bin").join("systemctl");
        let log = self.dir("bin").join("systemctl.log");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nprintf '%s' '{stderr}' >&2\nexit {code}\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The calls the fake `systemctl` saw, then forgets them.
    fn systemctl_calls(&self) -> Vec<String> {
        let log = self.dir("bin").join("systemctl.log");
        let calls = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        calls.lines().map(str::to_owned).collect()
    }

    fn unit_file(&self) -> PathBuf {
        self.dir("config").join("systemd/user/muxlink.service")
    }
}

#[test]
fn service_install_writes_the_unit_and_drives_systemctl() {
    let user = User::new();
    user.fake_systemctl(0, "");

    // Unpaired, a service would only fail and restart: refused, nothing written.
    user.ok(&["init", "--server", NO_SERVER]);
    let o = user.output(&["service", "install"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("muxlink pair"),
        "{}",
        text(&o.stderr)
    );
    assert!(!user.unit_file().exists());
    assert!(user.systemctl_calls().is_empty());

    user.init_and_pair();
    let out = user.ok(&["service", "install"]);
    assert!(
        out.contains(&user.unit_file().display().to_string()),
        "{out}"
    );
    assert!(out.contains("journalctl --user -u muxlink"), "{out}");
    assert_eq!(
        user.systemctl_calls(),
        [
            "--user daemon-reload",
            "--user enable --now muxlink.service"
        ]
    );
    let unit = std::fs::read_to_string(user.unit_file()).unwrap();
    let exe = std::fs::canonicalize(BIN).unwrap();
    let exec = format!("ExecStart=\"{}\" run", exe.display());
    assert!(unit.lines().any(|l| l == exec), "{exec} missing:\n{unit}");
    assert!(unit.lines().any(|l| l == "Restart=on-failure"), "{unit}");
    assert!(unit.contains("WantedBy=default.target"), "{unit}");
    // The agent reads its config: nothing of this shell's MUXLINK_* goes in.
    assert!(!unit.contains("Environment="), "{unit}");
    assert_eq!(mode(&user.unit_file()), 0o600);

    // Installing again rewrites the unit and restarts the service.
    user.ok(&["service", "install"]);
    assert_eq!(
        user.systemctl_calls(),
        [
            "--user daemon-reload",
            "--user enable --now muxlink.service",
            "--user restart muxlink.service"
        ]
    );

    let out = user.ok(&["service", "uninstall"]);
    assert!(out.contains("removed"), "{out}");
    assert!(!user.unit_file().exists());
    assert_eq!(
        user.systemctl_calls(),
        [
            "--user disable --now muxlink.service",
            "--user daemon-reload"
        ]
    );
    let out = user.ok(&["service", "uninstall"]);
    assert!(out.contains("no muxlink service is installed"), "{out}");
    assert!(user.systemctl_calls().is_empty());
}

#[test]
fn service_install_names_explicit_dirs_and_reports_systemctl_failures() {
    let user = User::new();
    user.init_and_pair();
    // A home chosen with MUXLINK_HOME is where the service must look too.
    let home = user.dir("elsewhere");
    std::fs::create_dir(&home).unwrap();
    for f in std::fs::read_dir(user.dir("data").join("muxlink")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), home.join(f.file_name())).unwrap();
    }
    std::fs::copy(
        user.dir("config").join("muxlink/config.toml"),
        home.join("config.toml"),
    )
    .unwrap();
    user.fake_systemctl(1, "Failed to connect to bus: No medium found");
    let o = wait_output(
        user.cmd(&["service", "install"])
            .env("MUXLINK_HOME", &home)
            .spawn()
            .unwrap(),
        T,
    )
    .unwrap();
    let err = text(&o.stderr);
    assert!(!o.status.success());
    // This shell's tmux socket is not in config.toml: said, then the one error line.
    let (notes, errors): (Vec<&str>, Vec<&str>) =
        err.lines().partition(|l| l.starts_with("muxlink: note: "));
    assert!(
        notes
            .iter()
            .any(|l| l.contains("MUXLINK_TMUX_SOCKET") && l.contains("`tmux_socket`")),
        "{err}"
    );
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        err.contains("systemctl --user daemon-reload` failed: Failed to connect to bus"),
        "{err}"
    );
    let unit = std::fs::read_to_string(user.unit_file()).unwrap();
    let env = format!("Environment=\"MUXLINK_HOME={}\"", home.display());
    assert!(unit.lines().any(|l| l == env), "{env} missing:\n{unit}");
}

#[test]
fn without_systemctl_the_commands_are_printed() {
    let user = User::new();
    user.init_and_pair();
    let empty = user.dir("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = wait_output(
        user.cmd(&["service", "install"])
            .env("PATH", &empty)
            .spawn()
            .unwrap(),
        T,
    )
    .unwrap();
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("systemctl not found"), "{out}");
    assert!(
        out.contains("systemctl --user enable --now muxlink.service"),
        "{out}"
    );
    assert!(user.unit_file().is_file());
}

#[test]
fn background_agent_files_follow_the_xdg_dirs() {
    let user = User::new();
    user.tmux.new_session("xdg", 80, 24).unwrap();
    let data = user.init_and_pair();
    let out = user.ok(&["start"]);
    let runtime = user.dir("run").join("muxlink");
    let state = user.dir("state").join("muxlink");
    let log = state.join("agent.log");
    assert!(out.contains(&log.display().to_string()), "{out}");
    let pid: u32 = std::fs::read_to_string(runtime.join("agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until_blocking(T, || runtime.join("agent-status.json").exists()),
        "the agent wrote no status file"
    );
    for (p, m) in [
        (&runtime, 0o700),
        (&state, 0o700),
        (&runtime.join("agent.pid"), 0o600),
        (&runtime.join("agent-status.json"), 0o600),
        (&log, 0o600),
    ] {
        assert_eq!(mode(p), m, "{}", p.display());
    }
    for f in ["agent.pid", "agent-status.json", "agent.log"] {
        assert!(!data.join(f).exists(), "{f} in the data dir");
    }
    let status = user.ok(&["status", "--json"]);
    assert!(status.contains(&pid.to_string()), "{status}");
    // A second agent, even one that does not see this runtime dir, is refused.
    let o = wait_output(
        user.cmd(&["run"])
            .env_remove("XDG_RUNTIME_DIR")
            .spawn()
            .unwrap(),
        T,
    )
    .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("another muxlink agent already uses"),
        "{}",
        text(&o.stderr)
    );
    user.ok(&["stop"]);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("agent ready"), "{logged}");
    assert!(logged.contains("agent stopped"), "{logged}");
    assert!(
        !logged.contains('\u{1b}'),
        "colour codes in the log: {logged}"
    );
}

/// Runs `muxlink <args>` (`run`, extra env applied) until "agent ready",
/// stops it, and returns its stderr lines.
fn run_lines(user: &User, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = user.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + T;
    while !lines.iter().any(|l: &String| l.contains("agent ready")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!("no `agent ready` line: {lines:#?}");
            }
        }
    }
    // A debug line on demand: the agent logs SIGUSR1 ("waking signaling") at debug.
    kill("-USR1", child.id());
    std::thread::sleep(Duration::from_millis(300));
    kill("-TERM", child.id());
    let status = child.wait().unwrap();
    lines.extend(rx.iter());
    assert!(status.success(), "{status}: {lines:#?}");
    lines
}

fn kill(signal: &str, pid: u32) {
    Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
}

#[test]
fn run_logs_for_its_reader_terminal_or_journal() {
    let user = User::new();
    user.tmux.new_session("logs", 80, 24).unwrap();
    user.init_and_pair();
    let starts_with_time = |l: &str| l.trim_start().starts_with(|c: char| c.is_ascii_digit());

    // stderr is a pipe: timestamps, no colour codes, info for our crates.
    let plain = run_lines(&user, &["run"], &[]);
    let ready = plain.iter().find(|l| l.contains("agent ready")).unwrap();
    assert!(starts_with_time(ready), "{ready}");
    assert!(plain.iter().all(|l| !l.contains('\u{1b}')), "{plain:#?}");
    assert!(plain.iter().all(|l| !l.contains("DEBUG")), "{plain:#?}");

    // Under systemd the journal stamps the lines: none of ours.
    let journal = run_lines(&user, &["run"], &[("INVOCATION_ID", "0123456789abcdef")]);
    let ready = journal.iter().find(|l| l.contains("agent ready")).unwrap();
    assert!(!starts_with_time(ready), "{ready}");
    assert!(ready.trim_start().starts_with("INFO"), "{ready}");
    assert!(
        journal.iter().all(|l| !l.contains('\u{1b}')),
        "{journal:#?}"
    );

    // -v: debug lines (which crates: the filter is unit-tested); RUST_LOG wins.
    let verbose = run_lines(&user, &["-v", "run"], &[]);
    assert!(
        verbose
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("SIGUSR1")),
        "{verbose:#?}"
    );
    let quiet = run_lines(&user, &["-v", "run"], &[("RUST_LOG", "agent_bin=info")]);
    assert!(quiet.iter().all(|l| !l.contains("DEBUG")), "{quiet:#?}");
}
