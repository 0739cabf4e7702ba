//! Pipes and FIFO directories left behind by an agent killed with SIGKILL:
//! a pipe marked by a dead owner is replaced at attach, every other pipe is
//! still refused, and dead owners' FIFO directories go at bridge start.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::{PrivateTmux, TmuxExt, WAIT, read_until};
use tmux_bridge::BridgeError;

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// `pane_pipe` and the bridge's marker option of a pane, as `1<marker>`.
fn pipe_state(server: &PrivateTmux, pane: &str) -> String {
    server.display(pane, "#{pane_pipe}<#{@muxlink-pipe}>")
}

/// Pipes the pane into a FIFO the test reads, the way a killed agent's pipe
/// looks (a `cat` tmux started), and marks it with `marker`. The returned
/// task ends when that `cat` has exited, i.e. the pipe was closed.
fn stale_pipe(
    server: &PrivateTmux,
    pane: &str,
    dir: &Path,
    marker: &str,
) -> tokio::task::JoinHandle<()> {
    let fifo = dir.join("stale");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let cmd = format!("exec cat > '{}'", fifo.display());
    server.tmux(&["pipe-pane", "-t", pane, &cmd]);
    server.tmux(&["set", "-p", "-t", pane, "@muxlink-pipe", marker]);
    tokio::task::spawn_blocking(move || {
        // Opening blocks until the writer has opened too; end-of-file comes
        // once every writer is gone.
        let mut f = std::fs::File::open(&fifo).unwrap();
        let mut sink = Vec::new();
        f.read_to_end(&mut sink).unwrap();
    })
}

#[tokio::test]
async fn pipe_of_a_dead_agent_is_replaced_at_once() {
    let server = PrivateTmux::with_session("stale", "s", Some("stty raw -echo; cat"));
    let pane = server.display("s", "#{pane_id}");
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("muxlink-{}-0-0", dead_pid());
    let gone = stale_pipe(&server, &pane, dir.path(), &dead);
    assert_eq!(pipe_state(&server, &pane), format!("1<{dead}>"));

    let bridge = server.bridge().await;
    let mut out = bridge.open_output(&pane).await.unwrap();
    tokio::time::timeout(WAIT, gone)
        .await
        .expect("the stale pipe's cat was not closed")
        .unwrap();
    let state = pipe_state(&server, &pane);
    let ours = format!("1<muxlink-{}-", std::process::id());
    assert!(state.starts_with(&ours), "{state}");
    // The stream is ours now.
    bridge.send_input(&pane, b"after-replace").await.unwrap();
    read_until(&mut out, b"", b"after-replace").await;
    out.close().await.unwrap();
    assert_eq!(pipe_state(&server, &pane), "0<>");
}

#[tokio::test]
async fn orphan_pipe_of_this_process_is_replaced() {
    // Marked by this very process, but no live stream holds it (a start
    // that timed out after tmux ran it).
    let server = PrivateTmux::with_session("orphan", "s", None);
    let pane = server.display("s", "#{pane_id}");
    let dir = tempfile::tempdir().unwrap();
    let orphan = format!("muxlink-{}-999999999-0", std::process::id());
    let gone = stale_pipe(&server, &pane, dir.path(), &orphan);
    let bridge = server.bridge().await;
    let out = bridge.open_output(&pane).await.unwrap();
    tokio::time::timeout(WAIT, gone).await.unwrap().unwrap();
    // Our own live stream is not an orphan: a second open is refused.
    assert!(matches!(
        bridge.open_output(&pane).await,
        Err(BridgeError::AlreadyPiped(_))
    ));
    drop(out);
    // The drop queued the removal; a later command is answered after it.
    assert!(bridge.pane_exists(&pane).await.unwrap());
    assert_eq!(pipe_state(&server, &pane), "0<>");
}

#[tokio::test]
async fn foreign_and_live_pipes_stay_refused() {
    let server = PrivateTmux::with_session("foreign", "s", None);
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    // pid 1 is alive; "someone" is not our marker form; "" is no marker.
    for marker in ["muxlink-1-0-0", "someone", ""] {
        server.tmux(&["pipe-pane", "-t", &pane, "cat > /dev/null"]);
        if marker.is_empty() {
            server.tmux(&["set", "-p", "-t", &pane, "-u", "@muxlink-pipe"]);
        } else {
            server.tmux(&["set", "-p", "-t", &pane, "@muxlink-pipe", marker]);
        }
        match bridge.open_output(&pane).await {
            Err(BridgeError::AlreadyPiped(p)) => assert_eq!(p, pane),
            other => panic!("{marker:?}: expected AlreadyPiped, got {other:?}"),
        }
        assert_eq!(pipe_state(&server, &pane), format!("1<{marker}>"));
    }
}

#[tokio::test]
async fn replaced_pipe_keeps_theirs_and_clears_our_marker() {
    let server = PrivateTmux::with_session("theirs", "s", None);
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    let mut out = bridge.open_output(&pane).await.unwrap();
    server.tmux(&["pipe-pane", "-t", &pane, "cat > /dev/null"]);
    common::read_to_end(&mut out).await;
    out.close().await.unwrap();
    // Their pipe stays; our marker must not make it look like ours.
    assert_eq!(pipe_state(&server, &pane), "1<>");
    assert!(matches!(
        bridge.open_output(&pane).await,
        Err(BridgeError::AlreadyPiped(_))
    ));
}

#[tokio::test]
async fn dead_agents_fifo_dirs_are_removed_at_bridge_start() {
    let base = std::env::temp_dir();
    let make = |name: String| -> PathBuf {
        let dir = base.join(name);
        std::fs::create_dir(&dir).unwrap();
        nix::unistd::mkfifo(&dir.join("out"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        dir
    };
    let dead = make(format!("muxlink-{}-7-abc", dead_pid()));
    let mine = make(format!("muxlink-{}-999999998-0", std::process::id()));
    let alive = make(format!("muxlink-1-{}-0", std::process::id()));
    // A dead owner's directory holding something we never put there stays.
    let other = make(format!("muxlink-{}-8-abc", dead_pid()));
    std::fs::write(other.join("note"), b"not ours").unwrap();

    // No tmux server is needed for the start.
    let _bridge = PrivateTmux::tagged("sweep").bridge().await;
    assert!(!dead.exists(), "dead owner's directory left");
    assert!(mine.join("out").exists() && alive.join("out").exists());
    assert!(other.join("note").exists());
    for dir in [mine, alive, other] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}
