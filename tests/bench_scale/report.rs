//! The scale run's results: `scale.json` (one object per instance count,
//! plus the recovery after an instance is killed) and the small table
//! printed at the end.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

/// One load run on a given number of instances.
#[derive(Debug, Clone)]
pub struct LoadRun {
    /// Instances behind the devices.
    pub instances: usize,
    /// Whether they routed over NATS (`--bus`).
    pub bus: bool,
    /// The machine's 1-minute load average at the end of the load.
    pub loadavg: f64,
    /// Pairs that paired (of those asked for).
    pub pairs: usize,
    /// Pairing attempts that failed, and the first error.
    pub pairing_failures: usize,
    /// The first pairing error, if any.
    pub first_failure: Option<String>,
    /// Seconds to pair every pair (HTTP, sockets, confirmations).
    pub pairing_s: f64,
    /// Seconds until every device's socket was authenticated.
    pub online_s: f64,
    /// Devices online when the load started.
    pub online: usize,
    /// Seconds the hosts sent for.
    pub load_s: f64,
    /// Relays sent (hosts and phones).
    pub sent: u64,
    /// Relays received.
    pub received: u64,
    /// Relays received per second.
    pub msgs_per_sec: f64,
    /// One-way relay latency percentiles, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// After one of three instances was SIGKILLed mid-load.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Devices whose socket was on the killed instance.
    pub devices_on_killed: usize,
    /// Of those, devices authenticated on another instance within the limit.
    pub reconnected: usize,
    /// Seconds until the last of them was authenticated again.
    pub all_reconnected_s: Option<f64>,
    /// Pairs with an end on the killed instance.
    pub pairs_affected: usize,
    /// Pairs (all of them) relaying both ways again within the limit.
    pub pairs_relaying: usize,
    /// Pairs in the run.
    pub pairs: usize,
    /// Seconds until every pair relayed both ways again.
    pub all_relaying_s: Option<f64>,
    /// Median of the affected pairs' times to relay again.
    pub affected_p50_s: f64,
    /// Phones of moved hosts that saw `host_online` again.
    pub host_online_seen: usize,
    /// Phones whose host was on the killed instance.
    pub hosts_moved: usize,
    /// The bound waited.
    pub limit_s: f64,
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Pairs asked for.
    pub pairs: usize,
    /// Candidates per second each host sends.
    pub rate_hz: f64,
    /// The load phase's length, in seconds.
    pub secs: f64,
    /// Whether NATS was there for the runs with a bus.
    pub bus: bool,
    /// One entry per instance count.
    pub runs: Vec<LoadRun>,
    /// The kill, when it ran.
    pub recovery: Option<Recovery>,
}

fn run_json(r: &LoadRun) -> Value {
    json!({
        "instances": r.instances,
        "bus": r.bus,
        "loadavg_1m": r.loadavg,
        "pairs": r.pairs,
        "pairing_failures": r.pairing_failures,
        "first_pairing_failure": r.first_failure,
        "pairing_s": r.pairing_s,
        "online_s": r.online_s,
        "devices_online": r.online,
        "load_s": r.load_s,
        "relays_sent": r.sent,
        "relays_received": r.received,
        "relays_per_sec": r.msgs_per_sec,
        "relay_p50_ms": r.p50_ms,
        "relay_p99_ms": r.p99_ms,
        "relay_max_ms": r.max_ms,
    })
}

fn recovery_json(r: &Recovery) -> Value {
    json!({
        "killed_instances": 1,
        "of_instances": 3,
        "devices_on_killed": r.devices_on_killed,
        "devices_reconnected": r.reconnected,
        "all_reconnected_s": r.all_reconnected_s,
        "pairs": r.pairs,
        "pairs_affected": r.pairs_affected,
        "pairs_relaying": r.pairs_relaying,
        "all_relaying_s": r.all_relaying_s,
        "affected_relaying_p50_s": r.affected_p50_s,
        "hosts_moved": r.hosts_moved,
        "host_online_seen": r.host_online_seen,
        "limit_s": r.limit_s,
    })
}

/// A table row: its label and how a run's cell is written.
type Row = (&'static str, fn(&LoadRun) -> String);

impl Report {
    /// The JSON written to `scale.json`.
    pub fn json(&self) -> Value {
        json!({
            "pairs": self.pairs,
            "devices": self.pairs * 2,
            "candidates_per_sec_per_host": self.rate_hz,
            "load_s": self.secs,
            "bus": self.bus,
            "runs": self.runs.iter().map(run_json).collect::<Vec<_>>(),
            "recovery": self.recovery.as_ref().map(recovery_json),
        })
    }

    /// Writes the JSON to `path` (creating its directory).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&self.json())?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let mut out = format!(
            "scale-out: {} pairs ({} devices), {} candidates/s per host answered by its phone, {} s, on PostgreSQL\n\
             columns: instances, routing alone or over NATS (--bus){}\n",
            self.pairs,
            self.pairs * 2,
            self.rate_hz,
            self.secs,
            if self.bus {
                ""
            } else {
                " (nats-server not installed)"
            },
        );
        out += &format!("{:<24}", "");
        for r in &self.runs {
            let bus = if r.bus { "+NATS" } else { "alone" };
            out += &format!("{:>14}", format!("{} {bus}", r.instances));
        }
        out.push('\n');
        let rows: [Row; 9] = [
            ("pairs paired", |r| format!("{}", r.pairs)),
            ("pairing (s)", |r| format!("{:.1}", r.pairing_s)),
            ("all online (s)", |r| format!("{:.2}", r.online_s)),
            ("relays/s", |r| format!("{:.0}", r.msgs_per_sec)),
            ("delivered (%)", |r| {
                format!("{:.1}", 100.0 * r.received as f64 / r.sent.max(1) as f64)
            }),
            ("relay p50 (ms)", |r| format!("{:.2}", r.p50_ms)),
            ("relay p99 (ms)", |r| format!("{:.2}", r.p99_ms)),
            ("relay max (ms)", |r| format!("{:.1}", r.max_ms)),
            ("load average (1 min)", |r| format!("{:.1}", r.loadavg)),
        ];
        for (name, cell) in rows {
            out += &format!("{name:<24}");
            for r in &self.runs {
                out += &format!("{:>14}", cell(r));
            }
            out.push('\n');
        }
        if let Some(r) = &self.recovery {
            let when = |s: Option<f64>| {
                s.map_or(format!("not within {} s", r.limit_s), |s| {
                    format!("in {s:.2} s")
                })
            };
            out += &format!(
                "SIGKILL 1 of 3 instances: {}/{} of its devices online elsewhere {}; {}/{} pairs relaying both ways {} (affected pairs' median {:.2} s); host_online seen by {}/{} phones of moved hosts\n",
                r.reconnected,
                r.devices_on_killed,
                when(r.all_reconnected_s),
                r.pairs_relaying,
                r.pairs,
                when(r.all_relaying_s),
                r.affected_p50_s,
                r.host_online_seen,
                r.hosts_moved,
            );
        }
        out
    }
}
