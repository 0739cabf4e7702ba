//! `muxlink-bench-scale`: the bounded scale-out load run of issue 17, for
//! `cargo xtask bench` (release builds, never CI, asserts nothing). It
//! starts a private PostgreSQL and NATS, then three runs of
//! `muxlink-signaling-server` processes sharing them: one instance routing
//! alone, one instance with `--bus`, three instances with `--bus`. Each run
//! pairs 500 simulated hosts with 500 simulated phones through the real
//! pairing code (host on instance i, its phone on another one when there
//! are several) and has every pair relay `ice_candidate`s both ways for
//! 30 s, measuring one-way relay latency and relays per second; the
//! three-instance run then SIGKILLs one instance mid-load and measures until
//! every device of it is online elsewhere and every pair relays again.
//! Writes `<target>/bench/scale.json` (or `--out <path>`) and prints a table.
//!
//! Knobs (environment): `MUXLINK_BENCH_SCALE_PAIRS` (500),
//! `MUXLINK_BENCH_SCALE_SECS` (30), `MUXLINK_BENCH_SCALE_RATE` (candidates
//! per second per host, 5), `MUXLINK_BENCH_SCALE_BUS=off` (no `--bus`: each
//! instance routes alone, so relays across instances are dropped, and no
//! instance is killed).

mod cluster;
mod device;
mod link;
mod pairing;
mod phases;
mod report;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use futures_util::StreamExt as _;
use test_support::{PrivateNats, PrivatePostgres};
use tokio::sync::watch;

use cluster::Cluster;
use device::{Control, Device, Role, Shared};
use phases::PairStats;
use report::{LoadRun, Report};
use stats::{Stats, ms, percentile, secs};

/// Pairings in flight at once while setting up.
const PAIRING_CONCURRENCY: usize = 24;
/// Bound on every device's first authentication.
const ONLINE_LIMIT: Duration = Duration::from_secs(30);
/// Bound on the recovery after the kill.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// Bound on the device tasks ending after the stop.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// What this run does.
struct Settings {
    pairs: usize,
    secs: u64,
    rate_hz: f64,
    bus: bool,
    out: PathBuf,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid value")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Settings> {
        let args: Vec<String> = std::env::args().collect();
        let out = match args.iter().position(|a| a == "--out") {
            Some(i) => PathBuf::from(args.get(i + 1).context("--out needs a path")?),
            None => {
                let exe = std::env::current_exe()?;
                let target = exe
                    .parent()
                    .and_then(Path::parent)
                    .context("locating the target dir")?;
                target.join("bench").join("scale.json")
            }
        };
        let rate_hz: f64 = env_or("MUXLINK_BENCH_SCALE_RATE", 5.0)?;
        anyhow::ensure!(
            rate_hz > 0.0 && rate_hz <= 50.0,
            "MUXLINK_BENCH_SCALE_RATE must be in (0, 50]"
        );
        Ok(Settings {
            pairs: env_or::<usize>("MUXLINK_BENCH_SCALE_PAIRS", 500)?.max(1),
            secs: env_or::<u64>("MUXLINK_BENCH_SCALE_SECS", 30)?,
            rate_hz,
            bus: std::env::var("MUXLINK_BENCH_SCALE_BUS").map_or(true, |v| v != "off"),
            out,
        })
    }
}

