//! tmux passthrough: `muxlink <tmux command>` runs tmux on the configured
//! private socket (never the user's default server).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use muxlink_e2e::{Home, Tmux};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");

#[test]
fn unknown_commands_run_tmux_on_the_private_socket() {
    let tmux = Tmux::new();
    let h = Home::new(BIN, &tmux.socket).unwrap();
    let o = h
        .output(
            &["new-session", "-d", "-s", "via-muxlink", "sh"],
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The session exists on the private socket.
    assert_eq!(
        tmux.run(&[
            "display-message",
            "-p",
            "-t",
            "via-muxlink",
            "#{session_name}"
        ])
        .unwrap(),
        "via-muxlink"
    );
    // And output of tmux comes through unchanged.
    let o = h
        .output(
            &["list-sessions", "-F", "#{session_name}"],
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "via-muxlink");
    // Not set up: no agent was started.
    assert!(!h.path().join("agent-status.json").exists());
}
