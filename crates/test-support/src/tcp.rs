//! TCP fault proxy: relays connections from `127.0.0.1:<port>` to a target and can
//! delay, black-hole, cut or refuse them at run time.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until, timeout};

/// How established connections forward bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpMode {
    /// Forward at once.
    Pass,
    /// Forward each chunk this long after it was read (order kept).
    Delay(Duration),
    /// Forward nothing and stop reading (like a dead path: TCP stalls, no bytes
    /// are lost); connections stay open. Switching back resumes them.
    BlackHole,
}

/// At most this many relayed connections at once; extra ones are closed.
const MAX_CONNECTIONS: usize = 256;
/// Chunks in flight per direction (each ≤ 16 KiB); a full queue stops reading.
const CHUNKS_IN_FLIGHT: usize = 64;
const CHUNK: usize = 16 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

struct Shared {
    target: SocketAddr,
    mode: watch::Sender<TcpMode>,
    cut: watch::Sender<u64>,
    refuse: watch::Sender<bool>,
    stop: watch::Sender<bool>,
    active: AtomicUsize,
    accepted: AtomicU64,
}

/// A running TCP fault proxy. Dropping it stops it (connections close promptly).
pub struct TcpFaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for TcpFaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpFaultProxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("mode", &*self.shared.mode.borrow())
            .finish()
    }
}

impl TcpFaultProxy {
    /// Listens on 127.0.0.1:0 and relays every connection to `target` (Pass mode).
    pub async fn start(target: SocketAddr) -> io::Result<TcpFaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            mode: watch::Sender::new(TcpMode::Pass),
            cut: watch::Sender::new(0),
            refuse: watch::Sender::new(false),
            stop: watch::Sender::new(false),
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, addr, Arc::clone(&shared)));
        Ok(TcpFaultProxy {
            addr,
            shared,
            task: Mutex::new(Some(task)),
        })
    }

    /// The proxy's listening address (connect here instead of the target).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for clients configured with a server URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The relay target.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Sets how connections forward bytes (applies to existing ones too).
    pub fn set_mode(&self, mode: TcpMode) {
        self.shared.mode.send_replace(mode);
    }

    /// Forward at once.
    pub fn pass(&self) {
        self.set_mode(TcpMode::Pass);
    }

    /// Forward each chunk `d` after it was read.
    pub fn delay(&self, d: Duration) {
        self.set_mode(TcpMode::Delay(d));
    }

    /// Forward nothing; connections stay open and stall.
    pub fn black_hole(&self) {
        self.set_mode(TcpMode::BlackHole);
    }

    /// The current mode.
    pub fn mode(&self) -> TcpMode {
        *self.shared.mode.borrow()
    }

    /// Closes every current connection (both sides see the socket close).
    pub fn cut(&self) {
        self.shared.cut.send_modify(|g| *g += 1);
    }

    /// `true`: stop listening, so new connects are refused (ECONNREFUSED);
    /// `false`: listen again on the same port. Existing connections are untouched.
    pub fn refuse_new(&self, refuse: bool) {
        self.shared.refuse.send_replace(refuse);
    }

    /// Connections currently relayed.
    pub fn connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Connections accepted since start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Stops listening, closes all connections and waits for every task.
    pub async fn stop(&self) {
        self.shared.stop.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for TcpFaultProxy {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}

async fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

async fn accept_loop(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) {
    let mut listener = Some(listener);
    let mut conns = JoinSet::new();
    let mut stop = shared.stop.subscribe();
    let mut refuse = shared.refuse.subscribe();
    loop {
        while conns.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        let want_refuse = *refuse.borrow_and_update();
        if want_refuse {
            listener = None;
        } else if listener.is_none() {
            match rebind(addr).await {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, %addr, "fault proxy could not listen again");
                    break;
                }
            }
        }
        let Some(l) = listener.as_ref() else {
            tokio::select! {
                _ = stop.changed() => {}
                r = refuse.changed() => if r.is_err() { break },
            }
            continue;
        };
        // Biased: a refuse asked for before a `cut` takes effect before
        // any connection already waiting in the backlog is accepted, so a
        // client that redials the moment it is cut is refused (unbiased, the
        // accept could win and the client was back at once).
        tokio::select! {
            biased;
            _ = stop.changed() => {}
            r = refuse.changed() => if r.is_err() { break },
            r = l.accept() => match r {
                Ok((client, _)) => {
                    shared.accepted.fetch_add(1, Ordering::SeqCst);
                    if conns.len() >= MAX_CONNECTIONS {
                        drop(client);
                        continue;
                    }
                    conns.spawn(relay(client, Arc::clone(&shared)));
                }
                Err(e) => tracing::debug!(error = %e, "fault proxy accept"),
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
}

struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, shared: Arc<Shared>) {
    shared.active.fetch_add(1, Ordering::SeqCst);
    let _guard = ActiveGuard(&shared.active);
    let mut cut = shared.cut.subscribe();
    let mut stop = shared.stop.subscribe();
    cut.borrow_and_update();
    let upstream = tokio::select! {
        r = timeout(CONNECT_TIMEOUT, TcpStream::connect(shared.target)) => match r {
            Ok(Ok(s)) => s,
            _ => return,
        },
        _ = cut.changed() => return,
        _ = stop.changed() => return,
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let both = async {
        tokio::join!(
            pump(cr, uw, shared.mode.subscribe()),
            pump(ur, cw, shared.mode.subscribe())
        )
    };
    tokio::select! {
        _ = both => {}
        _ = cut.changed() => {}
        _ = stop.changed() => {}
    }
}

/// Resolves when the mode is not BlackHole; returns that mode.
async fn passable(mode: &mut watch::Receiver<TcpMode>) -> Option<TcpMode> {
    mode.wait_for(|m| *m != TcpMode::BlackHole)
        .await
        .ok()
        .map(|m| *m)
}

/// Copies one direction through a bounded delay line; half-closes the writer at EOF.
async fn pump<R, W>(mut r: R, mut w: W, mode: watch::Receiver<TcpMode>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
    let mut read_mode = mode.clone();
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if passable(&mut read_mode).await.is_none() {
                break;
            }
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let delay = match *read_mode.borrow() {
                TcpMode::Delay(d) => d,
                _ => Duration::ZERO,
            };
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let mut write_mode = mode;
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            sleep_until(due).await;
            if passable(&mut write_mode).await.is_none() {
                break;
            }
            if w.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::join!(reader, writer);
}
