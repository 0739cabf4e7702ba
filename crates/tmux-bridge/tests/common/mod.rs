//! Test harness: a real tmux server on a private socket per test
//! ([`PrivateTmux`] of test-support, killed on drop even when the test fails)
//! with the bridge's own additions, plus small wait helpers.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use tmux_bridge::{BridgeConfig, PaneOutput, TmuxBridge};

/// Upper bound for any wait in a test.
pub const WAIT: Duration = Duration::from_secs(20);

pub use test_support::PrivateTmux;

/// What the bridge tests add to [`PrivateTmux`]: 80×24 sessions and a bridge
/// on the server's socket.
#[allow(async_fn_in_trait)] // Test code: no Send bound needed.
pub trait TmuxExt {
    /// A fresh server (socket tagged `tag`) with a first session `name`
    /// running `cmd` (or a shell).
    fn with_session(tag: &str, name: &str, cmd: Option<&str>) -> PrivateTmux;

    /// Creates a detached 80×24 session running `cmd` (or a shell); returns
    /// its first pane id.
    fn session(&self, name: &str, cmd: Option<&str>) -> String;

    /// A bridge on this socket that would start servers with `-f /dev/null`.
    async fn bridge(&self) -> TmuxBridge;

    /// The same with `pipe_helper` set to `helper`'s words.
    async fn bridge_with_helper(&self, helper: &[&str]) -> TmuxBridge;
}

impl TmuxExt for PrivateTmux {
    fn with_session(tag: &str, name: &str, cmd: Option<&str>) -> PrivateTmux {
        let s = PrivateTmux::tagged(tag);
        s.session(name, cmd);
        s
    }

    fn session(&self, name: &str, cmd: Option<&str>) -> String {
        self.new_session_running(name, 80, 24, cmd).unwrap()
    }

    async fn bridge(&self) -> TmuxBridge {
        TmuxBridge::start_with(test_config(&self.socket))
            .await
            .unwrap()
    }

    async fn bridge_with_helper(&self, helper: &[&str]) -> TmuxBridge {
        let mut cfg = test_config(&self.socket);
        cfg.pipe_helper = Some(helper.iter().map(|w| w.to_string()).collect());
        TmuxBridge::start_with(cfg).await.unwrap()
    }
}

/// The tests' bridge settings for a socket: servers started with
/// `-f /dev/null`, a generous call timeout.
fn test_config(socket: &str) -> BridgeConfig {
    let mut cfg = BridgeConfig::new(socket);
    cfg.config_file = Some("/dev/null".into());
    // Tests run in parallel on two cores, some with panes flooding output;
    // a generous command timeout keeps a busy tmux from failing them.
    cfg.timeout = std::time::Duration::from_secs(30);
    cfg
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
pub fn signal(server: &PrivateTmux, channel: &str) {
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
    pub async fn attach(server: &PrivateTmux, target: &str) -> DesktopClient {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::from(server.command())
            .args(["-C", "attach", "-t", target])
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
