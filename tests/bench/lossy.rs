//! The lossy section (issue 16, "measure first"): the phone reaches the agent
//! only through a [`Middlebox`] with 20 ms one-way delay and 0, 1 or 3 %
//! random loss each way. Per loss rate, on a fresh connection: the echo round
//! trip over 500 keys and the time of a byte-exact 10 MB `cat`, each bounded
//! (a run past its limit reports "timeout", never hangs). Beside them, the
//! same figures for TCP on that path as a model (see [`tcp_model`]).
//! `MUXLINK_BENCH_LOSS=0,3` measures only the given percentages.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mobile_client::{PhoneConnection, Signaling, SignalingOptions};
use serde_json::json;

use crate::echo::{EVENT_WAIT, RAW_ECHO, next_output};
use crate::generator::Written;
use crate::measure::{ms, percentile};
use crate::middlebox::Middlebox;
use crate::pattern::{Framed, Kind, Phase};
use crate::report::{Row, round};
use crate::rig::{COLS, Keepalive, ROWS, Rig, blocking};
use crate::stream::wait_written;

/// One-way delay the proxy adds in each direction.
pub const ONE_WAY: Duration = Duration::from_millis(20);
/// Loss rates measured, each way.
pub const LOSS_RATES: [f64; 3] = [0.0, 0.01, 0.03];
/// Keys timed per loss rate.
pub const ECHO_KEYS: usize = 500;
/// Keys typed first and not timed.
const WARM_UP: usize = 10;
/// Longest the echo run of one loss rate may take.
const ECHO_LIMIT: Duration = Duration::from_secs(90);
/// Bytes of the `cat`.
pub const CAT_BYTES: u64 = 10_000_000;
/// After this long without output the phone asks the `cat`'s pane for the
/// end marker again (it answers each input byte with one).
const ASK_END_AFTER: Duration = Duration::from_secs(1);
/// Longest the `cat` of one loss rate may take.
pub const CAT_LIMIT: Duration = Duration::from_secs(120);
/// TCP's maximum segment size on a 1500-byte path (for the model).
const TCP_MSS: f64 = 1448.0;

/// Echo round trips on the lossy path, milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoStats {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest key.
    pub max: f64,
    /// Keys timed.
    pub samples: usize,
    /// The run hit its limit before all keys were timed.
    pub timeout: bool,
}

/// The `cat` on the lossy path.
#[derive(Debug, Clone, Default)]
pub struct CatStats {
    /// Seconds from the start key to the last byte; `None` on timeout.
    pub seconds: Option<f64>,
    /// Length, order and checksum equal the file's.
    pub byte_exact: bool,
    /// Bytes received in order before the end (or the timeout).
    pub received: u64,
    /// Why the `cat` ended without its last byte before the limit, if it did.
    pub failed: Option<String>,
    /// Stream bytes the agent skipped for this phone (stream v2: a phone that
    /// falls too far behind gets a fresh screen), during the `cat`.
    pub bytes_skipped: u64,
    /// Snapshots (fresh screens) the phone received during the `cat`.
    pub snapshots: u64,
}

/// One loss rate's figures.
#[derive(Debug, Clone, Default)]
pub struct LossyRun {
    /// Loss each way, 0..1.
    pub loss: f64,
    /// Echo round trips.
    pub echo: EchoStats,
    /// The 10 MB `cat`.
    pub cat: CatStats,
    /// Datagrams the proxy forwarded and dropped in this run.
    pub forwarded: u64,
    /// See `forwarded`.
    pub dropped: u64,
    /// Why the run ended early, if it did.
    pub error: Option<String>,
}

