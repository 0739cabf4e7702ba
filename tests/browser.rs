//! The web client in real headless Chromium: runs `web/e2e/browser.mjs`
//! (playwright-core driving Debian's chromium) against the real signaling
//! server binary, the real `muxlink` agent and tmux on a private socket, all
//! on loopback. The script pairs from the QR URL, lists sessions, attaches,
//! types and reads back from the xterm buffer, rotates, reloads, survives a
//! server restart and checks the wrong-key message; screenshots go to
//! `target/web-e2e/`. Stream v2 (docs/stream-v2.md) with Chromium's SCTP as
//! the phone side: the page opens the unordered fast channel, typed keys
//! echo exactly once while input and output copies cross it, and a dropped
//! peer comes back resuming the pane's stream.
//!
//! It needs Node.js, `web/node_modules` and `web/dist` (`cargo xtask web`),
//! and Chromium. Without them the test says what is missing and passes,
//! unless `MUXLINK_REQUIRE_BROWSER` is set (CI sets it), then it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `muxlink-signaling-server` from the same target directory as this test
/// (`target/<profile>/deps/<test>` → `target/<profile>/`).
fn server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MUXLINK_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    Some(profile_dir.join("muxlink-signaling-server"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What is missing to run the browser test, if anything.
fn missing(server: Option<&Path>) -> Vec<String> {
    let web = root().join("web");
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node (Node.js 20+)".to_owned());
    }
    if !web.join("node_modules/playwright-core").is_dir() {
        missing.push("web/node_modules (run `cargo xtask web`)".to_owned());
    }
    if !web.join("dist/index.html").is_file() {
        missing.push("web/dist (run `cargo xtask web`, then rebuild)".to_owned());
    }
    if !chromium().is_file() {
        missing.push(format!("{} (apt install chromium)", chromium().display()));
    }
    match server {
        Some(s) if s.is_file() => {}
        _ => missing.push(
            "muxlink-signaling-server (cargo build -p signaling-server --bin muxlink-signaling-server)"
                .to_owned(),
        ),
    }
    missing
}

#[test]
fn web_client_pairs_attaches_types_and_reconnects_in_chromium() {
    let server = server_bin();
    let missing = missing(server.as_deref());
    if !missing.is_empty() {
        let text = format!("browser test needs: {}", missing.join(", "));
        assert!(
            std::env::var_os("MUXLINK_REQUIRE_BROWSER").is_none(),
            "{text}"
        );
        eprintln!("skipped: {text}");
        return;
    }
    let web = root().join("web");
    let status = Command::new("node")
        .arg("e2e/browser.mjs")
        .current_dir(&web)
        .env("MUXLINK_BIN", BIN)
        .env("MUXLINK_SERVER_BIN", server.unwrap_or_default())
        .env("CHROMIUM", chromium())
        .status();
    match status {
        Ok(s) => assert!(
            s.success(),
            "web/e2e/browser.mjs failed ({s}); see its output above"
        ),
        Err(e) => panic!("cannot run node e2e/browser.mjs: {e}"),
    }
}
