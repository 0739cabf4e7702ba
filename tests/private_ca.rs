//! A LAN server with a certificate from a private CA (what mkcert makes): once
//! that CA is in the system's trust store — here through `SSL_CERT_FILE`, which
//! the system-store loader honours — `muxlink init` / `muxlink pair` (HTTPS and
//! the WSS signaling socket) and `muxlink-phone pair` reach it and pair over
//! TLS. Without the CA the same `pair` fails with one line naming the server.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use muxlink_e2e::{Home, wait_output};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
const PHONE: &str = env!("CARGO_BIN_EXE_muxlink-e2e-phone-cli");
const T: Duration = Duration::from_secs(60);

/// A CA certificate (PEM file) and a server certificate for 127.0.0.1 and
/// localhost signed by it (PEM chain and key files).
struct PrivateCa {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn private_ca(dir: &Path) -> PrivateCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "muxlink test private CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let files = PrivateCa {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.ca, ca.pem()).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

/// Lines of a child's stdout arrive on the returned channel.
fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    loop {
        let line = lines
            .recv_timeout(T)
            .unwrap_or_else(|_| panic!("no line starting with {prefix:?}"));
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

#[test]
fn a_private_ca_in_the_system_store_is_trusted_by_agent_and_phone() {
    let certs = tempfile::tempdir().unwrap();
    let pki = private_ca(certs.path());
    let h = Home::new(BIN, "mxl-e2e-unused").unwrap();
    let mut server = h
        .cmd(&["serve", "--bind", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = wait_for(&stdout_lines(&mut server), "listening on ");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(
        h.output(&["init", "--server", &url], T)
            .unwrap()
            .status
            .success()
    );

    // Without the CA: refused in the TLS handshake, one line naming the server.
    let o = wait_output(
        h.cmd(&["pair", "--yes", "--payload-only"])
            .env("SSL_CERT_FILE", certs.path().join("missing.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        T,
    )
    .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(e.contains("cannot reach the signaling server"), "{e}");
    assert!(e.contains(&url), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");

    // With it: `pair` registers over HTTPS, opens the WSS socket, shows the
    // payload, and the phone (trusting the same store) pairs.
    let mut pair = h
        .cmd(&["pair", "--yes", "--payload-only"])
        .env("SSL_CERT_FILE", &pki.ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut pair);
    let payload = wait_for(&lines, "PAIRING_PAYLOAD ");
    let phone_dir = tempfile::tempdir().unwrap();
    let o = wait_output(
        Command::new(PHONE)
            .arg("--config-dir")
            .arg(phone_dir.path())
            .args(["pair", &payload])
            .env("SSL_CERT_FILE", &pki.ca)
            .env_remove("MUXLINK_HMAC_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        T,
    )
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("paired with "));
    let paired = wait_for(&lines, "PAIRED ");
    assert_eq!(paired.len(), 32, "{paired}");
    assert!(pair.wait().unwrap().success());
    let _ = server.kill();
    let _ = server.wait();
}