/// TCP on the same path, as a model: each lost segment costs about 2 × RTT
/// (noticed by duplicate ACKs or a short RTO about one RTT later, then one
/// more RTT for the retransmission), nothing else changes. Echo: a key whose
/// segment or echo is lost (probability 1 − (1 − p)², either way) takes the
/// lossless median plus 2 × RTT; p99 and max show that cost once losses hit
/// more than 1 % of keys (p99) or at least one key in the run (max). The
/// `cat`: the lossless time plus p × (10 MB / 1448-byte segments) × 2 × RTT.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpModel {
    /// Echo p50, ms.
    pub p50: f64,
    /// Echo p99, ms.
    pub p99: f64,
    /// Echo max, ms.
    pub max: f64,
    /// `cat` seconds (`None` when the lossless `cat` did not finish byte-exact).
    pub cat_seconds: Option<f64>,
}

/// [`TcpModel`] for loss `p`, from the lossless run `base`.
pub fn tcp_model(base: &LossyRun, p: f64) -> TcpModel {
    let rtt_ms = 2.0 * ms(ONE_WAY);
    let penalty = 2.0 * rtt_ms;
    let hit = 1.0 - (1.0 - p).powi(2);
    let p50 = base.echo.p50;
    TcpModel {
        p50,
        p99: if hit > 0.01 {
            p50 + penalty
        } else {
            base.echo.p99
        },
        max: if hit * ECHO_KEYS as f64 >= 1.0 {
            base.echo.max.max(p50 + penalty)
        } else {
            base.echo.max
        },
        // Only a byte-exact lossless cat is a base for TCP, which never skips.
        cat_seconds: base.cat.seconds.filter(|_| base.cat.byte_exact).map(|s| {
            let segments = (CAT_BYTES as f64 / TCP_MSS).ceil();
            s + p * segments * penalty / 1000.0
        }),
    }
}

/// The file the `cat` prints: the generator's framed pattern, written once.
pub struct CatFile {
    path: std::path::PathBuf,
    written: Written,
}

impl CatFile {
    /// Runs the generator into a scratch file.
    pub fn create(rig: &Rig) -> Result<CatFile> {
        let path = rig.scratch_file("lossy-cat.txt");
        let sum = rig.scratch_file("lossy-cat.sum");
        let out = std::fs::File::create(&path).context("creating the cat file")?;
        let bytes = CAT_BYTES.to_string();
        let sum_arg = sum.to_string_lossy().into_owned();
        let mut child = std::process::Command::new(&rig.bench_exe)
            .args(["gen", &bytes, "0", &sum_arg, Kind::Letters.as_str()])
            .stdin(Stdio::piped())
            .stdout(out)
            .spawn()
            .context("running the generator")?;
        // The start byte, then end of input: the generator writes and exits.
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(b"g")?;
        }
        let st = child.wait()?;
        if !st.success() {
            bail!("the generator failed ({st})");
        }
        let written = wait_written(&sum)?;
        Ok(CatFile { path, written })
    }
}

