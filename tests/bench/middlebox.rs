//! A lossy network between the bench's phone and the agent, as a middlebox
//! would make it: the phone's signaling goes through a [`SignalingRelay`]
//! that rewrites the agent's ICE candidates to the address of a
//! [`UdpFaultProxy`] (20 ms each way, random loss) forwarding to the agent's
//! real socket, and keeps the phone's own candidates from the agent. The
//! phone can then reach the agent only through the proxy, and the agent
//! learns the phone's address from the proxy's datagrams (a peer-reflexive
//! candidate, as behind a NAT). Offers lose their `a=candidate` lines for the
//! same reason; candidates still arrive trickled, rewritten.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use muxlink_e2e::relay::{Dir, Frame, RelayHandle, Role, SignalingRelay, Verdict};
use test_support::UdpFaultProxy;
use tokio::sync::mpsc;

/// Agent candidates waiting for their proxy.
const REWRITE_QUEUE: usize = 64;

/// The faults every proxy applies.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    delay: Duration,
    loss: f64,
}

#[derive(Default)]
struct Proxies {
    faults: Faults,
    by_target: HashMap<SocketAddr, Arc<UdpFaultProxy>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The relay, the proxies it created and the faults they apply.
pub struct Middlebox {
    relay: SignalingRelay,
    proxies: Arc<Mutex<Proxies>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Middlebox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Middlebox {
    /// A relay in front of the signaling server at `upstream`.
    pub async fn start(upstream: &str) -> Result<Middlebox> {
        let relay = SignalingRelay::start(upstream).await?;
        let proxies = Arc::new(Mutex::new(Proxies::default()));
        let (tx, rx) = mpsc::channel::<(u64, String)>(REWRITE_QUEUE);
        let task = tokio::spawn(rewrite_candidates(rx, relay.handle(), Arc::clone(&proxies)));
        relay.set_hook(Arc::new(move |f: &Frame, _: &RelayHandle| {
            if f.role != Role::Phone {
                return Verdict::Pass;
            }
            match (f.dir, f.kind().as_str()) {
                // The agent's candidate: held until its proxy runs, then injected rewritten.
                (Dir::Down, "ice_candidate") => {
                    if tx.try_send((f.conn, f.text.clone())).is_err() {
                        tracing::warn!("bench middlebox: candidate queue full, candidate dropped");
                    }
                    Verdict::Drop
                }
                // The phone's own addresses are not reachable from the agent's side.
                (Dir::Up, "ice_candidate") => Verdict::Drop,
                (_, "sdp_offer" | "sdp_answer") => without_candidates(&f.text),
                _ => Verdict::Pass,
            }
        }));
        Ok(Middlebox {
            relay,
            proxies,
            task,
        })
    }

    /// What the phone is told the server is.
    pub fn url(&self) -> String {
        self.relay.url()
    }

    /// Sets the one-way delay and loss (each way) of every proxy, present and future.
    pub fn set_faults(&self, delay: Duration, loss: f64) {
        let mut p = lock(&self.proxies);
        p.faults = Faults { delay, loss };
        for proxy in p.by_target.values() {
            proxy.set_delay(delay);
            proxy.set_drop_rate(loss);
        }
    }

    /// Datagrams forwarded and dropped by all proxies so far.
    pub fn stats(&self) -> (u64, u64) {
        let p = lock(&self.proxies);
        p.by_target.values().fold((0, 0), |(f, d), proxy| {
            let s = proxy.stats();
            (f + s.forwarded, d + s.dropped)
        })
    }

    /// Stops and forgets every proxy (the connections through them break).
    pub fn clear(&self) {
        lock(&self.proxies).by_target.clear();
    }
}

/// `text` (an SDP message) with its `a=candidate` lines removed.
fn without_candidates(text: &str) -> Verdict {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Verdict::Pass;
    };
    let Some(sdp) = v["sdp"].as_str() else {
        return Verdict::Pass;
    };
    if !sdp.contains("a=candidate") && !sdp.contains("a=end-of-candidates") {
        return Verdict::Pass;
    }
    let kept: Vec<&str> = sdp
        .split("\r\n")
        .filter(|l| !l.starts_with("a=candidate") && !l.starts_with("a=end-of-candidates"))
        .collect();
    v["sdp"] = serde_json::Value::String(kept.join("\r\n"));
    Verdict::Replace(v.to_string())
}

/// Starts (or reuses) a proxy for each agent candidate and injects the
/// candidate with the proxy's address to the phone.
async fn rewrite_candidates(
    mut rx: mpsc::Receiver<(u64, String)>,
    relay: RelayHandle,
    proxies: Arc<Mutex<Proxies>>,
) {
    while let Some((conn, text)) = rx.recv().await {
        match rewritten(&text, &proxies).await {
            Ok(Some(out)) => {
                if !relay.inject_to(conn, Dir::Down, &out) {
                    tracing::warn!("bench middlebox: the phone's socket took no candidate");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "bench middlebox: candidate not rewritten"),
        }
    }
}

/// The `ice_candidate` message with the proxy's address, or `None` for a
/// candidate the proxy cannot carry (not UDP).
async fn rewritten(text: &str, proxies: &Mutex<Proxies>) -> Result<Option<String>> {
    let mut v: serde_json::Value = serde_json::from_str(text)?;
    let cand = v["candidate"].as_str().context("no candidate")?.to_owned();
    let prefixed = cand.starts_with("candidate:");
    let body = cand.strip_prefix("candidate:").unwrap_or(&cand);
    // foundation component transport priority address port typ type ...
    let mut fields: Vec<String> = body.split_whitespace().map(str::to_owned).collect();
    if fields.len() < 8 || !fields[2].eq_ignore_ascii_case("udp") {
        return Ok(None);
    }
    let target: SocketAddr = format!("{}:{}", fields[4], fields[5])
        .parse()
        .context("candidate address")?;
    let proxy = proxy_for(target, proxies).await?;
    fields[4] = proxy.ip().to_string();
    fields[5] = proxy.port().to_string();
    let body = fields.join(" ");
    v["candidate"] = serde_json::Value::String(if prefixed {
        format!("candidate:{body}")
    } else {
        body
    });
    Ok(Some(v.to_string()))
}

/// The address of the proxy in front of `target`, started with the current faults.
async fn proxy_for(target: SocketAddr, proxies: &Mutex<Proxies>) -> Result<SocketAddr> {
    if let Some(p) = lock(proxies).by_target.get(&target) {
        return Ok(p.addr());
    }
    let proxy = UdpFaultProxy::start(target).await?;
    let mut p = lock(proxies);
    proxy.set_delay(p.faults.delay);
    proxy.set_drop_rate(p.faults.loss);
    let addr = proxy.addr();
    p.by_target.insert(target, Arc::new(proxy));
    Ok(addr)
}
