//! `muxlink __pane-pipe`, the agent's pane pipe helper, with a real tmux: the
//! bridge reads tmux's own pipe socket (no `cat` in between), byte-exact, and
//! closing the stream removes the pipe.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use test_support::PrivateTmux;
use tmux_bridge::{BridgeConfig, TmuxBridge};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink");
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_agent_binary_hands_the_pipe_over() {
    let tmux = PrivateTmux::tagged("pane-pipe");
    let cmd = "stty raw -echo; printf READY; head -c 65536 | od -An -tx1 -v; printf END; sleep 60";
    let pane = tmux.new_session_running("s", 80, 24, Some(cmd)).unwrap();
    let mut cfg = BridgeConfig::new(&tmux.socket);
    cfg.timeout = Duration::from_secs(30);
    cfg.pipe_helper = Some(agent_bin::pane_pipe_helper(BIN));
    let bridge = TmuxBridge::start_with(cfg).await.unwrap();
    let mut out = bridge.open_output(&pane).await.unwrap();
    assert!(out.handed_over(), "the pipe went through cat");
    let snap = out.take_snapshot().unwrap();
    let mut seen = snap.clone();
    let input: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let mut all = Vec::new();
    let read = async {
        while !String::from_utf8_lossy(&seen).contains("READY") {
            seen.extend(out.read().await.unwrap().unwrap());
        }
        bridge.send_input(&pane, &input).await.unwrap();
        while !String::from_utf8_lossy(&all).contains("END") {
            all.extend(out.read().await.unwrap().unwrap());
        }
    };
    tokio::time::timeout(WAIT, read).await.unwrap();
    let text = String::from_utf8_lossy(&all);
    let bytes: Vec<u8> = text
        .split("END")
        .next()
        .unwrap()
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(bytes, input);
    assert_eq!(tmux.display(&pane, "#{pane_pipe}"), "1");
    out.close().await.unwrap();
    assert_eq!(tmux.display(&pane, "#{pane_pipe}"), "0");
}