/// [`LOSS_RATES`], or the percentages in `MUXLINK_BENCH_LOSS` (e.g. `0,3`),
/// for a run of one rate while working on it.
fn loss_rates() -> Vec<f64> {
    let given: Vec<f64> = std::env::var("MUXLINK_BENCH_LOSS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.trim().parse::<f64>().ok())
        .map(|p| p / 100.0)
        .collect();
    if given.is_empty() {
        LOSS_RATES.to_vec()
    } else {
        given
    }
}

/// Every loss rate in turn, each on a fresh connection through `mb`.
pub async fn measure(rig: &mut Rig, mb: &Middlebox, file: &CatFile) -> Result<Vec<LossyRun>> {
    let sig = relay_signaling(rig, &mb.url()).await?;
    let mut runs = Vec::new();
    for loss in loss_rates() {
        crate::step(&format!(
            "Lossy path: {} ms each way, {:.0} % loss each way: {ECHO_KEYS} echoes, then a {} MB cat",
            ONE_WAY.as_millis(),
            loss * 100.0,
            CAT_BYTES / 1_000_000
        ));
        mb.clear();
        mb.set_faults(ONE_WAY, 0.0);
        let mut run = LossyRun {
            loss,
            ..Default::default()
        };
        if let Err(e) = one_rate(rig, mb, &sig, file, loss, &mut run).await {
            println!("    stopped: {e:#}");
            run.error = Some(format!("{e:#}"));
        }
        (run.forwarded, run.dropped) = mb.stats();
        runs.push(run);
    }
    mb.clear();
    sig.close().await;
    Ok(runs)
}

/// The phone's signaling through the middlebox's relay.
async fn relay_signaling(rig: &mut Rig, url: &str) -> Result<std::sync::Arc<Signaling>> {
    // One socket per device: the direct one closes first.
    if let Some(sig) = rig.signaling.take() {
        sig.close().await;
    }
    let cfg = rig.phone.config();
    let mut opts = SignalingOptions::new(url);
    opts.api_version = cfg.api_version.clone();
    opts.hmac_secret = cfg.hmac_secret.clone();
    opts.name = cfg.name.clone();
    let sig = Signaling::connect(rig.phone.identity(), &opts)
        .await
        .context("phone signaling through the relay")?;
    Ok(std::sync::Arc::new(sig))
}

async fn one_rate(
    rig: &mut Rig,
    mb: &Middlebox,
    sig: &std::sync::Arc<Signaling>,
    file: &CatFile,
    loss: f64,
    run: &mut LossyRun,
) -> Result<()> {
    let record = rig.phone.pairing()?.context("the phone lost its pairing")?;
    let t = Instant::now();
    let conn = std::sync::Arc::new(
        PhoneConnection::connect(
            std::sync::Arc::clone(sig),
            &record.host_device_id,
            &record.secret,
            &rig.phone.config().rtc,
        )
        .await
        .context("connecting through the middlebox")?,
    );
    // The agent closes a peer that has not pinged for 60 s; phones ping
    // (the first one here also shows the channel works before the faults).
    let _keepalive = Keepalive::start(&conn);
    println!("    connected in {:.0} ms (lossless)", ms(t.elapsed()));
    conn.ping().await.context("first ping")?;
    let result = async {
        let pane = rig.pane(RAW_ECHO)?;
        conn.attach(&pane, COLS, ROWS, false, true).await?;
        mb.set_faults(ONE_WAY, loss);
        run.echo = echo(&conn).await?;
        println!(
            "    echo p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} keys{})",
            run.echo.p50,
            run.echo.p99,
            run.echo.max,
            run.echo.samples,
            if run.echo.timeout { ", timeout" } else { "" }
        );
        // The echo pane goes once the cat's pane is attached (no pane_closed in between).
        let timed = cat(rig, &conn, file).await;
        rig.kill_pane(&pane);
        run.cat = timed?;
        match (run.cat.seconds, &run.cat.failed) {
            (Some(s), _) => println!(
                "    cat {s:.1} s, byte-exact {} ({} bytes skipped, {} snapshots)",
                run.cat.byte_exact, run.cat.bytes_skipped, run.cat.snapshots
            ),
            (None, Some(why)) => println!(
                "    cat stopped: {why} ({:.1} MB arrived)",
                run.cat.received as f64 / 1e6
            ),
            (None, None) => println!(
                "    cat timeout after {} s ({:.1} MB arrived)",
                CAT_LIMIT.as_secs(),
                run.cat.received as f64 / 1e6
            ),
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if result.is_err() || run.cat.failed.is_some() {
        // The agent's side of it: its last lines about peers and channels
        // (collected until none came for a moment).
        if let Some(agent) = rig.agent.as_mut() {
            let _ = blocking(|| agent.wait_line(Duration::from_millis(300), |_, _| false));
            let lines: Vec<&str> = agent
                .seen
                .iter()
                .map(|(_, l)| l.as_str())
                .filter(|l| l.contains("peer") || l.contains("channel") || l.contains("ICE"))
                .collect();
            for l in lines.iter().rev().take(8).rev() {
                println!("    agent: {l}");
            }
        }
    }
    conn.close().await;
    result
}

/// [`ECHO_KEYS`] single bytes into the attached raw-echo pane, within [`ECHO_LIMIT`].
async fn echo(conn: &PhoneConnection) -> Result<EchoStats> {
    let deadline = Instant::now() + ECHO_LIMIT;
    let mut rtts = Vec::with_capacity(ECHO_KEYS);
    let mut timeout = false;
    'keys: for i in 0..WARM_UP + ECHO_KEYS {
        let key = b'a' + (i % 26) as u8;
        let started = Instant::now();
        // Waiting beside the send: `input` returns only after the reliable
        // original, 3 ms behind the fast copy whose echo may come first.
        let typed = [key];
        let (sent, echoed) =
            tokio::join!(conn.input(&typed), wait_echo(conn, key, started, deadline));
        sent.context("sending input")?;
        match echoed.with_context(|| format!("waiting for the echo of key {i}"))? {
            Some(rtt) if i >= WARM_UP => rtts.push(ms(rtt)),
            Some(_) => {}
            None => {
                timeout = true;
                break 'keys;
            }
        }
    }
    Ok(EchoStats {
        p50: percentile(&rtts, 0.50),
        p99: percentile(&rtts, 0.99),
        max: percentile(&rtts, 1.0),
        samples: rtts.len(),
        timeout,
    })
}

/// The echo of `key`: its round trip from `started`, or `None` at `deadline`.
async fn wait_echo(
    conn: &PhoneConnection,
    key: u8,
    started: Instant,
    deadline: Instant,
) -> Result<Option<Duration>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match next_output(conn, left.min(EVENT_WAIT)).await {
            Ok(data) if data.contains(&key) => return Ok(Some(started.elapsed())),
            Ok(_) => {}
            Err(e) if conn.is_closed() => return Err(e),
            // No echo yet (a retransmission may be minutes away): wait on until the limit.
            Err(_) => {}
        }
    }
}

