//! Certificate renewal without a restart: the server starts with certificate
//! A, the files are replaced with certificate B, and a new TLS connection is
//! shown B (found by the server's own periodic check); a changed pair that
//! cannot be used (key of another certificate, no certificate at all) is
//! refused with the reason and A keeps being served until a good pair
//! arrives. Connections are real TLS handshakes over loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use signaling_server::tls::Reload;
use signaling_server::{Server, ServerConfig, TlsError, TlsFiles};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn pair() -> Pair {
    let g = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    Pair {
        cert_pem: g.cert.pem(),
        key_pem: g.key_pair.serialize_pem(),
        der: g.cert.der().to_vec(),
    }
}

/// Replaces a file the way renewal tools do: a new file renamed over the old.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The end-entity certificate a new TLS connection to `addr` is shown; the
/// client trusts every certificate in `trusted`.
async fn presented(addr: SocketAddr, trusted: &[&Pair]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for p in trusted {
        roots.add(CertificateDer::from(p.der.clone())).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::from(addr.ip()), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn start_config(dir: &Path, first: &Pair, every: Duration) -> ServerConfig {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, &first.cert_pem).unwrap();
    std::fs::write(&files.key, &first.key_pem).unwrap();
    ServerConfig {
        tls: Some(files),
        tls_reload_interval: every,
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_files_are_served_to_new_connections_without_a_restart() {
    let (a, b) = (pair(), pair());
    let dir = tempfile::tempdir().unwrap();
    let config = start_config(dir.path(), &a, Duration::from_millis(50));
    let server = Server::start(config).await.unwrap();
    let addr = server.local_addr();
    assert_eq!(presented(addr, &[&a, &b]).await, a.der);

    replace(&dir.path().join("key.pem"), &b.key_pem);
    replace(&dir.path().join("cert.pem"), &b.cert_pem);
    // The server's own watcher finds the change; wait for it, bounded.
    let seen_b = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if presented(addr, &[&a, &b]).await == b.der {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(seen_b.is_ok(), "certificate B never served");
    // HTTP still works over the new certificate.
    let url = server.url();
    let http = Http {
        url,
        version: "v1".into(),
        hmac: String::new(),
        clock: signaling_server::Clock::system(),
        ca: Some(b.der.clone()),
    };
    let r = http
        .send("GET", "/health", None, None, Sign::Unsigned)
        .await;
    assert_eq!(r.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_new_pair_keeps_the_old_certificate() {
    let (a, b) = (pair(), pair());
    let dir = tempfile::tempdir().unwrap();
    // No watcher: the test drives the checks itself.
    let config = start_config(dir.path(), &a, Duration::ZERO);
    let server = Server::start(config).await.unwrap();
    let addr = server.local_addr();
    let reloader = server.tls_reloader().unwrap();
    assert!(matches!(reloader.reload_if_changed(), Reload::Unchanged));

    // Half a renewal: B's certificate with A's key.
    replace(&dir.path().join("cert.pem"), &b.cert_pem);
    match reloader.reload_if_changed() {
        Reload::Kept(TlsError::KeyMismatch { .. }) => {}
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    assert_eq!(presented(addr, &[&a, &b]).await, a.der);
    // Refused once per change, not at every check.
    assert!(matches!(reloader.reload_if_changed(), Reload::Unchanged));

    replace(&dir.path().join("cert.pem"), "not a certificate\n");
    match reloader.reload_if_changed() {
        Reload::Kept(e @ TlsError::NoCertificate { .. }) => {
            assert!(e.to_string().contains("cert.pem"), "{e}");
        }
        other => panic!("expected no certificate, got {other:?}"),
    }
    assert_eq!(presented(addr, &[&a, &b]).await, a.der);

    replace(&dir.path().join("cert.pem"), &b.cert_pem);
    replace(&dir.path().join("key.pem"), &b.key_pem);
    assert!(matches!(reloader.reload_if_changed(), Reload::Reloaded));
    assert_eq!(presented(addr, &[&a, &b]).await, b.der);
    assert_eq!(reloader.current_certificate().unwrap().to_vec(), b.der);
    server.shutdown().await;
}
