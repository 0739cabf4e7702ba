//! Native TLS (https/wss) for the server: [`load_reloading`] reads the PEM
//! certificate chain and private key at start-up (so a bad file stops the
//! start, not the first connection), and [`TlsListener`] is the axum listener
//! that completes TLS handshakes beside the TCP accept loop.
//!
//! Certificates are renewed without a restart: [`CertReloader`] is the
//! rustls certificate resolver, and [`CertReloader::watch`] reads the two
//! (small) files and compares their content every
//! [`crate::ServerConfig::tls_reload_interval`]; a changed pair that loads
//! and matches replaces the old one for new handshakes in one step, a bad
//! one (half-written, key not matching) is logged and the old pair kept until
//! the files change again.
//!
//! rustls runs with the ring provider only. A handshake that fails (a plain
//! HTTP client, garbage, an untrusted certificate on the client side) is
//! logged at debug and dropped; one that does not finish within
//! [`HANDSHAKE_TIMEOUT`] is dropped too, so a silent client cannot hold a slot.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject as _};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// A TLS handshake must complete within this time or the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; while this many are pending, no further
/// TCP connection is taken from the kernel backlog until one finishes.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Why the TLS certificate or key cannot be used. Each message names the file
/// and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Only one of certificate and key was given.
    #[error(
        "--tls-cert and --tls-key go together: {given} was given without {missing}; pass both (or neither for plain HTTP)"
    )]
    Incomplete {
        /// The setting that was given.
        given: &'static str,
        /// The setting that is missing.
        missing: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read TLS {what} file {}: {source}; pass a readable PEM file", path.display())]
    Read {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// OS error.
        source: io::Error,
    },
    /// The certificate file holds no usable certificate.
    #[error(
        "no certificate in {}: the --tls-cert file must hold PEM \"BEGIN CERTIFICATE\" blocks (the server certificate first, then its chain){detail}",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// Parser detail, with its leading separator, or empty.
        detail: String,
    },
    /// The key file holds no usable private key.
    #[error(
        "no private key in {}: the --tls-key file must hold a PEM \"BEGIN PRIVATE KEY\" (PKCS#8), \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block{detail}",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
        /// Parser detail, with its leading separator, or empty.
        detail: String,
    },
    /// The key does not belong to the certificate.
    #[error(
        "the private key in {} does not match the certificate in {}: pass the key that was issued with this certificate",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
    },
    /// rustls refused the pair for another reason (unsupported key type, …).
    #[error(
        "cannot use the TLS certificate {} with the key {}: {source}; use an RSA, ECDSA or Ed25519 key in PEM",
        cert.display(),
        key.display()
    )]
    Unusable {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

/// Certificate chain and private key (PEM files) for serving https/wss; see
/// [`TlsFiles::from_pair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, server certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Both paths or neither; one alone is [`TlsError::Incomplete`].
    pub fn from_pair(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
    ) -> Result<Option<TlsFiles>, TlsError> {
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
            (Some(_), None) => Err(TlsError::Incomplete {
                given: "the certificate (--tls-cert)",
                missing: "the key (--tls-key)",
            }),
            (None, Some(_)) => Err(TlsError::Incomplete {
                given: "the key (--tls-key)",
                missing: "the certificate (--tls-cert)",
            }),
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn detail(e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => String::new(),
        other => format!(" ({other})"),
    }
}

/// Reads and checks the certificate chain and key.
fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read("certificate", &files.cert)?;
    let no_cert = |detail: String| TlsError::NoCertificate {
        path: files.cert.clone(),
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no_cert(detail(&e)))?;
    if chain.is_empty() {
        return Err(no_cert(String::new()));
    }
    let key_pem = read("key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: files.key.clone(),
        detail: detail(&e),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        },
        source => TlsError::Unusable {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        },
    })
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A fingerprint of a file's content (`None`: unreadable). Content, not
/// modification time: a quick rewrite of a same-length file can keep its
/// mtime (coarse timestamps), and certbot's symlink swap keeps the link's.
/// Not a security check, only change detection.
type Stamp = Option<u64>;

fn stamp(path: &Path) -> Stamp {
    use std::hash::{Hash as _, Hasher as _};
    let bytes = std::fs::read(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// The server's certificate: the pair last loaded from [`TlsFiles`], handed
/// to every new handshake, replaced in one step by [`CertReloader::reload_if_changed`]
/// (connections already open keep the certificate they were shown).
pub struct CertReloader {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamps when last tried (loaded or refused), so a bad pair
    /// is reported once per change, not at every check.
    seen: Mutex<(Stamp, Stamp)>,
}

impl std::fmt::Debug for CertReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock still holds a complete pair (writers only swap an Arc).
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        Some(Arc::clone(&guard))
    }
}

/// What a reload check did.
#[derive(Debug)]
pub enum Reload {
    /// Neither file changed since the last check.
    Unchanged,
    /// The new pair is in use for new connections.
    Reloaded,
    /// The files changed but the new pair is unusable; the old one stays.
    Kept(TlsError),
}

impl CertReloader {
    /// Loads the pair once; an unusable pair is an error (the start fails).
    pub fn load(files: &TlsFiles) -> Result<CertReloader, TlsError> {
        let seen = (stamp(&files.cert), stamp(&files.key));
        let key = load_certified_key(files)?;
        Ok(CertReloader {
            files: files.clone(),
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(seen),
        })
    }

