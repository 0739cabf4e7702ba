//! The control client follows the server: it restarts when its session is
//! destroyed, comes back on demand after a server restart, and a hung tmux
//! turns into timeouts instead of blocking callers.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{PrivateTmux, TmuxExt, WAIT};
use tmux_bridge::{BridgeConfig, BridgeError, Notification, TmuxBridge};
use tokio::sync::broadcast;

async fn wait_for(rx: &mut broadcast::Receiver<Notification>, f: impl Fn(&Notification) -> bool) {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(n) if f(&n) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("notifications ended: {e}"),
            }
        }
    })
    .await
    .expect("notification did not arrive");
}

#[tokio::test]
async fn survives_server_exit_and_restart() {
    let server = PrivateTmux::with_session("restart", "one", None);
    let bridge = server.bridge().await;
    let first_pid = bridge.control_pid().await.unwrap();
    let mut notes = bridge.notifications();

    server.tmux(&["kill-server"]);
    wait_for(&mut notes, |n| {
        matches!(n, Notification::ControlExited { .. })
    })
    .await;
    assert!(bridge.list_sessions().await.unwrap().is_empty());
    assert_eq!(bridge.control_pid().await, None);

    server.session("two", None);
    let tree = bridge.list_sessions().await.unwrap();
    assert_eq!(tree.len(), 1);
    assert_eq!(tree[0].name, "two");
    let second_pid = bridge.control_pid().await.unwrap();
    assert_ne!(first_pid, second_pid);
    // Notifications flow from the new client.
    server.tmux(&["new-window", "-d", "-t", "=two"]);
    wait_for(&mut notes, |n| {
        matches!(
            n,
            Notification::WindowAdd { .. } | Notification::UnlinkedWindowAdd { .. }
        )
    })
    .await;
}

#[tokio::test]
async fn restarts_when_its_session_is_destroyed() {
    let server = PrivateTmux::with_session("ownsess", "a", None);
    server.session("b", None);
    let bridge = server.bridge().await;
    let mut notes = bridge.notifications();
    let pid = bridge.control_pid().await.unwrap();
    // The session the control client follows (its client pid is in the name).
    let followed = server.tmux(&["list-clients", "-F", "#{client_pid} #{session_id}"]);
    let sid = followed
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{pid} ")))
        .unwrap()
        .to_owned();
    bridge.kill_session(&sid).await.unwrap();
    wait_for(&mut notes, |n| {
        matches!(n, Notification::ControlExited { .. })
    })
    .await;
    wait_for(&mut notes, |n| matches!(n, Notification::ControlRestarted)).await;
    assert_ne!(bridge.control_pid().await.unwrap(), pid);
    let tree = bridge.list_sessions().await.unwrap();
    assert_eq!(tree.len(), 1);
    assert!(!tree[0].attached);
}

#[tokio::test]
async fn hung_tmux_times_out_without_blocking() {
    let server = PrivateTmux::with_session("hung", "s", None);
    let mut cfg = BridgeConfig::new(&server.socket);
    cfg.timeout = Duration::from_millis(300);
    let bridge = TmuxBridge::start_with(cfg).await.unwrap();
    let pane = server.display("s", "#{pane_id}");
    let server_pid: i32 = server.display("s", "#{pid}").parse().unwrap();
    let stop = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server_pid),
        nix::sys::signal::Signal::SIGSTOP,
    );
    stop.unwrap();
    // Several callers at once: each gets its own timeout.
    let (a, b, c) = tokio::join!(
        bridge.list_sessions(),
        bridge.send_input(&pane, b"x"),
        bridge.pane_exists(&pane)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server_pid),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    assert!(matches!(a, Err(BridgeError::Timeout(_))));
    assert!(matches!(b, Err(BridgeError::Timeout(_))));
    assert!(matches!(c, Err(BridgeError::Timeout(_))));
    // Late replies are dropped; the next calls get their own answers.
    assert!(bridge.pane_exists(&pane).await.unwrap());
    assert_eq!(bridge.list_sessions().await.unwrap().len(), 1);
    assert!(!bridge.pane_exists("%999").await.unwrap());
}

#[tokio::test]
async fn pane_closing_in_another_session_is_reported() {
    let server = PrivateTmux::with_session("subscr", "followed", None);
    let bridge = server.bridge().await;
    // Created after the control client attached, so it follows "followed".
    let pane = server.session("other", None);
    let second = server.tmux(&["split-window", "-d", "-P", "-F", "#{pane_id}", "-t", &pane]);
    let mut notes = bridge.notifications();
    server.tmux(&["kill-pane", "-t", &second]);
    wait_for(&mut notes, |n| matches!(n, Notification::TreeChanged)).await;
    let tree = bridge.list_sessions().await.unwrap();
    let other = tree.iter().find(|s| s.name == "other").unwrap();
    assert_eq!(other.windows[0].panes.len(), 1);
}

#[tokio::test]
async fn starts_while_its_session_floods_output() {
    // tmux 3.3a wedged a control client that turned `no-output` on while pane
    // output was queued for it (no reply ever came); the client now attaches
    // with the flag. Several starts, as the old race hit about half of them.
    // The bridges stay alive meanwhile: tmux 3.3a crashes when a client
    // detaches while a control client is still connecting.
    let flood = "i=0; while :; do i=$((i+1)); echo $i; done";
    let server = PrivateTmux::with_session("flood", "s", Some(flood));
    let mut bridges = Vec::new();
    for _ in 0..5 {
        let bridge = server.bridge().await;
        let mut notes = bridge.notifications();
        assert_eq!(bridge.list_sessions().await.unwrap().len(), 1);
        // No pane output reaches the control client.
        while let Ok(n) = notes.try_recv() {
            assert!(
                !matches!(&n, Notification::Other { line } if line.starts_with("%output")),
                "{n:?}"
            );
        }
        bridges.push(bridge);
    }
}
