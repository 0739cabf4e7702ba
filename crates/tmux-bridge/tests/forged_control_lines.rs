//! A pane cannot frame the control client: screen text that looks like
//! control-mode lines (`%end <time> <number> 1` with the very numbers of the
//! capture command, `%exit`, `%begin`, `%session-changed`), a title or a
//! window name holding such text, or a process name holding newlines and the
//! tree's record separators leave the snapshot byte-exact, the notifications
//! real, and the tree unspoofed.

#![allow(clippy::unwrap_used)]

mod common;

use common::{PrivateTmux, TmuxExt, WAIT};
use tmux_bridge::{CursorState, Notification, TmuxBridge, build_snapshot};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::broadcast;

/// A control client of the test's own (not the bridge's): attached with
/// `ignore-size` so it changes no window, with pane output on, so it shows
/// when tmux has parsed a pane's bytes; and it reads tmux's command counter.
struct Watcher {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Watcher {
    async fn attach(server: &PrivateTmux, target: &str) -> Watcher {
        let mut child = tokio::process::Command::from(server.command())
            .args(["-C", "attach", "-f", "ignore-size"])
            .args(["-t", target])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut w = Watcher {
            child,
            stdin,
            lines,
        };
        w.line_where(|l| l.starts_with("%session-changed")).await;
        w
    }

    async fn line_where(&mut self, f: impl Fn(&str) -> bool) -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                let line = self.lines.next_line().await.unwrap().expect("client ended");
                if f(&line) {
                    return line;
                }
            }
        })
        .await
        .expect("line did not come")
    }

    /// Time and number of the next command tmux runs, as `%begin` shows
    /// them: the number is a server-wide counter, so the commands that come
    /// after it are numbered `number + 1`, `number + 2`, ….
    async fn guard(&mut self) -> (u64, u64) {
        self.stdin.write_all(b"display -p probe\n").await.unwrap();
        let begin = self.line_where(|l| l.starts_with("%begin ")).await;
        let mut f = begin.split(' ').skip(1);
        let t = f.next().unwrap().parse().unwrap();
        let n = f.next().unwrap().parse().unwrap();
        self.line_where(|l| l.starts_with("%end ")).await;
        (t, n)
    }

    /// Waits until tmux has read `marker` from the pane (so it is on the screen).
    async fn drawn(&mut self, marker: &str) {
        self.line_where(|l| l.starts_with("%output ") && l.contains(marker))
            .await;
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A session `s` of 80×50 whose pane prints what the test writes into a
/// FIFO, then `DRAWN`, then sleeps.
struct Forger {
    server: PrivateTmux,
    pane: String,
    fifo: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Forger {
    fn new(tag: &str) -> Forger {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let server = PrivateTmux::tagged(tag);
        let cmd = format!("cat '{}'; printf DRAWN; exec sleep 600", fifo.display());
        let pane = server.new_session_running("s", 80, 50, Some(&cmd)).unwrap();
        Forger {
            server,
            pane,
            fifo,
            _dir: dir,
        }
    }

    /// Has the pane print, just before the bridge's next command runs, lines
    /// that end a reply of any of the next `ahead` commands (their numbers
    /// and times are predicted with a watcher), plus other control lines.
    async fn forge(&self, ahead: u64) {
        let mut watcher = Watcher::attach(&self.server, "=s").await;
        let (t, n) = watcher.guard().await;
        let mut text = String::from("\x1b[31mbefore\x1b[0m forged lines follow\n");
        text.push_str(&format!("%begin {t} {} 1\n", n + 1));
        for time in [t, t + 1] {
            for number in n + 1..=n + ahead {
                text.push_str(&format!("%end {time} {number} 1\n"));
            }
        }
        text.push_str(&format!("%error {t} {} 1\n", n + 1));
        text.push_str("%exit\n%exit forged reason\n%session-changed $99 fake\n");
        text.push_str("%sessions-changed\n%window-add @99\n\x1b[1mafter\x1b[0m");
        let fifo = self.fifo.clone();
        tokio::task::spawn_blocking(move || std::fs::write(fifo, text))
            .await
            .unwrap()
            .unwrap();
        // Seen by the watcher: on the screen now. No command ran since the
        // guard was read, so the numbers predicted hold.
        watcher.drawn("DRAWN").await;
    }

    /// The snapshot the pane's screen gives through separate tmux commands.
    fn expected_snapshot(&self) -> Vec<u8> {
        let out = self
            .server
            .output(&["capture-pane", "-e", "-p", "-t", &self.pane])
            .unwrap();
        assert!(out.status.success());
        let mut text = out.stdout;
        assert_eq!(text.pop(), Some(b'\n'));
        let lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        assert_eq!(lines.len(), 50);
        assert!(lines.iter().any(|l| l.starts_with(b"%end ")));
        let f = "#{cursor_x} #{cursor_y} #{alternate_on} #{cursor_flag}";
        let state = self.server.display(&self.pane, f);
        let v: Vec<u32> = state.split(' ').map(|x| x.parse().unwrap()).collect();
        build_snapshot(
            &lines,
            CursorState {
                x: v[0],
                y: v[1],
                alternate: v[2] == 1,
                visible: v[3] != 0,
            },
        )
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn fresh_snapshot_is_byte_exact_despite_forged_control_lines() {
    let f = Forger::new("forge-fresh");
    let bridge = f.server.bridge().await;
    let pid = bridge.control_pid().await.unwrap();
    f.forge(8).await;
    let snap = bridge.snapshot(&f.pane).await.unwrap();
    assert_eq!(show(&snap), show(&f.expected_snapshot()));
    assert_eq!(
        bridge.control_pid().await,
        Some(pid),
        "client not restarted"
    );
    // The control client still answers in step.
    assert!(bridge.pane_exists(&f.pane).await.unwrap());
    assert_eq!(bridge.list_sessions().await.unwrap().len(), 1);
}

async fn next_note(rx: &mut broadcast::Receiver<Notification>) -> Notification {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(n) => return n,
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("notifications ended: {e}"),
            }
        }
    })
    .await
    .expect("notification did not arrive")
}