fn step(text: &str) {
    println!("==> {text}");
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("muxlink-bench-scale: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let settings = Settings::from_env()?;
    let server = cluster::server_beside_me()?;
    step("starting PostgreSQL and NATS");
    let postgres =
        PrivatePostgres::start().context("PostgreSQL (initdb, postgres) is not installed")?;
    let nats = if settings.bus {
        PrivateNats::start()
    } else {
        None
    };
    let bus = nats.as_ref().map(PrivateNats::url);
    if settings.bus && bus.is_none() {
        println!("nats-server is not installed: the instances route alone (no --bus)");
    }
    let dir = tempfile::tempdir().context("creating a temp dir")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let mut report = Report {
        pairs: settings.pairs,
        rate_hz: settings.rate_hz,
        secs: settings.secs as f64,
        bus: bus.is_some(),
        runs: Vec::new(),
        recovery: None,
    };
    // One instance alone (the default deployment's routing), one instance
    // publishing every relay on the bus too, three instances on the bus.
    let mut runs = vec![(1, None, false)];
    if bus.is_some() {
        runs.push((1, bus.as_deref(), false));
    }
    // Without a bus no relay crosses instances, so no pair could recover: no kill.
    runs.push((3, bus.as_deref(), bus.is_some()));
    for (i, (n, bus, kill)) in runs.into_iter().enumerate() {
        let with = if bus.is_some() { " + NATS" } else { "" };
        step(&format!("{n} instance(s) on PostgreSQL{with}"));
        let database = postgres.create_database(&format!("scale{i}"))?;
        let logs = dir.path().join(format!("run{i}"));
        std::fs::create_dir_all(&logs).context("creating a log dir")?;
        let cluster = Cluster::start(&server, n, &database, bus, &logs)?;
        let (mut run, recovery) = runtime.block_on(scenario(&settings, cluster, kill))?;
        run.bus = bus.is_some();
        println!(
            "    {:.0} relays/s, p50 {:.2} ms, p99 {:.2} ms",
            run.msgs_per_sec, run.p50_ms, run.p99_ms
        );
        report.runs.push(run);
        report.recovery = report.recovery.take().or(recovery);
    }
    report.write(&settings.out)?;
    println!("\n{}", report.table());
    println!("wrote {}", settings.out.display());
    Ok(())
}

/// The instance a pair's phone lives on: another one than its host's when there are several.
fn phone_home(k: usize, n: usize) -> usize {
    (k + 1) % n
}

/// Pairs, brings every device online, runs the load and, when `kill`, the recovery.
async fn scenario(
    settings: &Settings,
    mut cluster: Cluster,
    kill: bool,
) -> Result<(LoadRun, Option<report::Recovery>)> {
    let n = cluster.urls.len();
    let started = Instant::now();
    let urls = cluster.urls.clone();
    let results: Vec<(usize, Result<pairing::Pair>)> =
        futures_util::stream::iter(0..settings.pairs)
            .map(|k| {
                let (host_url, phone_url) = (urls[k % n].clone(), urls[phone_home(k, n)].clone());
                async move { (k, pairing::pair(k, &host_url, &phone_url).await) }
            })
            .buffer_unordered(PAIRING_CONCURRENCY)
            .collect()
            .await;
    let pairing_s = secs(started.elapsed());
    let mut first_failure = None;
    let mut paired = Vec::new();
    for (k, result) in results {
        match result {
            Ok(pair) => paired.push((k, pair)),
            Err(e) => {
                first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let pairing_failures = settings.pairs - paired.len();
    println!(
        "    paired {}/{} in {pairing_s:.1} s{}",
        paired.len(),
        settings.pairs,
        first_failure
            .as_deref()
            .map(|e| format!(" (first failure: {e})"))
            .unwrap_or_default()
    );

    let epoch = Instant::now();
    let shared = Arc::new(Shared {
        urls,
        epoch,
        period: Duration::from_secs_f64(1.0 / settings.rate_hz),
    });
    let (control, watcher) = watch::channel(Control {
        sending: false,
        mark: epoch,
        stop: false,
    });
    let mut tasks = Vec::new();
    let mut pairs = Vec::new();
    for (k, pair) in paired {
        let (host_id, phone_id) = (
            pair.host.device_id().to_owned(),
            pair.phone.device_id().to_owned(),
        );
        let stats = PairStats {
            host: Arc::new(Mutex::new(Stats::new(epoch))),
            phone: Arc::new(Mutex::new(Stats::new(epoch))),
        };
        let host = Device {
            role: Role::Host,
            identity: pair.host,
            name: format!("host-{k}"),
            peer_id: phone_id,
            token: pair.host_token,
            home: k % n,
        };
        let phone = Device {
            role: Role::Phone,
            identity: pair.phone,
            name: format!("phone-{k}"),
            peer_id: host_id,
            token: pair.phone_token,
            home: phone_home(k, n),
        };
        tasks.push(device::spawn(
            host,
            shared.clone(),
            watcher.clone(),
            stats.host.clone(),
        ));
        tasks.push(device::spawn(
            phone,
            shared.clone(),
            watcher.clone(),
            stats.phone.clone(),
        ));
        pairs.push(stats);
    }
    let (online_in, online) = phases::wait_online(&pairs, ONLINE_LIMIT).await;
    println!(
        "    {online}/{} devices online in {:.2} s",
        pairs.len() * 2,
        online_in.as_secs_f64()
    );

    let load = phases::load(&pairs, &control, Duration::from_secs(settings.secs)).await;
    let elapsed = load.elapsed.as_secs_f64();
    let run = LoadRun {
        instances: n,
        bus: false,
        loadavg: load.loadavg,
        pairs: pairs.len(),
        pairing_failures,
        first_failure,
        pairing_s,
        online_s: secs(online_in),
        online,
        load_s: secs(load.elapsed),
        sent: load.sent,
        received: load.received,
        msgs_per_sec: (load.received as f64 / elapsed).round(),
        p50_ms: ms(percentile(&load.latencies_us, 50.0)),
        p99_ms: ms(percentile(&load.latencies_us, 99.0)),
        max_ms: ms(load.latencies_us.last().copied().unwrap_or(0)),
    };

    let recovery = if kill && n > 1 {
        step("SIGKILL of instance 0 under load");
        let r = phases::recovery(&pairs, &control, &mut cluster, 0, RECOVERY_LIMIT).await?;
        Some(r)
    } else {
        None
    };

    control.send_modify(|c| c.stop = true);
    let joined = tokio::time::timeout(STOP_LIMIT, futures_util::future::join_all(tasks)).await;
    if joined.is_err() {
        println!("    some devices did not stop within {STOP_LIMIT:?}");
    }
    drop(cluster);
    Ok((run, recovery))
}
