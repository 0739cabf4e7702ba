//! Forcing and releasing pane sizes really changes tmux's window, restores
//! multi-pane layouts; the snapshot has the spec's exact framing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{DesktopClient, PrivateTmux, TmuxExt, read_until, signal};

#[tokio::test]
async fn force_and_release_single_pane_window() {
    let server = PrivateTmux::with_session("size1", "s", None);
    let pane = server.display("s", "#{pane_id}");
    let mut desktop = DesktopClient::attach(&server, "=s").await;
    desktop.set_size(90, 20).await;
    assert_eq!(
        server.display(&pane, "#{window_width}x#{window_height}"),
        "90x20"
    );

    let bridge = server.bridge().await;
    bridge.force_size(&pane, 100, 30).await.unwrap();
    assert_eq!(
        server.display(&pane, "#{window_width}x#{window_height}"),
        "100x30"
    );
    assert_eq!(
        server.display(&pane, "#{pane_width}x#{pane_height}"),
        "100x30"
    );
    assert_eq!(
        server.tmux(&["show", "-w", "-t", &pane, "-v", "window-size"]),
        "manual"
    );
    // A second force (phone resize) just changes the size.
    bridge.force_size(&pane, 60, 15).await.unwrap();
    assert_eq!(
        server.display(&pane, "#{window_width}x#{window_height}"),
        "60x15"
    );

    bridge.release_size(&pane).await.unwrap();
    desktop.wait_line("%layout-change").await;
    assert_eq!(
        server.display(&pane, "#{window_width}x#{window_height}"),
        "90x20"
    );
    assert_eq!(
        server.tmux(&["show", "-w", "-t", &pane]),
        "",
        "override unset"
    );
}

#[tokio::test]
async fn force_and_release_multi_pane_restores_layout() {
    let server = PrivateTmux::with_session("size2", "s", None);
    let pane = server.display("s", "#{pane_id}");
    let mut desktop = DesktopClient::attach(&server, "=s").await;
    desktop.set_size(100, 30).await;
    server.tmux(&["split-window", "-d", "-h", "-t", &pane]);
    let before = server.display(&pane, "#{window_layout}");

    let bridge = server.bridge().await;
    bridge.force_size(&pane, 30, 12).await.unwrap();
    assert_eq!(
        server.display(&pane, "#{pane_width}x#{pane_height}"),
        "30x30",
        "a pane beside another keeps the full height"
    );
    assert_ne!(server.display(&pane, "#{window_layout}"), before);
    bridge.release_size(&pane).await.unwrap();
    assert_eq!(server.display(&pane, "#{window_layout}"), before);
    assert_eq!(
        server.display(&pane, "#{window_width}x#{window_height}"),
        "100x30"
    );
    assert!(bridge.force_size("%999", 10, 10).await.is_err());
}

#[tokio::test]
async fn snapshot_has_spec_framing() {
    let cmd = "tmux wait-for go; printf '\\033[31mred\\033[0m one\\ntwo\\n\\033[5;10Hxy'; printf DONE; sleep 60";
    let server = PrivateTmux::with_session("snap", "s", Some(cmd));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    let mut out = bridge.open_output(&pane).await.unwrap();
    // The snapshot taken with the pipe: the screen is still empty.
    let empty = bridge.snapshot(&pane).await.unwrap();
    let mut expected_empty = b"\x1b[H\x1b[2J".to_vec();
    expected_empty.extend(b"\r\n".repeat(23));
    expected_empty.extend(b"\x1b[1;1H");
    assert_eq!(empty, expected_empty);
    assert!(out.take_snapshot().is_none(), "given out once");

    signal(&server, "go");
    read_until(&mut out, b"", b"DONE").await;
    // A fresh capture now that tmux has drawn everything.
    let snap = bridge.snapshot(&pane).await.unwrap();
    assert!(
        snap.starts_with(b"\x1b[H\x1b[2J\x1b[31mred"),
        "{:?}",
        String::from_utf8_lossy(&snap)
    );
    let text = String::from_utf8_lossy(&snap);
    assert!(text.contains(" one\r\ntwo\r\n"));
    assert_eq!(text.matches("\r\n").count(), 23, "24 rows joined by CR LF");
    assert!(!text.contains("\n\n") && !text.ends_with("\r\n"));
    let (x, y) = (
        server.display(&pane, "#{cursor_x}"),
        server.display(&pane, "#{cursor_y}"),
    );
    assert_eq!((x.as_str(), y.as_str()), ("15", "4"));
    assert!(snap.ends_with(b"\x1b[5;16H"));
    out.close().await.unwrap();
}

#[tokio::test]
async fn snapshot_of_alternate_screen_with_hidden_cursor() {
    let cmd =
        "printf 'primary\\033[?1049h\\033[?25lALT\\033[2;3H'; tmux wait-for -S drawn; sleep 60";
    let server = PrivateTmux::with_session("alt", "s", Some(cmd));
    let pane = server.display("s", "#{pane_id}");
    server.tmux(&["wait-for", "drawn"]);
    let bridge = server.bridge().await;
    // tmux may read the pane's bytes after the wait-for signal; wait for the
    // mode to show before taking the snapshot.
    let mut out = bridge.open_output(&pane).await.unwrap();
    let mut snap = out.take_snapshot().unwrap();
    if !snap.starts_with(b"\x1b[?1049h") {
        // The remaining bytes arrive on the stream; take a fresh capture after.
        read_until(&mut out, b"", b"\x1b[2;3H").await;
        snap = bridge.snapshot(&pane).await.unwrap();
    }
    // The alternate screen keeps the cursor column, so ALT starts at column 8.
    assert!(
        snap.starts_with(b"\x1b[?1049h\x1b[H\x1b[2J       ALT\r\n"),
        "{:?}",
        String::from_utf8_lossy(&snap)
    );
    assert!(snap.ends_with(b"\x1b[2;3H\x1b[?25l"));
    assert!(!common::contains(&snap, b"primary"));
    out.close().await.unwrap();
}