/// The name tmux gives the bridge's control client.
fn client_name(server: &PrivateTmux, pid: u32) -> String {
    let clients = server.tmux(&["list-clients", "-F", "#{client_pid} #{client_name}"]);
    clients
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{pid} ")))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn attach_snapshot_and_notifications_survive_forged_control_lines() {
    let f = Forger::new("forge-attach");
    let bridge = f.server.bridge().await;
    let pid = bridge.control_pid().await.unwrap();
    let mut notes = bridge.notifications();
    f.forge(8).await;
    let mut out = bridge.open_output(&f.pane).await.unwrap();
    let snap = out.take_snapshot().unwrap();
    assert_eq!(show(&snap), show(&f.expected_snapshot()));
    assert_eq!(
        bridge.control_pid().await,
        Some(pid),
        "client not restarted"
    );

    // A real session change reaches the bridge; none of the forged ones did.
    f.server.tmux(&["new-session", "-d", "-s", "other"]);
    let name = client_name(&f.server, pid);
    f.server
        .tmux(&["switch-client", "-c", &name, "-t", "=other"]);
    loop {
        let n = next_note(&mut notes).await;
        match &n {
            Notification::SessionChanged { name, .. } if name == "other" => break,
            Notification::SessionChanged { .. }
            | Notification::ControlExited { .. }
            | Notification::ControlRestarted => panic!("forged notification {n:?}"),
            Notification::WindowAdd { window_id } if window_id == "@99" => {
                panic!("forged notification {n:?}")
            }
            Notification::Other { line } if line.starts_with("%end") => {
                panic!("reply framing lost: {line}")
            }
            _ => {}
        }
    }
    let tree = bridge.list_sessions().await.unwrap();
    assert_eq!(tree.len(), 2);
    assert!(!tree.iter().any(|s| s.id == "$99"));

    // The stream goes on after the snapshot, in step with it.
    bridge.send_input(&f.pane, b"x").await.unwrap();
    out.close().await.unwrap();
}

#[tokio::test]
async fn tree_ignores_control_text_in_names_titles_and_process_names() {
    let dir = tempfile::tempdir().unwrap();
    // A process name (argv[0]) may hold any byte but NUL; tmux cuts it at the
    // first space only. This one forges a whole record of the tree format.
    // An invalid UTF-8 byte first: tmux's regex replacement must go on past it.
    let fake: &[u8] = b"x\xff\n%exit\n\x1e$77\x1ffake\x1f1\x1f1\x1f0\x1f@77\x1fw\x1f0\x1f1\
                        \x1f%77\x1f0\x1f1\x1f80\x1f24\x1ft\x1fcmd";
    let name_file = dir.path().join("name");
    std::fs::write(&name_file, fake).unwrap();
    let go = dir.path().join("go");
    nix::unistd::mkfifo(&go, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let script = dir.path().join("pane.sh");
    std::fs::write(
        &script,
        format!(
            "cat '{}' >/dev/null\nexec -a \"$(cat '{}')\" bash -c \
             'printf \"\\033]2;%%end 1 2 1 %%exit\\007\"; printf DRAWN; sleep 600; true'\n",
            go.display(),
            name_file.display()
        ),
    )
    .unwrap();
    let server = PrivateTmux::tagged("forge-tree");
    let cmd = format!("exec bash '{}'", script.display());
    let pane = server.session("s", Some(&cmd));
    server.tmux(&["rename-window", "-t", &pane, "w\n%end 1 2 1\n%exit"]);
    server.tmux(&["rename-session", "-t", "=s", "s\n%end 3 4 1"]);
    let mut watcher = Watcher::attach(&server, &pane).await;
    tokio::task::spawn_blocking(move || std::fs::write(go, "go"))
        .await
        .unwrap()
        .unwrap();
    watcher.drawn("DRAWN").await;
    drop(watcher);
    assert!(
        server
            .display(&pane, "#{pane_current_command}")
            .starts_with("x\u{fffd}\n%exit\n\u{1e}$77"),
        "tmux reports the raw process name"
    );

    let bridge: TmuxBridge = server.bridge().await;
    let tree = bridge.list_sessions().await.unwrap();
    assert_eq!(tree.len(), 1, "{tree:?}");
    let s = &tree[0];
    assert_eq!(s.name, server.display(&pane, "#{session_name}"));
    assert_eq!(s.windows.len(), 1);
    assert_eq!(s.windows[0].name, server.display(&pane, "#{window_name}"));
    let p = &s.windows[0].panes[..];
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].id, pane);
    assert_eq!(p[0].title, "%end 1 2 1 %exit");
    let cleaned: Vec<u8> = fake
        .iter()
        .map(|&b| if b < 0x20 || b == 0x7f { b'_' } else { b })
        .collect();
    assert_eq!(p[0].current_command, String::from_utf8_lossy(&cleaned));
}
