//! Test harness: a real tmux server on a private socket per test, killed by a
//! Drop guard even when the test fails, plus small wait helpers.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tmux_bridge::{BridgeConfig, PaneOutput, TmuxBridge};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Upper bound for any wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);

/// A tmux server (`tmux -L muxlink-test-…`) owned by one test.
pub struct TmuxServer {
    pub socket: String,
}

impl TmuxServer {
    /// A unique socket; no server is started yet.
    pub fn new(tag: &str) -> TmuxServer {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        TmuxServer {
            socket: format!("muxlink-test-{}-{tag}-{n}", std::process::id()),
        }
    }

    /// A unique socket with a first session `name` running `cmd` (or a shell).
    pub fn with_session(tag: &str, name: &str, cmd: Option<&str>) -> TmuxServer {
        let s = TmuxServer::new(tag);
        s.new_session(name, cmd);
        s
    }

    /// Runs `tmux -L socket -f /dev/null args…` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .env_remove("TMUX")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Like `run` but asserts success and returns trimmed stdout.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_owned()
    }

    /// Creates a detached 80×24 session; returns its first pane id.
    pub fn new_session(&self, name: &str, cmd: Option<&str>) -> String {
        let mut args = vec![
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-s",
            name,
            "-x",
            "80",
            "-y",
            "24",
        ];
        if let Some(c) = cmd {
            args.push(c);
        }
        let pane = self.tmux(&args);
        self.tmux(&["set", "-g", "default-size", "80x24"]);
        pane
    }

    /// `display -p -t target format`.
    pub fn display(&self, target: &str, format: &str) -> String {
        self.tmux(&["display", "-p", "-t", target, format])
    }

    /// A bridge on this socket that would start servers with `-f /dev/null`.
    pub async fn bridge(&self) -> TmuxBridge {
        let mut cfg = BridgeConfig::new(&self.socket);
        cfg.config_file = Some("/dev/null".into());
        // Tests run in parallel on two cores, some with panes flooding output;
        // a generous command timeout keeps a busy tmux from failing them.
        cfg.timeout = std::time::Duration::from_secs(30);
        TmuxBridge::start_with(cfg).await.unwrap()
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        // tmux leaves its socket file behind; remove it too.
        let base = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        let path = std::path::Path::new(&base)
            .join(format!("tmux-{uid}"))
            .join(&self.socket);
        let _ = std::fs::remove_file(path);
    }
}

/// Reads the stream until `needle` appears in everything read so far
/// (starting with `initial`); returns all bytes read. Panics after `WAIT`.
pub async fn read_until(out: &mut PaneOutput, initial: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut all = initial.to_vec();
    tokio::time::timeout(WAIT, async {
        while !contains(&all, needle) {
            match out.read().await.unwrap() {
                Some(chunk) => all.extend(chunk),
                None => panic!(
                    "stream ended before {:?}; {} bytes, ending {:?}",
                    String::from_utf8_lossy(needle),
                    all.len(),
                    String::from_utf8_lossy(&all[all.len().saturating_sub(200)..])
                ),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "timed out waiting for {:?}",
            String::from_utf8_lossy(needle)
        )
    });
    all
}

/// Reads until end of stream; returns the bytes.
pub async fn read_to_end(out: &mut PaneOutput) -> Vec<u8> {
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, async {
        while let Some(chunk) = out.read().await.unwrap() {
            all.extend(chunk);
        }
    })
    .await
    .expect("stream did not end");
    all
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// `tmux wait-for -S channel` from the test side (the pane waits on it).
pub fn signal(server: &TmuxServer, channel: &str) {
    server.tmux(&["wait-for", "-S", channel]);
}

/// A "desktop" tmux client (control mode without `ignore-size`, so its size
/// counts) attached to one session; killed on drop.
pub struct DesktopClient {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl DesktopClient {
    /// Attaches to `target` and waits until tmux confirms the attach.
    pub async fn attach(server: &TmuxServer, target: &str) -> DesktopClient {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("tmux")
            .env_remove("TMUX")
            .args(["-L", &server.socket, "-C", "attach", "-t", target])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut c = DesktopClient {
            child,
            stdin,
            lines,
        };
        c.wait_line("%session-changed").await;
        c
    }

    /// Sends one command line.
    pub async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// Waits for an output line starting with `prefix`; returns it.
    pub async fn wait_line(&mut self, prefix: &str) -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                let line = self.lines.next_line().await.unwrap().expect("client ended");
                if line.starts_with(prefix) {
                    return line;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no line starting with {prefix:?}"))
    }

    /// Sets the client size and waits until tmux has applied it to the window.
    pub async fn set_size(&mut self, cols: u16, rows: u16) {
        self.send(&format!("refresh-client -C {cols}x{rows}")).await;
        self.wait_line("%layout-change").await;
    }
}

impl Drop for DesktopClient {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