/// `cat` of the file in a fresh pane, timed from the start key to the end
/// marker, within [`CAT_LIMIT`].
async fn cat(rig: &mut Rig, conn: &PhoneConnection, file: &CatFile) -> Result<CatStats> {
    // Raw mode: the bytes reach tmux untranslated. One byte starts the cat;
    // the pane then stays open until the bench kills it, answering each
    // input byte with the end marker: the file's own may have been skipped
    // with the bytes around it (stream v2 §6), and the phone asks again.
    let cmd = format!(
        "stty raw -echo; head -c1 >/dev/null; cat '{}'; \
         while [ -n \"$(dd bs=1 count=1 2>/dev/null)\" ]; do printf '\\003'; done",
        file.path.display()
    );
    let pane = rig.pane(&cmd)?;
    let result = timed_cat(conn, &pane, &file.written).await;
    rig.kill_pane(&pane);
    result
}

async fn timed_cat(conn: &PhoneConnection, pane: &str, w: &Written) -> Result<CatStats> {
    conn.attach(pane, COLS, ROWS, false, true).await?;
    let before = conn.stream_stats();
    let started = Instant::now();
    conn.input(b"g").await?;
    let deadline = started + CAT_LIMIT;
    let mut framed = Framed::new(Kind::Letters);
    let mut finished = None;
    let mut failed = None;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let data = match next_output(conn, left.min(ASK_END_AFTER)).await {
            Ok(d) => d,
            Err(_) if conn.is_closed() => {
                failed = Some(format!(
                    "connection closed after {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                break;
            }
            Err(_) => {
                // Quiet: perhaps the end marker was skipped; ask for another.
                conn.input(b"e")
                    .await
                    .context("asking for the end marker")?;
                continue;
            }
        };
        if framed.feed(&data) == Phase::Done {
            finished = Some(started.elapsed());
            break;
        }
    }
    let c = &framed.checker;
    let after = conn.stream_stats();
    Ok(CatStats {
        bytes_skipped: after.bytes_skipped.saturating_sub(before.bytes_skipped),
        snapshots: after.snapshots.saturating_sub(before.snapshots),
        seconds: finished.map(|d| d.as_secs_f64()),
        byte_exact: finished.is_some()
            && !c.diverged
            && c.received == w.bytes
            && c.matched == w.bytes
            && c.hash.value() == w.hash,
        received: c.matched,
        failed,
    })
}

/// The `lossy` object of report.json.
pub fn json(runs: &[LossyRun]) -> serde_json::Value {
    let Some(base) = runs.iter().find(|r| r.loss == 0.0) else {
        return serde_json::Value::Null;
    };
    let r3 = |x: f64| round(x, 3);
    let list: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let tcp = tcp_model(base, r.loss);
            json!({
                "loss_percent": r.loss * 100.0,
                "echo_ms": {
                    "p50": r3(r.echo.p50),
                    "p99": r3(r.echo.p99),
                    "max": r3(r.echo.max),
                    "samples": r.echo.samples,
                    "timeout": r.echo.timeout,
                },
                "cat": {
                    "seconds": r.cat.seconds.map(r3),
                    "timeout": r.cat.seconds.is_none() && r.cat.failed.is_none(),
                    "failed": r.cat.failed,
                    "byte_exact": r.cat.byte_exact,
                    "received_bytes": r.cat.received,
                    "bytes_skipped": r.cat.bytes_skipped,
                    "snapshots": r.cat.snapshots,
                },
                "tcp_model": {
                    "echo_p50_ms": r3(tcp.p50),
                    "echo_p99_ms": r3(tcp.p99),
                    "echo_max_ms": r3(tcp.max),
                    "cat_seconds": tcp.cat_seconds.map(r3),
                },
                "datagrams": { "forwarded": r.forwarded, "dropped": r.dropped },
                "error": r.error,
            })
        })
        .collect();
    json!({
        "one_way_delay_ms": ms(ONE_WAY),
        "echo_keys": ECHO_KEYS,
        "cat_bytes": CAT_BYTES,
        "cat_limit_s": CAT_LIMIT.as_secs(),
        "tcp_model": "each lost segment costs 2 x RTT; echo and cat otherwise as at 0 % loss",
        "runs": list,
    })
}

