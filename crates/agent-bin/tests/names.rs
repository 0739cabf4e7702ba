//! Names from elsewhere through the real `muxlink` binary: a stored phone name
//! with ESC and U+202E is printed escaped by `status` and `unpair`, and a host
//! name with controls or bidi characters is one readable error line.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink");
const PHONE_ID: &str = "0123456789abcdef0123456789abcdef";
/// ESC starts a colour sequence, U+202E reverses the rest of the line.
const HOSTILE: &str = "evil\u{1b}[31mred\u{202e}gpj.exe";
const ESCAPED: &str = "evil\\u{1b}[31mred\\u{202e}gpj.exe";

fn muxlink(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("MUXLINK_HOME", home)
        .env("MUXLINK_SERVER", "http://127.0.0.1:9")
        .env("MUXLINK_HOST_NAME", "names-test")
        .env_remove("MUXLINK_CONFIG_DIR")
        .env_remove("MUXLINK_DATA_DIR")
        .env_remove("MUXLINK_HMAC_SECRET")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_clean(out: &str) {
    assert!(!out.contains('\u{1b}'), "raw ESC printed: {out:?}");
    assert!(!out.contains('\u{202e}'), "raw U+202E printed: {out:?}");
}

/// An initialised home whose pairing record holds the hostile name.
fn paired_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let o = muxlink(dir.path(), &["init"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let record = serde_json::json!([{
        "deviceId": PHONE_ID,
        "name": HOSTILE,
        "pairedAt": "2026-11-30T10:00:00Z",
    }]);
    std::fs::write(
        dir.path().join("paired_devices.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(format!("shared-secret-{PHONE_ID}")),
        [7u8; 32],
    )
    .unwrap();
    dir
}

#[test]
fn status_prints_a_stored_hostile_name_escaped() {
    let home = paired_home();
    let o = muxlink(home.path(), &["status"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_clean(&out);
    assert!(out.contains(ESCAPED), "{out}");
    // JSON keeps the exact name (serde escapes the control character).
    let o = muxlink(home.path(), &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pairedDevice"]["name"], HOSTILE);
}

#[test]
fn unpair_prints_a_stored_hostile_name_escaped() {
    let home = paired_home();
    let o = muxlink(home.path(), &["unpair", "--yes"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_clean(&out);
    assert_clean(&err);
    assert!(out.contains(&format!("unpaired {ESCAPED}")), "{out}");
}

#[test]
fn pair_confirmation_prints_the_old_name_escaped() {
    let home = paired_home();
    // No --yes and no terminal: the confirmation refuses, naming the old phone.
    let o = muxlink(home.path(), &["pair"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert_clean(&err);
    assert!(err.contains(ESCAPED), "{err}");
}

#[test]
fn host_name_with_c1_or_bidi_is_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["desk\u{9b}31m", "desk\u{202e}kcus", "desk\u{2066}"] {
        let o = Command::new(BIN)
            .arg("status")
            .env("MUXLINK_HOME", dir.path())
            .env("MUXLINK_HOST_NAME", bad)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(!o.status.success(), "{bad:?}");
        let err = text(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
        assert!(!err.chars().any(|c| c != '\n' && c.is_control()), "{err:?}");
        assert!(err.contains("host name"), "{err}");
        assert!(err.contains("MUXLINK_HOST_NAME"), "{err}");
        assert!(
            !err.contains('\u{202e}') && !err.contains('\u{2066}'),
            "{err:?}"
        );
    }
}
