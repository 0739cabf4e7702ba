//! What a new user reads from the real `muxlink` and `muxlink-phone` binaries,
//! as insta snapshots in `tests/snapshots/`: the help texts (each command's own
//! options first, then only the global options it uses) and the one-line
//! messages for a scheme-less server URL, a host-name bind address, a server
//! that wants a request-signing secret, a server that never answers, a broken
//! config.toml, a broken pairing record, and the phone's version and errors.
//! Temporary paths and ports are replaced by `<HOME>` and `<ADDR>`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use muxlink_e2e::{Home, wait_output};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const PHONE: &str = env!("CARGO_BIN_EXE_muxlink-e2e-phone-cli");
const T: Duration = Duration::from_secs(40);

/// A fresh home, private already (so no "tightened" warning is logged).
fn home() -> Home {
    let h = Home::new(BIN, "mxl-e2e-unused").unwrap();
    std::fs::set_permissions(
        h.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    h
}

/// stdout and stderr of a finished command, with the binary's test name,
/// the home directory and `addr` written as `muxlink`, `<HOME>` and `<ADDR>`.
fn shown(o: &Output, h: &Home, addr: Option<&str>) -> String {
    let mut text = format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    text = text
        .replace("muxlink-e2e-agent", "muxlink")
        .replace("muxlink-e2e-phone-cli", "muxlink-phone")
        .replace(h.path().to_str().unwrap(), "<HOME>");
    if let Some(addr) = addr {
        text = text.replace(addr, "<ADDR>");
    }
    text
}

/// `muxlink serve` on a free loopback port with `secret` as its
/// request-signing secret; the child and its `host:port`.
fn serve(h: &Home, secret: &str) -> (Child, String) {
    let mut child = h
        .cmd(&["serve", "--bind", "127.0.0.1:0"])
        .env("MUXLINK_HMAC_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let url = line.strip_prefix("listening on ").unwrap().to_owned();
    (child, url.trim_start_matches("http://").to_owned())
}

#[test]
fn help_texts() {
    let h = home();
    for (name, args) in [
        ("help_top_short", &["-h"][..]),
        ("help_serve", &["serve", "--help"]),
        ("help_init", &["init", "-h"]),
        ("help_pair", &["pair", "-h"]),
        ("help_run", &["run", "-h"]),
    ] {
        // No environment values in the "[env: …]" notes.
        let child = h
            .cmd(args)
            .env_remove("MUXLINK_TMUX_SOCKET")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = wait_output(child, T).unwrap();
        insta::assert_snapshot!(name, shown(&o, &h, None));
    }
}

#[test]
fn a_global_option_a_command_does_not_use_is_refused() {
    let h = home();
    let o = h.output(&["serve", "--tmux-socket", "x"], T).unwrap();
    insta::assert_snapshot!(shown(&o, &h, None));
}

#[test]
fn init_takes_a_url_without_a_scheme_and_warns_about_phones() {
    let h = home();
    let o = h
        .output(&["init", "--server", "localhost:8080"], T)
        .unwrap();
    let text = shown(&o, &h, None);
    let device = text
        .lines()
        .find_map(|l| l.strip_prefix("device id: "))
        .unwrap()
        .to_owned();
    insta::assert_snapshot!("init_localhost", text.replace(&device, "<ID>"));
    let o = h.output(&["status", "--json"], T).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["serverUrl"], "http://localhost:8080");

    let o = h
        .output(&["init", "--server", "http://192.168.1.20:8080"], T)
        .unwrap();
    assert!(o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    insta::assert_snapshot!("init_lan_http_warning", e);
    let o = h
        .output(&["init", "--server", "signal.example.net"], T)
        .unwrap();
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("server: https://signal.example.net (stored with https://")
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn serve_binds_a_host_name() {
    let h = home();
    let mut child = h
        .cmd(&["serve", "--bind", "localhost:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
}

#[test]
fn a_server_with_a_signing_secret_says_what_to_set() {
    let h = home();
    let (mut server, addr) = serve(&h, "deployment-secret-0123456789");
    let url = format!("http://{addr}");
    assert!(
        h.output(&["init", "--server", &url], T)
            .unwrap()
            .status
            .success()
    );

    let o = h.output(&["pair", "--yes", "--payload-only"], T).unwrap();
    insta::assert_snapshot!("pair_without_secret", shown(&o, &h, Some(&addr)));

    let o = wait_output(
        h.cmd(&["pair", "--yes", "--payload-only"])
            .env("MUXLINK_HMAC_SECRET", "another-secret")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        T,
    )
    .unwrap();
    insta::assert_snapshot!("pair_with_a_wrong_secret", shown(&o, &h, Some(&addr)));
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn a_server_that_never_answers_is_named_with_the_step() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accept and hold every connection without a byte of answer.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let h = home();
    let url = format!("http://{addr}");
    assert!(
        h.output(&["init", "--server", &url], T)
            .unwrap()
            .status
            .success()
    );
    let started = std::time::Instant::now();
    let o = h.output(&["pair", "--yes", "--payload-only"], T).unwrap();
    assert!(started.elapsed() < Duration::from_secs(25));
    insta::assert_snapshot!(shown(&o, &h, Some(&addr)));
}

/// On a terminal (util-linux `script` gives one), a call still waiting after
/// a second says what it waits for, before the timeout line.
#[test]
fn a_slow_server_shows_progress_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` (a pseudo-terminal) is not installed");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let h = home();
    let url = format!("http://{addr}");
    assert!(
        h.output(&["init", "--server", &url], T)
            .unwrap()
            .status
            .success()
    );
    let o = wait_output(
        std::process::Command::new("script")
            .args(["-qec", &format!("{BIN} pair --yes"), "/dev/null"])
            .envs(h.cmd(&[]).get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        T,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).replace('\r', "");
    assert!(
        text.contains(&format!(
            "contacting http://{addr}/v1/auth/challenge (the challenge request)…"
        )),
        "{text}"
    );
    assert!(
        text.contains("did not answer the challenge request within 10 s"),
        "{text}"
    );
}

#[test]
fn a_broken_config_toml_keeps_line_and_column() {
    let h = home();
    std::fs::write(
        h.path().join("config.toml"),
        "# muxlink\nserver_url = \"http://127.0.0.1:9\"\nmax_peers = \"two\"\n",
    )
    .unwrap();
    let o = h.output(&["status"], T).unwrap();
    insta::assert_snapshot!(shown(&o, &h, None));
}

#[test]
fn a_broken_pairing_record_says_pair_again() {
    let h = home();
    assert!(
        h.output(&["init", "--server", "http://127.0.0.1:9"], T)
            .unwrap()
            .status
            .success()
    );
    let record = h.path().join("paired_devices.json");
    std::fs::write(&record, "{not json").unwrap();
    std::fs::set_permissions(&record, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let o = h.output(&["unpair", "--yes"], T).unwrap();
    insta::assert_snapshot!(shown(&o, &h, None));
    // `pair` replaces the broken record instead of refusing (the server here
    // is unreachable, so it stops there).
    let o = h.output(&["pair", "--yes", "--payload-only"], T).unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("cannot reach the signaling server"), "{e}");
}

#[test]
fn the_phone_has_a_version_and_one_line_errors() {
    let h = home();
    let phone = |args: &[&str]| {
        wait_output(
            std::process::Command::new(PHONE)
                .args(["--config-dir", h.path().to_str().unwrap()])
                .args(args)
                .env_remove("MUXLINK_PHONE_DIR")
                .env_remove("RUST_BACKTRACE")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            T,
        )
        .unwrap()
    };
    let o = phone(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("muxlink-phone {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = phone(&["ls"]);
    insta::assert_snapshot!("phone_not_paired", shown(&o, &h, None));
    let o = phone(&["pair", "ABCDEF|AAAA|BBBB|http://127.0.0.1:9|CCCC"]);
    insta::assert_snapshot!("phone_bad_payload", shown(&o, &h, None));
}
