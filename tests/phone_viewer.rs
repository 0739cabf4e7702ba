//! `muxlink-phone attach` is a usable terminal viewer: the real phone binary
//! (pair, ls, attach) runs inside a second private tmux server acting as the
//! viewer's terminal, against the real agent, server and host tmux.
//!
//! Typed keys reach the host pane, its output shows in the viewer, resizing the
//! viewer resizes the host pane (SIGWINCH), and Ctrl-] exits cleanly and
//! releases the forced host size.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use muxlink_e2e::pairing::{Host, PAIR_ARGS, blocking, start_pairing};
use muxlink_e2e::{Tmux, wait_output};
use test_support::wait_until_blocking;

const AGENT: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const PHONE: &str = env!("CARGO_BIN_EXE_muxlink-e2e-phone-cli");
const T: Duration = Duration::from_secs(30);
/// Bound on each screen condition.
const SCREEN: Duration = Duration::from_secs(10);

/// Runs the phone CLI with `dir` as its config directory, bounded by `T`.
fn phone(dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(PHONE)
        .arg("--loopback")
        .args(args)
        .env("MUXLINK_PHONE_DIR", dir)
        .env_remove("MUXLINK_HMAC_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, T).unwrap()
}

/// Polls `probe` until `pred` holds on its result, at most `SCREEN`; returns the last value.
fn until(what: &str, mut probe: impl FnMut() -> String, pred: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    let held = wait_until_blocking(SCREEN, || {
        last = probe();
        pred(&last)
    });
    assert!(held, "{what}: never held; last:\n{last}");
    last
}

fn screen(tmux: &Tmux, target: &str) -> String {
    tmux.run(&["capture-pane", "-p", "-t", target])
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_cli_pairs_lists_and_attach_views_types_resizes_and_quits() {
    let Host {
        tmux: host,
        pane,
        server,
        home,
    } = Host::start(AGENT, "work", 120, 40).await.unwrap();

    // Pair through the real phone CLI.
    let (mut pair, payload) = start_pairing(&home, PAIR_ARGS, T).unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let o = blocking(|| phone(phone_dir.path(), &["pair", &payload]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("paired with "));
    assert!(blocking(|| pair.child.wait()).unwrap().success());

    let mut agent = home.spawn(&["run"]).unwrap();
    blocking(|| agent.wait_line(T, |_, l| l.contains("agent ready"))).unwrap();

    // `ls` shows the host session and its pane.
    let o = blocking(|| phone(phone_dir.path(), &["ls"]));
    let ls = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        ls.lines()
            .any(|l| l.ends_with(" work") || l.contains(" work ")),
        "{ls}"
    );
    assert!(ls.contains(&format!("{pane} 120x40")), "{ls}");

    // The viewer's terminal: a second private tmux server of fixed size.
    let viewer = Tmux::new();
    viewer.new_session("view", 100, 30).unwrap();
    let cmdline = format!(
        "MUXLINK_PHONE_DIR='{}' '{PHONE}' --loopback attach '{pane}'",
        phone_dir.path().display()
    );
    viewer
        .run(&["send-keys", "-t", "view", "-l", &cmdline])
        .unwrap();
    viewer.run(&["send-keys", "-t", "view", "Enter"]).unwrap();

    // Attached: the host pane takes the viewer pane's size.
    let vsize = viewer.pane_size("view").unwrap();
    blocking(|| {
        until(
            "host pane sized to viewer",
            || host.pane_size(&pane).unwrap(),
            |s| s == vsize,
        )
    });

    viewer
        .run(&["send-keys", "-t", "view", "-l", "echo viewer-$((6*7))"])
        .unwrap();
    viewer.run(&["send-keys", "-t", "view", "Enter"]).unwrap();
    blocking(|| {
        until(
            "viewer shows remote output",
            || screen(&viewer, "view"),
            |s| s.contains("viewer-42"),
        )
    });
    blocking(|| {
        until(
            "command ran on the host",
            || screen(&host, &pane),
            |s| s.contains("viewer-42"),
        )
    });

    // Resize the viewer terminal: SIGWINCH → resize request → host pane.
    viewer
        .run(&["resize-window", "-t", "view", "-x", "90", "-y", "25"])
        .unwrap();
    let vsize2 = viewer.pane_size("view").unwrap();
    assert_ne!(vsize2, vsize);
    blocking(|| {
        until(
            "host pane follows viewer resize",
            || host.pane_size(&pane).unwrap(),
            |s| s == vsize2,
        )
    });

    // Ctrl-] quits: the viewer prints its end reason and the shell is back.
    viewer
        .run(&["send-keys", "-t", "view", "-H", "1d"])
        .unwrap();
    blocking(|| {
        until(
            "viewer exits on Ctrl-]",
            || screen(&viewer, "view"),
            |s| s.contains("[detached]"),
        )
    });
    blocking(|| {
        until(
            "shell is foreground again",
            || {
                viewer
                    .run(&[
                        "display-message",
                        "-p",
                        "-t",
                        "view",
                        "#{pane_current_command}",
                    ])
                    .unwrap()
            },
            |c| c == "sh",
        )
    });
    blocking(|| {
        until(
            "host size released",
            || {
                host.run(&["show-options", "-w", "-t", &pane, "window-size"])
                    .unwrap()
            },
            |s| s.is_empty(),
        )
    });

    let st = blocking(|| agent.terminate(T)).unwrap();
    assert!(st.success(), "agent exit {st:?}:\n{}", agent.transcript());
    server.shutdown().await;
}