/// Two table rows per loss rate: echo and `cat`, each beside the TCP model.
pub fn rows(runs: &[LossyRun]) -> Vec<Row> {
    let Some(base) = runs.iter().find(|r| r.loss == 0.0) else {
        return Vec::new();
    };
    let secs = |s: Option<f64>| match s {
        Some(s) => format!("{s:.1} s"),
        None => format!("timeout ({} s)", CAT_LIMIT.as_secs()),
    };
    let model = |s: Option<f64>| match s {
        Some(s) => format!("{s:.1} s"),
        None => "(no byte-exact lossless cat)".to_owned(),
    };
    let cat = |c: &CatStats| match (&c.failed, c.seconds) {
        (Some(why), None) => format!("{why}, {:.1} MB in", c.received as f64 / 1e6),
        _ => secs(c.seconds),
    };
    let mut out = Vec::new();
    for r in runs {
        let tcp = tcp_model(base, r.loss);
        let name = format!(
            "lossy {:.0} % each way, {} ms: ",
            r.loss * 100.0,
            ONE_WAY.as_millis()
        );
        let timeout = if r.echo.timeout { ", timeout" } else { "" };
        out.push((
            format!(
                "{name}echo p50 / p99 / max ({} keys{timeout})",
                r.echo.samples
            ),
            format!(
                "{:.0} / {:.0} / {:.0} ms",
                r.echo.p50, r.echo.p99, r.echo.max
            ),
            format!(
                "TCP model {:.0} / {:.0} / {:.0} ms",
                tcp.p50, tcp.p99, tcp.max
            ),
            "",
        ));
        out.push((
            format!(
                "{name}{} MB cat, byte-exact {} ({:.1} MB skipped, {} snapshots)",
                CAT_BYTES / 1_000_000,
                r.cat.byte_exact,
                r.cat.bytes_skipped as f64 / 1e6,
                r.cat.snapshots
            ),
            cat(&r.cat),
            format!("TCP model {}", model(tcp.cat_seconds)),
            "",
        ));
    }
    out
}

/// Blocking wrapper so `main` can create the file off the runtime.
pub fn create_file(rig: &Rig) -> Result<CatFile> {
    blocking(|| CatFile::create(rig))
}
