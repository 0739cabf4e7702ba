//! A pipe helper that cannot hand the pipe over: the pipe command falls back
//! to `cat`, the stream is still byte-exact, and the bridge stops trying the
//! helper. (The agent's own helper, `muxlink __pane-pipe`, is tested with the
//! real binary in agent-bin's `pane_pipe` test.)

#![allow(clippy::unwrap_used)]

mod common;

use common::{PrivateTmux, TmuxExt, read_until};
use tmux_bridge::TmuxBridge;

async fn echo_round(bridge: &TmuxBridge, pane: &str, word: &str) {
    let mut out = bridge.open_output(pane).await.unwrap();
    assert!(!out.handed_over(), "a failing helper handed a pipe over");
    bridge
        .send_input(pane, format!("{word}\r").as_bytes())
        .await
        .unwrap();
    read_until(&mut out, b"", word.as_bytes()).await;
    out.close().await.unwrap();
}

#[tokio::test]
async fn a_missing_helper_falls_back_to_cat() {
    let server = PrivateTmux::with_session("helper-missing", "s", Some("stty -echo; cat"));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server
        .bridge_with_helper(&["/nonexistent/muxlink", "__pane-pipe"])
        .await;
    echo_round(&bridge, &pane, "first").await;
    // The second pipe goes through cat directly.
    echo_round(&bridge, &pane, "second").await;
    assert_eq!(server.display("s", "#{pane_pipe}"), "0");
}

#[tokio::test]
async fn a_helper_that_fails_falls_back_to_cat() {
    let server = PrivateTmux::with_session("helper-false", "s", Some("stty -echo; cat"));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server.bridge_with_helper(&["false"]).await;
    echo_round(&bridge, &pane, "once").await;
}

#[tokio::test]
async fn an_unsafe_helper_word_is_not_run() {
    let server = PrivateTmux::with_session("helper-unsafe", "s", Some("stty -echo; cat"));
    let pane = server.display("s", "#{pane_id}");
    let bridge = server
        .bridge_with_helper(&["touch", "/tmp/x'; echo pwned #"])
        .await;
    echo_round(&bridge, &pane, "safe").await;
}