    /// The DER of the certificate new connections get.
    pub fn current_certificate(&self) -> Option<CertificateDer<'static>> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        guard.cert.first().cloned()
    }

    /// Re-reads the files when their content changed since the last check,
    /// and swaps the pair in when it is usable.
    pub fn reload_if_changed(&self) -> Reload {
        let now = (stamp(&self.files.cert), stamp(&self.files.key));
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == now {
                return Reload::Unchanged;
            }
            *seen = now;
        }
        match load_certified_key(&self.files) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
                Reload::Reloaded
            }
            Err(e) => Reload::Kept(e),
        }
    }

    /// Checks the files every `every` until `shutdown`, logging each reload
    /// and each refused pair.
    pub async fn watch(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let me = Arc::clone(&self);
            // File reads are blocking; they are small and rare.
            let Ok(outcome) = tokio::task::spawn_blocking(move || me.reload_if_changed()).await
            else {
                continue;
            };
            match outcome {
                Reload::Unchanged => {}
                Reload::Reloaded => tracing::info!(
                    cert = %self.files.cert.display(),
                    "TLS certificate reloaded; new connections use it"
                ),
                Reload::Kept(e) => tracing::error!(
                    error = %e,
                    "TLS certificate files changed but cannot be used; still serving the previous certificate"
                ),
            }
        }
    }
}

/// Reads and checks the certificate chain and key; the acceptor serves
/// HTTP/1.1 (plain requests and WebSocket upgrades) with the pair held by
/// the returned [`CertReloader`].
pub fn load_reloading(files: &TlsFiles) -> Result<(TlsAcceptor, Arc<CertReloader>), TlsError> {
    let reloader = Arc::new(CertReloader::load(files)?);
    let unusable = |source| TlsError::Unusable {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&reloader) as Arc<dyn ResolvesServerCert>);
    // axum serves HTTP/1.1 only; saying so lets browsers skip an h2 attempt.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), reloader))
}

/// [`load_reloading`] without the handle (a certificate that never changes).
pub fn load_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    load_reloading(files).map(|(acceptor, _)| acceptor)
}

/// Completes the TLS handshake on `tcp` within `limit` (a timeout is an
/// `io::ErrorKind::TimedOut` error).
pub async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    limit: Duration,
) -> io::Result<TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

type Handshake =
    Pin<Box<dyn Future<Output = (SocketAddr, Result<TlsStream<TcpStream>, io::Error>)> + Send>>;

/// An axum [`axum::serve::Listener`] over TCP whose `accept` yields
/// connections whose TLS handshake completed. Handshakes run concurrently
/// with accepting further TCP connections (at most
/// `MAX_PENDING_HANDSHAKES` at once), each bounded by [`HANDSHAKE_TIMEOUT`].
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    pending: FuturesUnordered<Handshake>,
    handshake_timeout: Duration,
}

impl TlsListener {
    /// Wraps a bound TCP listener.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> TlsListener {
        TlsListener {
            tcp,
            acceptor,
            pending: FuturesUnordered::new(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        let limit = self.handshake_timeout;
        self.pending.push(Box::pin(async move {
            (peer, handshake(&acceptor, stream, limit).await)
        }));
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // Cancel-safe (axum drops this future on shutdown): every handshake in
    // progress lives in `self.pending`, and TCP accept is cancel-safe.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.pending.len() < MAX_PENDING_HANDSHAKES;
            tokio::select! {
                // axum's TCP accept logs and retries errors itself.
                (stream, peer) = axum::serve::Listener::accept(&mut self.tcp), if room => {
                    self.start_handshake(stream, peer);
                }
                Some((peer, done)) = self.pending.next(), if !self.pending.is_empty() => {
                    match done {
                        Ok(tls) => return (tls, peer),
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::serve::Listener as _;
    use tokio::io::AsyncReadExt as _;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::ServerName;

    use super::*;

    #[tokio::test]
    async fn a_silent_client_is_dropped_at_the_timeout_and_others_are_served_meanwhile() {
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&files.cert, generated.cert.pem()).unwrap();
        std::fs::write(&files.key, generated.key_pair.serialize_pem()).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut listener = TlsListener::new(tcp, load_acceptor(&files).unwrap());
        listener.handshake_timeout = Duration::from_millis(200);
        let (tx, mut accepted) = tokio::sync::mpsc::channel(4);
        let server = tokio::spawn(async move {
            loop {
                let (io, peer) = listener.accept().await;
                if tx.send((io, peer)).await.is_err() {
                    return;
                }
            }
        });

        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(generated.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let me = tcp.local_addr().unwrap();
        let _tls = TlsConnector::from(Arc::new(client))
            .connect(ServerName::from(addr.ip()), tcp)
            .await
            .unwrap();
        let deadline = Duration::from_secs(5);
        let (_io, peer) = tokio::time::timeout(deadline, accepted.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(peer, me);

        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(deadline, silent.read(&mut buf))
            .await
            .expect("the silent client was kept past the handshake timeout");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(accepted.try_recv().is_err());
        server.abort();
    }
}
