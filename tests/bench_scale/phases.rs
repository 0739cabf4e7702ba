//! The measured phases of one run over already-paired devices: waiting
//! until every socket is authenticated, the load (hosts send, phones
//! answer, every relay's latency recorded), and the recovery after an
//! instance is SIGKILLed (until every device of it is authenticated
//! elsewhere and every pair relays both ways again).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cluster::Cluster;
use crate::device::Control;
use crate::report::Recovery;
use crate::stats::{Stats, lock, percentile, secs};

/// How often the orchestrator looks at the devices' stats.
const POLL: Duration = Duration::from_millis(50);
/// Relays still in flight when the hosts stop get this long to arrive.
const DRAIN: Duration = Duration::from_secs(1);

/// One pair's two devices' stats.
pub struct PairStats {
    /// The host's.
    pub host: Arc<Mutex<Stats>>,
    /// The phone's.
    pub phone: Arc<Mutex<Stats>>,
}

impl PairStats {
    fn both(&self) -> [&Arc<Mutex<Stats>>; 2] {
        [&self.host, &self.phone]
    }
}

/// Waits (up to `limit`) until every device is authenticated; returns how
/// long it took and how many were online at the end.
pub async fn wait_online(pairs: &[PairStats], limit: Duration) -> (Duration, usize) {
    let start = Instant::now();
    loop {
        let online = pairs
            .iter()
            .flat_map(PairStats::both)
            .filter(|s| lock(s).instance.is_some())
            .count();
        if online == pairs.len() * 2 || start.elapsed() >= limit {
            return (start.elapsed(), online);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What a load phase measured.
pub struct Load {
    /// How long the hosts sent.
    pub elapsed: Duration,
    /// Relays sent by both ends.
    pub sent: u64,
    /// Relays received by both ends.
    pub received: u64,
    /// Every kept latency sample, sorted, in microseconds.
    pub latencies_us: Vec<u32>,
    /// The machine's 1-minute load average when the phase ended: this
    /// run's own processes (bench, instances, PostgreSQL, NATS) plus any
    /// other work on the machine, such as a build, which skews latency.
    pub loadavg: f64,
}

/// Hosts send (phones answer) for `length`, then a short drain.
pub async fn load(pairs: &[PairStats], control: &watch::Sender<Control>, length: Duration) -> Load {
    for s in pairs.iter().flat_map(PairStats::both) {
        lock(s).reset_load();
    }
    control.send_modify(|c| c.sending = true);
    let start = Instant::now();
    tokio::time::sleep(length).await;
    control.send_modify(|c| c.sending = false);
    let elapsed = start.elapsed();
    let loadavg = loadavg();
    tokio::time::sleep(DRAIN).await;
    let (mut sent, mut received, mut latencies_us) = (0, 0, Vec::new());
    for s in pairs.iter().flat_map(PairStats::both) {
        let s = lock(s);
        sent += s.sent;
        received += s.received;
        latencies_us.extend_from_slice(&s.latencies_us);
    }
    latencies_us.sort_unstable();
    Load {
        elapsed,
        sent,
        received,
        latencies_us,
        loadavg,
    }
}

/// The 1-minute load average from /proc/loadavg (0 where unreadable).
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// With the load running, SIGKILLs instance `victim` and waits (up to
/// `limit`) until its devices are authenticated elsewhere and every pair
/// relays both ways again.
pub async fn recovery(
    pairs: &[PairStats],
    control: &watch::Sender<Control>,
    cluster: &mut Cluster,
    victim: usize,
    limit: Duration,
) -> anyhow::Result<Recovery> {
    control.send_modify(|c| c.sending = true);
    // Let every pair settle into relaying before the kill.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let on_victim = |s: &Arc<Mutex<Stats>>| lock(s).instance == Some(victim);
    let moved: Vec<(bool, bool)> = pairs
        .iter()
        .map(|p| (on_victim(&p.host), on_victim(&p.phone)))
        .collect();
    cluster.kill(victim)?;
    let mark = Instant::now();
    control.send_modify(|c| c.mark = mark);

    let back = |s: &Arc<Mutex<Stats>>| lock(s).authenticated_at.is_some_and(|at| at > mark);
    let relaying = |p: &PairStats| {
        let host = lock(&p.host).relaying_after(mark);
        let phone = lock(&p.phone).relaying_after(mark);
        host.zip(phone).map(|(h, p)| h.max(p))
    };
    loop {
        let reconnected = pairs
            .iter()
            .zip(&moved)
            .all(|(p, (h, ph))| (!h || back(&p.host)) && (!ph || back(&p.phone)));
        let all_relaying = pairs.iter().all(|p| relaying(p).is_some());
        if (reconnected && all_relaying) || mark.elapsed() >= limit {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    control.send_modify(|c| c.sending = false);

    let mut devices_on_killed = 0;
    let mut reconnected = 0;
    let mut last_back = Duration::ZERO;
    let mut affected = Vec::new();
    let (mut pairs_relaying, mut last_relaying) = (0, Duration::ZERO);
    let (mut hosts_moved, mut host_online_seen) = (0, 0);
    for (p, &(host_moved, phone_moved)) in pairs.iter().zip(&moved) {
        for (s, was) in [(&p.host, host_moved), (&p.phone, phone_moved)] {
            if was {
                devices_on_killed += 1;
                if let Some(at) = lock(s).authenticated_at.filter(|at| *at > mark) {
                    reconnected += 1;
                    last_back = last_back.max(at - mark);
                }
            }
        }
        let took = relaying(p);
        if let Some(took) = took {
            pairs_relaying += 1;
            last_relaying = last_relaying.max(took);
        }
        if host_moved || phone_moved {
            affected.push(took.unwrap_or(limit));
        }
        if host_moved {
            hosts_moved += 1;
            let phone = lock(&p.phone);
            if phone.mark == mark && phone.host_online_after_mark.is_some() {
                host_online_seen += 1;
            }
        }
    }
    affected.sort_unstable();
    Ok(Recovery {
        devices_on_killed,
        reconnected,
        all_reconnected_s: (reconnected == devices_on_killed).then(|| secs(last_back)),
        pairs_affected: affected.len(),
        pairs_relaying,
        pairs: pairs.len(),
        all_relaying_s: (pairs_relaying == pairs.len()).then(|| secs(last_relaying)),
        affected_p50_s: secs(percentile(&affected, 50.0)),
        host_online_seen,
        hosts_moved,
        limit_s: limit.as_secs_f64(),
    })
}
