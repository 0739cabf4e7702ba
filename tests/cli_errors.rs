//! CLI error paths of the real `muxlink` binary: each bad input gives one clear
//! line, a non-zero exit, and leaves existing files untouched.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use muxlink_e2e::Home;

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const T: Duration = Duration::from_secs(30);

fn home() -> Home {
    Home::new(BIN, "mxl-e2e-unused").unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn not_initialised_commands_say_run_init() {
    let h = home();
    for args in [&["pair", "--yes"][..], &["unpair", "--yes"], &["start"]] {
        let mut h2 = Home::new(BIN, "mxl-e2e-unused").unwrap();
        h2.server = Some("http://127.0.0.1:9".into());
        let o = h2.output(args, T).unwrap();
        assert!(!o.status.success(), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains("muxlink init"), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: one line: {e}");
    }
    // status works and says what to do.
    let o = h.output(&["status"], T).unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("not initialised"));
}

#[test]
fn init_is_idempotent_and_keeps_the_identity() {
    let h = home();
    let o = h
        .output(&["init", "--server", "http://127.0.0.1:9"], T)
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let key = std::fs::read(h.path().join("ed25519-private-key")).unwrap();
    assert_eq!(key.len(), 64);
    let o = h.output(&["init"], T).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("kept"));
    assert_eq!(
        std::fs::read(h.path().join("ed25519-private-key")).unwrap(),
        key
    );
    let o = h.output(&["status", "--json"], T).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["initialised"], true);
    assert_eq!(v["serverUrl"], "http://127.0.0.1:9");
    assert_eq!(v["agentRunning"], false);
}

#[test]
fn corrupt_key_file_is_reported_and_not_overwritten() {
    let h = home();
    std::fs::write(h.path().join("ed25519-private-key"), b"not a key").unwrap();
    for args in [
        &["init", "--server", "http://127.0.0.1:9"][..],
        &["status"],
        &["pair", "--yes"],
    ] {
        let o = h.output(args, T).unwrap();
        assert!(!o.status.success(), "{args:?}");
        let e = stderr(&o);
        assert!(e.contains("corrupt"), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    }
    assert_eq!(
        std::fs::read(h.path().join("ed25519-private-key")).unwrap(),
        b"not a key"
    );
    assert!(!h.path().join("config.toml").exists());
}

#[test]
fn bad_server_url_is_refused() {
    let h = home();
    for url in ["ftp://example.net", "not a url", "http://"] {
        let o = h.output(&["init", "--server", url], T).unwrap();
        assert!(!o.status.success(), "{url}");
        let e = stderr(&o);
        assert!(e.contains("invalid server URL"), "{url}: {e}");
    }
    // Nothing was created by the failed attempts.
    assert!(!h.path().join("ed25519-private-key").exists());
    assert!(!h.path().join("config.toml").exists());
}

#[test]
fn unreadable_config_is_reported_and_kept() {
    let h = home();
    std::fs::write(h.path().join("config.toml"), "server_url = [\n").unwrap();
    let o = h
        .output(&["init", "--server", "http://127.0.0.1:9"], T)
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("config.toml"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(h.path().join("config.toml")).unwrap(),
        "server_url = [\n"
    );
}

#[test]
fn unreachable_server_is_one_clear_line() {
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let h = home();
    let o = h
        .output(&["init", "--server", "http://127.0.0.1:9"], T)
        .unwrap();
    assert!(o.status.success());
    let o = h.output(&["pair", "--yes", "--payload-only"], T).unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("cannot reach the signaling server"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

/// A typo of a muxlink command gets clap's error with its suggestion, exit 2,
/// and never reaches tmux or starts an agent; a tmux alias still passes.
#[test]
fn typos_get_a_suggestion_and_start_nothing() {
    let mut h = home();
    h.server = Some("http://127.0.0.1:9".into());
    let o = h.output(&["staus"], T).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("'staus'"), "{e}");
    assert!(e.contains("status"), "suggests status: {e}");
    assert!(!e.contains("unknown command"), "tmux was not run: {e}");
    assert!(!h.path().join("agent.pid").exists());
    assert!(!h.path().join("agent-status.json").exists());

    // `help <tmux command>` explains the passthrough instead of failing.
    let o = h.output(&["help", "ls"], T).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("list-sessions"), "{out}");
}

/// `muxlink status | head -1` ends quietly when the reader goes away.
#[test]
fn status_into_a_closed_pipe_does_not_panic() {
    use std::io::Read as _;
    use std::process::Stdio;
    let h = home();
    let mut child = h
        .cmd(&["status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end of stdout before the command writes.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
    let _ = status;
}
