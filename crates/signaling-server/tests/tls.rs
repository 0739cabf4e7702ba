//! Native TLS: with a certificate and key the server speaks https and wss
//! (checked with clients that trust a self-signed test certificate), a plain
//! HTTP client, garbage or a silent client does not stop it serving the next
//! TLS client (the handshake timeout itself is a unit test in src/tls.rs), and bad certificate/key files fail the start with one line
//! naming the file — in the library and in the binary. Over TLS every
//! response carries HSTS.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use signaling_server::{ConfigFile, Server, ServerConfig, StartError, TlsError, TlsFiles};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM.
struct TestCert {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

impl TestCert {
    fn new() -> TestCert {
        let dir = tempfile::tempdir().unwrap();
        let generated =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
                .unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
        TestCert {
            der: generated.cert.der().to_vec(),
            dir,
            cert,
            key,
        }
    }

    fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    fn config(&self) -> ServerConfig {
        ServerConfig {
            tls: Some(self.files()),
            ..test_config()
        }
    }

    /// Writes `text` into the certificate's directory.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// `GET /health` over a raw tokio-rustls stream trusting `ca`; the reply text.
async fn tls_health(addr: SocketAddr, ca: &[u8]) -> String {
    let connector = TlsConnector::from(Arc::new(tls_client_config(ca)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::from(addr.ip());
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tls.read_to_end(&mut reply).await.unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

fn addr_of(url: &str) -> SocketAddr {
    url.strip_prefix("https://").unwrap().parse().unwrap()
}

fn start_error(e: StartError) -> String {
    match e {
        StartError::Tls(tls) => {
            let text = tls.to_string();
            assert_eq!(text.lines().count(), 1, "{text}");
            text
        }
        other => panic!("not a TLS error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_work_with_a_trusted_certificate() {
    let cert = TestCert::new();
    let ts = TestServer::start(cert.config()).await;
    assert!(ts.url.starts_with("https://127.0.0.1:"), "{}", ts.url);
    assert!(ts.server.is_tls());
    let http = Http {
        ca: Some(cert.der.clone()),
        ..ts.http()
    };
    let r = http
        .send("GET", "/health", None, None, Sign::Unsigned)
        .await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));

    // The whole host flow over TLS: pair, token, wss upgrade, auth.
    let (host, phone) = (DeviceKeys::random(), DeviceKeys::random());
    http.pair(&host, &phone).await;
    let token = http.token(&host).await;
    let mut ws = Ws::connect(&http, Sign::Now).await.unwrap();
    assert_eq!(
        ws.auth(&token, "host").await,
        Got::Msg(signaling_proto::SignalingMessage {
            status: "ok".into(),
            ..signaling_proto::SignalingMessage::new("auth")
        })
    );
    assert_eq!(ts.server.socket_count(), 1);
    ts.server.shutdown().await;
    assert_eq!(ws.closed().await, Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_and_garbage_do_not_stop_the_tls_server() {
    let cert = TestCert::new();
    let ts = TestServer::start(cert.config()).await;
    let addr = addr_of(&ts.url);
    // Accepted first, its handshake pending (until the timeout, see the unit
    // test in src/tls.rs): every client below is still served.
    let _silent = TcpStream::connect(addr).await.unwrap();
    let payloads: [&[u8]; 3] = [
        b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"\x00\xff garbage \x16\x03\x01\x00\x00\r\n\r\n",
        // A ClientHello record header announcing a body that never comes,
        // followed by a closed write side.
        b"\x16\x03\x01\x40\x00",
    ];
    for payload in payloads {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(payload).await.unwrap();
        tcp.shutdown().await.unwrap();
        // The server ends the connection without an HTTP answer.
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut reply))
            .await
            .expect("the server did not close a non-TLS connection");
        assert!(!reply.starts_with(b"HTTP/"), "{reply:?}");
        let ok = tls_health(addr, &cert.der).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }
    ts.server.shutdown().await;
}

#[tokio::test]
async fn bad_certificate_or_key_files_fail_the_start_naming_the_file() {
    let cert = TestCert::new();
    let other = TestCert::new();
    let with = |cert: &Path, key: &Path| ServerConfig {
        tls: Some(TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }),
        ..test_config()
    };
    let missing = cert.dir.path().join("missing.pem");

    let e = start_error(
        Server::start(with(&missing, &cert.key))
            .await
            .err()
            .unwrap(),
    );
    assert!(e.contains("cannot read TLS certificate file"), "{e}");
    assert!(e.contains(missing.to_str().unwrap()), "{e}");

    let e = start_error(
        Server::start(with(&cert.cert, &missing))
            .await
            .err()
            .unwrap(),
    );
    assert!(e.contains("cannot read TLS key file"), "{e}");
    assert!(e.contains(missing.to_str().unwrap()), "{e}");

    // A key file holding only a certificate, and a certificate file holding only a key.
    let e = start_error(
        Server::start(with(&cert.cert, &cert.cert))
            .await
            .err()
            .unwrap(),
    );
    assert!(e.starts_with("no private key in"), "{e}");
    assert!(e.contains(cert.cert.to_str().unwrap()), "{e}");
    let e = start_error(
        Server::start(with(&cert.key, &cert.key))
            .await
            .err()
            .unwrap(),
    );
    assert!(e.starts_with("no certificate in"), "{e}");

    let e = start_error(
        Server::start(with(&cert.cert, &other.key))
            .await
            .err()
            .unwrap(),
    );
    assert!(e.contains("does not match the certificate"), "{e}");
    assert!(e.contains(other.key.to_str().unwrap()), "{e}");
    assert!(e.contains(cert.cert.to_str().unwrap()), "{e}");

    let broken = cert.write("broken.pem", "-----BEGIN CERTIFICATE-----\n!!!\n");
    let e = start_error(Server::start(with(&broken, &cert.key)).await.err().unwrap());
    assert!(e.starts_with("no certificate in"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_responses_carry_hsts() {
    let cert = TestCert::new();
    let ts = TestServer::start(cert.config()).await;
    let http = Http {
        ca: Some(cert.der.clone()),
        ..ts.http()
    };
    for path in ["/", "/health", "/v1/health", "/nowhere"] {
        let r = http.send_raw("GET", path, None, vec![]).await;
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}: {r:?}"
        );
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    let r = http.send_raw("GET", "/", None, vec![]).await;
    assert!(
        r.header("content-security-policy")
            .is_some_and(|csp| csp.contains("frame-ancestors 'none'")),
        "{r:?}"
    );
    ts.server.shutdown().await;
}

#[test]
fn certificate_and_key_go_together() {
    let e = TlsFiles::from_pair(Some("c.pem".into()), None).unwrap_err();
    assert!(matches!(e, TlsError::Incomplete { .. }));
    assert!(e.to_string().contains("--tls-key"), "{e}");
    let e = TlsFiles::from_pair(None, Some("k.pem".into())).unwrap_err();
    assert!(e.to_string().contains("--tls-cert"), "{e}");
    assert_eq!(TlsFiles::from_pair(None, None).unwrap(), None);

    // A file key completes what an earlier layer set; alone it is an error.
    let mut config = ServerConfig::default();
    let cert_only = ConfigFile::from_toml("tls_cert = \"c.pem\"").unwrap();
    assert!(cert_only.clone().apply(&mut config).is_err());
    ConfigFile::from_toml("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"")
        .unwrap()
        .apply(&mut config)
        .unwrap();
    ConfigFile::from_toml("tls_cert = \"other.pem\"")
        .unwrap()
        .apply(&mut config)
        .unwrap();
    assert_eq!(
        config.tls,
        Some(TlsFiles {
            cert: "other.pem".into(),
            key: "k.pem".into()
        })
    );
}

/// Runs the binary to its exit (bounded); `(success, stderr)`.
fn run_to_exit(args: &[&str]) -> (bool, String) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_muxlink-signaling-server"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("MUXLINK_SERVER_TLS_CERT")
        .env_remove("MUXLINK_SERVER_TLS_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("the server did not exit on a bad TLS setting");
    };
    let out = out.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_https_from_flags_env_and_file() {
    let cert = TestCert::new();
    // Certificate from the file, key from the environment.
    let file = cert.write(
        "server.toml",
        &format!("tls_cert = {:?}\n", cert.cert.to_str().unwrap()),
    );
    let proc = ServerProcess::spawn(
        &["--config", file.to_str().unwrap(), "--bind", "127.0.0.1:0"],
        &[("MUXLINK_SERVER_TLS_KEY", cert.key.to_str().unwrap())],
    );
    assert!(proc.url.starts_with("https://127.0.0.1:"), "{}", proc.url);
    let ok = tls_health(addr_of(&proc.url), &cert.der).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let status = tokio::task::spawn_blocking(move || proc.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");

    // Flags alone.
    let proc = ServerProcess::spawn(
        &[
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            cert.cert.to_str().unwrap(),
            "--tls-key",
            cert.key.to_str().unwrap(),
        ],
        &[],
    );
    let ok = tls_health(addr_of(&proc.url), &cert.der).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    drop(proc);
}

#[test]
fn binary_refuses_bad_tls_settings_in_one_line() {
    let cert = TestCert::new();
    let other = TestCert::new();
    let cert_path = cert.cert.to_str().unwrap();
    let missing = cert.dir.path().join("nope.pem");
    let cases: [(Vec<&str>, &str); 3] = [
        (vec!["--tls-cert", cert_path], "--tls-key"),
        (
            vec![
                "--tls-cert",
                missing.to_str().unwrap(),
                "--tls-key",
                cert_path,
            ],
            missing.to_str().unwrap(),
        ),
        (
            vec![
                "--tls-cert",
                cert_path,
                "--tls-key",
                other.key.to_str().unwrap(),
            ],
            "does not match",
        ),
    ];
    for (flags, expect) in cases {
        let mut args = vec!["--bind", "127.0.0.1:0"];
        args.extend(flags);
        let (ok, stderr) = run_to_exit(&args);
        assert!(!ok, "{args:?} started");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}
