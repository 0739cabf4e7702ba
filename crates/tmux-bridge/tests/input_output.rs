//! Input reaches the pane byte-exact over the control client (no process per
//! call); output streams byte-exact through pipe-pane; pipes are never stolen.

#![allow(clippy::unwrap_used)]

mod common;

use common::{PrivateTmux, TmuxExt, WAIT, read_to_end, read_until, signal};
use tmux_bridge::{BridgeError, Notification};

#[tokio::test]
async fn all_byte_values_reach_the_pane_in_order() {
    // 256 single bytes, then 12 × 0..=255 in one call (two send-keys commands).
    let mut bulk = Vec::new();
    for _ in 0..12 {
        bulk.extend(0u8..=255);
    }
    let total = 256 + bulk.len();
    let cmd = format!(
        "stty raw -echo -iexten; printf READY; head -c {total} | od -An -tx1 -v; printf END; sleep 60"
    );
    let server = PrivateTmux::with_session("bytes", "s", Some(&cmd));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    let mut out = bridge.open_output(&pane).await.unwrap();
    // READY is either already on the screen or still to come on the stream.
    let snap = out.take_snapshot().unwrap();
    if !common::contains(&snap, b"READY") {
        read_until(&mut out, b"", b"READY").await;
    }
    for b in 0u8..=255 {
        bridge.send_input(&pane, &[b]).await.unwrap();
    }
    bridge.send_input(&pane, &bulk).await.unwrap();
    let got = read_until(&mut out, b"", b"END").await;
    let text = String::from_utf8_lossy(&got);
    let text = text.split("END").next().unwrap();
    let bytes: Vec<u8> = text
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let mut expected: Vec<u8> = (0u8..=255).collect();
    expected.extend(&bulk);
    assert_eq!(bytes.len(), expected.len());
    assert_eq!(bytes, expected);
    out.close().await.unwrap();
}

#[tokio::test]
async fn input_spawns_no_process() {
    let server = PrivateTmux::with_session("noproc", "s", Some("stty raw -echo; cat > /dev/null"));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    let pid = bridge.control_pid().await.unwrap();
    let spawned = bridge.processes_spawned();
    let ours_before = processes_naming(&server.socket);
    for i in 0..300u32 {
        bridge
            .send_input(&pane, format!("key {i}\r").as_bytes())
            .await
            .unwrap();
    }
    bridge.send_input(&pane, &[b'x'; 16384]).await.unwrap();
    assert_eq!(bridge.processes_spawned(), spawned);
    assert_eq!(bridge.control_pid().await, Some(pid));
    // Among this process's children only the one control client names the socket.
    let ours_after = processes_naming(&server.socket);
    assert_eq!(ours_before, vec![pid]);
    assert_eq!(ours_after, vec![pid]);
}

