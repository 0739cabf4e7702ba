//! The session tree from one list-panes call with awkward names; sessions
//! created and killed through the bridge; no server means an empty tree.

#![allow(clippy::unwrap_used)]

mod common;

use common::{PrivateTmux, TmuxExt};
use tmux_bridge::BridgeError;

#[tokio::test]
async fn tree_parses_weird_names() {
    let server = PrivateTmux::with_session("tree", "a b|c é 😀", None);
    server.session("dollar $x 'q' \"dq\"", None);
    server.tmux(&["rename-window", "-t", "=a b|c é 😀:0", "tab\there | ünï"]);
    server.tmux(&["split-window", "-d", "-h", "-t", "=a b|c é 😀:0"]);
    server.tmux(&["select-pane", "-t", "=a b|c é 😀:0.1", "-T", "tï tle | x"]);
    server.tmux(&["new-window", "-d", "-t", "=a b|c é 😀", "-n", "second"]);
    // tmux's own view of the names (it may escape some characters).
    let names = server.tmux(&["list-sessions", "-F", "#{session_name}"]);
    let mut expected: Vec<&str> = names.lines().collect();
    expected.sort();

    let bridge = server.bridge().await;
    let tree = bridge.list_sessions().await.unwrap();
    let mut got: Vec<&str> = tree.iter().map(|s| s.name.as_str()).collect();
    got.sort();
    assert_eq!(got, expected);

    let s = tree.iter().find(|s| s.name == "a b|c é 😀").unwrap();
    assert!(s.id.starts_with('$'));
    assert!(!s.attached, "only the bridge's own client is attached");
    assert!(s.created_at > 1_600_000_000);
    assert!(s.last_activity_at >= s.created_at);
    assert_eq!(s.windows.len(), 2);
    let w = &s.windows[0];
    assert_eq!(
        w.name,
        server.display("=a b|c é 😀:0", "#{window_name}"),
        "window name as tmux reports it"
    );
    assert!(w.name.contains("ünï"));
    assert_eq!((w.index, w.active), (0, true));
    assert_eq!(w.panes.len(), 2);
    assert_eq!(w.panes[1].title, "tï tle | x");
    let cols: u16 = w.panes.iter().map(|p| p.size.cols).sum();
    assert_eq!(cols + 1, 80, "two panes and the border fill 80 columns");
    assert!(w.panes.iter().all(|p| p.size.rows == 24));
    assert_eq!(
        w.panes[0].current_command,
        server.display(&w.panes[0].id, "#{pane_current_command}")
    );
    assert_eq!(s.windows[1].name, "second");
    assert!(!s.windows[1].active);

    // A real client attached to the other session counts; ours never does.
    let other = tree.iter().find(|t| t.id != s.id).unwrap();
    assert!(!other.attached);
    let _desktop = common::DesktopClient::attach(&server, &other.id).await;
    let tree = bridge.list_sessions().await.unwrap();
    assert!(tree.iter().find(|t| t.id == other.id).unwrap().attached);
    assert!(!tree.iter().find(|t| t.id == s.id).unwrap().attached);
}

#[tokio::test]
async fn no_server_gives_empty_tree() {
    let server = PrivateTmux::tagged("none");
    let bridge = server.bridge().await;
    assert!(bridge.list_sessions().await.unwrap().is_empty());
    assert!(!bridge.pane_exists("%0").await.unwrap());
    assert!(!bridge.connect().await.unwrap());
    assert!(matches!(
        bridge.send_input("%0", b"x").await,
        Err(BridgeError::PaneNotFound(_))
    ));
}

#[tokio::test]
async fn create_and_kill_sessions() {
    let server = PrivateTmux::tagged("create");
    let bridge = server.bridge().await;
    // No server yet: the bridge starts one.
    let first = bridge.create_session().await.unwrap();
    assert!(first.id.starts_with('$'));
    assert_eq!(first.windows.len(), 1);
    assert!(!first.attached);
    // Now over the control client.
    let second = bridge.create_session().await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(bridge.list_sessions().await.unwrap().len(), 2);

    // Exact names: killing "work" leaves "workshop".
    server.session("workshop", None);
    server.session("work", None);
    bridge.kill_session("work").await.unwrap();
    let names: Vec<String> = bridge
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(names.contains(&"workshop".to_owned()));
    assert!(!names.contains(&"work".to_owned()));
    assert!(bridge.kill_session("work").await.is_err());

    bridge.kill_session(&first.id).await.unwrap();
    bridge.kill_session(&second.id).await.unwrap();
    let left: Vec<String> = bridge
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(left, vec!["workshop".to_owned()]);
    bridge.kill_session("workshop").await.unwrap();
    // The last session is gone, so is the server.
    assert!(bridge.list_sessions().await.unwrap().is_empty());
}
