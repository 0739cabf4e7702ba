//! UDP fault proxy: a NAT-like relay between clients and one target, with a
//! drop rate, a delay and a black-hole switch; everything bounded.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until};

/// Distinct client addresses relayed at once; datagrams from more are dropped.
const MAX_CLIENTS: usize = 16;
/// Datagrams waiting in the delay line; when full, new ones are dropped (a queue
/// overflow, like a router's).
const DELAY_LINE: usize = 1024;
const MAX_DATAGRAM: usize = 65_536;

/// Counters of a [`UdpFaultProxy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams handed on (both directions).
    pub forwarded: u64,
    /// Datagrams dropped by the drop rate, the black hole, or a full queue.
    pub dropped: u64,
}

struct Shared {
    target: SocketAddr,
    /// Drop probability in parts per million.
    drop_ppm: AtomicU32,
    delay_us: AtomicU64,
    black_hole: AtomicBool,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    stop: watch::Sender<bool>,
}

struct Item {
    due: Instant,
    sock: Arc<UdpSocket>,
    dst: SocketAddr,
    data: Vec<u8>,
}

impl Shared {
    /// Applies the faults to one datagram: queue it for sending or drop it.
    fn offer(
        &self,
        line: &mpsc::Sender<Item>,
        sock: &Arc<UdpSocket>,
        dst: SocketAddr,
        data: &[u8],
    ) {
        let ppm = self.drop_ppm.load(Ordering::Relaxed);
        let lost = self.black_hole.load(Ordering::Relaxed)
            || (ppm > 0 && rand::thread_rng().gen_range(0..1_000_000) < ppm);
        if lost {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let delay = Duration::from_micros(self.delay_us.load(Ordering::Relaxed));
        let item = Item {
            due: Instant::now() + delay,
            sock: Arc::clone(sock),
            dst,
            data: data.to_vec(),
        };
        match line.try_send(item) {
            Ok(()) => {
                self.forwarded.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A running UDP fault proxy. Clients send to [`UdpFaultProxy::addr`]; each
/// client address gets its own upstream socket towards the target, and replies
/// come back from the proxy address. Dropping it stops it.
pub struct UdpFaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for UdpFaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpFaultProxy")
            .field("addr", &self.addr)
            .field("target", &self.shared.target)
            .field("stats", &self.stats())
            .finish()
    }
}

impl UdpFaultProxy {
    /// Binds 127.0.0.1:0 and relays datagrams to and from `target`, faultless.
    pub async fn start(target: SocketAddr) -> io::Result<UdpFaultProxy> {
        let front = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?);
        let addr = front.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            drop_ppm: AtomicU32::new(0),
            delay_us: AtomicU64::new(0),
            black_hole: AtomicBool::new(false),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            stop: watch::Sender::new(false),
        });
        let task = tokio::spawn(run(front, Arc::clone(&shared)));
        Ok(UdpFaultProxy {
            addr,
            shared,
            task: Mutex::new(Some(task)),
        })
    }

    /// Where clients send (instead of the target).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay target.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Drops each datagram with probability `rate` (clamped to 0.0..=1.0).
    pub fn set_drop_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
        self.shared.drop_ppm.store(ppm, Ordering::Relaxed);
    }

    /// Delays each datagram by `d` (order kept).
    pub fn set_delay(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.shared.delay_us.store(us, Ordering::Relaxed);
    }

    /// `true`: drop every datagram in both directions; `false`: forward again.
    pub fn black_hole(&self, on: bool) {
        self.shared.black_hole.store(on, Ordering::Relaxed);
    }

    /// Back to faultless forwarding.
    pub fn pass(&self) {
        self.black_hole(false);
        self.set_drop_rate(0.0);
        self.set_delay(Duration::ZERO);
    }

    /// Counters so far.
    pub fn stats(&self) -> UdpStats {
        UdpStats {
            forwarded: self.shared.forwarded.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops relaying and waits for every task.
    pub async fn stop(&self) {
        self.shared.stop.send_replace(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for UdpFaultProxy {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
    }
}

async fn run(front: Arc<UdpSocket>, shared: Arc<Shared>) {
    let (line_tx, line_rx) = mpsc::channel::<Item>(DELAY_LINE);
    let mut tasks = JoinSet::new();
    tasks.spawn(delay_line(line_rx));
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut stop = shared.stop.subscribe();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = front.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from earlier sends surface here on some systems.
                Err(_) => continue,
            },
        };
        let up = match clients.get(&from) {
            Some(up) => Arc::clone(up),
            None => {
                if clients.len() >= MAX_CLIENTS {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Ok(up) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await else {
                    continue;
                };
                let up = Arc::new(up);
                clients.insert(from, Arc::clone(&up));
                tasks.spawn(upstream(
                    Arc::clone(&up),
                    Arc::clone(&front),
                    from,
                    line_tx.clone(),
                    Arc::clone(&shared),
                ));
                up
            }
        };
        shared.offer(&line_tx, &up, shared.target, &buf[..n]);
    }
    drop(line_tx);
    tasks.shutdown().await;
}

/// Relays the target's datagrams on one client's upstream socket back to it.
async fn upstream(
    up: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    line: mpsc::Sender<Item>,
    shared: Arc<Shared>,
) {
    let mut stop = shared.stop.subscribe();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            r = up.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        if from != shared.target {
            continue;
        }
        shared.offer(&line, &front, client, &buf[..n]);
    }
}

async fn delay_line(mut rx: mpsc::Receiver<Item>) {
    while let Some(item) = rx.recv().await {
        sleep_until(item.due).await;
        let _ = item.sock.send_to(&item.data, item.dst).await;
    }
}