/// Child processes of this test process whose command line names `socket`.
fn processes_naming(socket: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Field 4 (after the parenthesised name) is the parent pid.
        let ppid: u32 = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == me && common::contains(&cmdline, socket.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn large_output_is_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    // 5 MB covering every byte value, deterministic.
    let mut x: u32 = 0x1234_5678;
    let data: Vec<u8> = (0..5_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&path, &data).unwrap();
    let cmd = format!(
        "stty raw -echo; tmux wait-for go; cat '{}'; sleep 60",
        path.display()
    );
    let server = PrivateTmux::with_session("large", "s", Some(&cmd));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    let mut out = bridge.open_output(&pane).await.unwrap();
    signal(&server, "go");
    let mut got = Vec::with_capacity(data.len());
    tokio::time::timeout(WAIT * 3, async {
        while got.len() < data.len() {
            let chunk = out.read().await.unwrap().unwrap();
            assert!(!chunk.is_empty() && chunk.len() <= tmux_bridge::MAX_CHUNK);
            got.extend(chunk);
        }
    })
    .await
    .unwrap();
    assert!(got == data, "stream differs from the file");
    out.close().await.unwrap();
    assert_eq!(server.display(&pane, "#{pane_pipe}"), "0");
}

#[tokio::test]
async fn pane_exit_ends_stream_and_notifies() {
    let server = PrivateTmux::with_session("exit", "keep", None);
    server.session("victim", Some("read x; printf bye"));
    let pane = server.display("victim", "#{pane_id}");
    let bridge = server.bridge().await;
    let mut notes = bridge.notifications();
    let mut out = bridge.open_output(&pane).await.unwrap();
    bridge.send_input(&pane, b"\r").await.unwrap();
    let rest = read_to_end(&mut out).await;
    assert!(common::contains(&rest, b"bye"));
    assert!(out.read().await.unwrap().is_none(), "stays ended");
    tokio::time::timeout(WAIT, async {
        loop {
            let n = notes.recv().await.unwrap();
            if matches!(
                n,
                Notification::SessionsChanged
                    | Notification::WindowClose { .. }
                    | Notification::UnlinkedWindowClose { .. }
                    | Notification::ControlExited { .. }
            ) {
                break;
            }
        }
    })
    .await
    .expect("no notification for the closed pane");
    assert!(!bridge.pane_exists(&pane).await.unwrap());
    out.close().await.unwrap();
    let tree = bridge.list_sessions().await.unwrap();
    assert!(tree.iter().all(|s| s.name != "victim"));
}

#[tokio::test]
async fn existing_pipe_is_reported_and_kept() {
    let server = PrivateTmux::with_session("piped", "s", None);
    let pane = server.display("s", "#{pane_id}");
    server.tmux(&["pipe-pane", "-t", &pane, "cat > /dev/null"]);
    let bridge = server.bridge().await;
    match bridge.open_output(&pane).await {
        Err(BridgeError::AlreadyPiped(p)) => assert_eq!(p, pane),
        other => panic!("expected AlreadyPiped, got {other:?}"),
    }
    assert_eq!(server.display(&pane, "#{pane_pipe}"), "1");
    // Remove theirs; ours opens, a second one is refused, close removes ours.
    server.tmux(&["pipe-pane", "-t", &pane]);
    let out = bridge.open_output(&pane).await.unwrap();
    assert_eq!(server.display(&pane, "#{pane_pipe}"), "1");
    assert!(matches!(
        bridge.open_output(&pane).await,
        Err(BridgeError::AlreadyPiped(_))
    ));
    assert_eq!(server.display(&pane, "#{pane_pipe}"), "1");
    out.close().await.unwrap();
    assert_eq!(server.display(&pane, "#{pane_pipe}"), "0");
    // Dropping (instead of close) also removes ours.
    let out = bridge.open_output(&pane).await.unwrap();
    drop(out);
    // The drop queued its command; a later command is answered after it.
    assert!(bridge.pane_exists(&pane).await.unwrap());
    assert_eq!(server.display(&pane, "#{pane_pipe}"), "0");
    assert!(matches!(
        bridge.open_output("%999").await,
        Err(BridgeError::PaneNotFound(_))
    ));
}

#[tokio::test]
async fn replaced_pipe_ends_stream_and_close_leaves_it() {
    let server = PrivateTmux::with_session("replaced", "s", None);
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    let mut out = bridge.open_output(&pane).await.unwrap();
    // Someone else installs a pipe: tmux closes ours, so our stream ends.
    server.tmux(&["pipe-pane", "-t", &pane, "cat > /dev/null"]);
    read_to_end(&mut out).await;
    out.close().await.unwrap();
    assert_eq!(
        server.display(&pane, "#{pane_pipe}"),
        "1",
        "their pipe kept"
    );
}

#[tokio::test]
async fn snapshot_and_stream_neither_lose_nor_repeat() {
    // A pane printing consecutive numbers as fast as it can while we attach.
    let cmd = "i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); echo $i; done; sleep 60";
    let server = PrivateTmux::with_session("order", "s", Some(cmd));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge().await;
    // Make sure numbers are flowing before the attach under test.
    let mut warm = bridge.open_output(&pane).await.unwrap();
    read_until(&mut warm, b"", b"\r\n").await;
    warm.close().await.unwrap();

    let mut out = bridge.open_output(&pane).await.unwrap();
    let snap = bridge.snapshot(&pane).await.unwrap();
    let mut stream = Vec::new();
    while stream.len() < 20_000 {
        stream.extend(out.read().await.unwrap().unwrap());
    }
    out.close().await.unwrap();

    // Screen text: strip the snapshot framing and the final cursor move.
    let body = snap.strip_prefix(b"\x1b[H\x1b[2J").unwrap();
    let end = body.iter().rposition(|&b| b == 0x1b).unwrap();
    let (screen, cursor) = body.split_at(end);
    let cursor = String::from_utf8_lossy(cursor);
    let (y, x) = cursor
        .trim_start_matches("\x1b[")
        .trim_end_matches('H')
        .split_once(';')
        .map(|(y, x)| {
            (
                y.parse::<usize>().unwrap() - 1,
                x.parse::<usize>().unwrap() - 1,
            )
        })
        .unwrap();
    let screen = String::from_utf8_lossy(screen).into_owned();
    let rows: Vec<&str> = screen.split("\r\n").collect();
    let partial = &rows[y][..x.min(rows[y].len())];
    let prev: u64 = if y == 0 {
        0
    } else {
        rows[y - 1].trim().parse().unwrap()
    };
    // The cursor row's text so far plus the stream continue the count.
    let joined = format!("{partial}{}", String::from_utf8_lossy(&stream));
    let mut expect = prev + 1;
    let parts: Vec<&str> = joined.split("\r\n").collect();
    for part in &parts[..parts.len() - 1] {
        assert_eq!(
            part.parse::<u64>().unwrap(),
            expect,
            "gap or repeat at {expect}"
        );
        expect += 1;
    }
    assert!(expect > prev + 100, "stream too short to judge");
}
