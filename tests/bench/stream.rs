//! Bulk output: the generator's bytes through the agent to the phone, the
//! same bytes through tmux's own `pipe-pane` read directly (no agent), and a
//! phone that reads slower than the pane writes.
//!
//! Under the lag rule (docs/stream-v2.md §6) the agent reads the pane at
//! full speed and a phone more than 1 MiB behind gets a snapshot instead of
//! the bytes it missed, so a run through the agent is measured by what was
//! delivered: [`Transfer::mbps`] counts the bytes the phone received until
//! the generator's end marker arrived, and [`Delivered`] checks them (exact
//! when nothing was skipped; otherwise every byte the pattern at its offset,
//! missing bytes only at snapshots).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mobile_client::{PhoneConnection, StreamStats};

use crate::echo::{EVENT_WAIT, next_piece};
use crate::generator::{Written, pane_command};
use crate::measure::{MEM_MB, PeakRss, RATE_MB, clock_ticks, cpu_ticks, rss_bytes};
use crate::pattern::{Kind, Phase};
use crate::rig::{COLS, ROWS, Rig, blocking};
use crate::screen::{self, ScreenCheck};
use crate::verify::Delivered;

/// Longest any one bulk transfer may take before the bench gives up.
const TRANSFER_LIMIT: Duration = Duration::from_secs(300);
/// How long a read waits before looking at the generator's state.
const QUIET: Duration = Duration::from_millis(100);
/// After the generator ended, how long the phone waits for the end marker
/// before asking for it again, and then between asks.
const POKE_EVERY: Duration = Duration::from_millis(200);

/// After the end marker, how long with no output ends the slow phone's read
/// (the agent's settle delay is 50 ms after the pane's last byte).
const SETTLE_WAIT: Duration = Duration::from_millis(500);
/// The longest the slow phone reads on after the end marker.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// One bulk transfer's outcome.
#[derive(Debug)]
pub struct Transfer {
    /// Trigger sent → end marker received.
    pub elapsed: Duration,
    /// The received content, checked against the pattern.
    pub delivered: Delivered,
    /// What the generator says it wrote.
    pub written: Written,
    /// CPU seconds each process spent during the transfer.
    pub cpu: Vec<(&'static str, f64)>,
    /// Output events (messages) or pipe reads that carried the bytes.
    pub pieces: u64,
    /// The phone library's stream v2 counters over the run (bytes skipped
    /// by the protocol's offsets; zero for the native path).
    pub stream: StreamStats,
    /// Times the phone asked the generator for the end marker again.
    pub pokes: u64,
    /// Time between consecutive stream outputs with no snapshot between
    /// them: the time the phone was actually being streamed to.
    pub streaming: Duration,
    /// The longest time from a stream output to the snapshot after it
    /// (the phone's wait for a catch-up screen).
    pub longest_gap: Duration,
}

/// CPU time of a few processes over an interval.
struct CpuWatch {
    ticks: f64,
    start: Vec<(&'static str, u32, u64)>,
}

impl CpuWatch {
    fn start(procs: &[(&'static str, u32)]) -> Self {
        CpuWatch {
            ticks: clock_ticks(),
            start: procs
                .iter()
                .map(|&(n, pid)| (n, pid, cpu_ticks(pid).unwrap_or(0)))
                .collect(),
        }
    }

    fn finish(&self) -> Vec<(&'static str, f64)> {
        self.start
            .iter()
            .map(|&(n, pid, t0)| {
                let t1 = cpu_ticks(pid).unwrap_or(t0);
                (n, t1.saturating_sub(t0) as f64 / self.ticks)
            })
            .collect()
    }
}

impl Transfer {
    /// "agent 1.2 s, tmux 0.8 s, ..." for the log.
    pub fn cpu_text(&self) -> String {
        let mut parts: Vec<String> = self
            .cpu
            .iter()
            .map(|(n, s)| format!("{n} {s:.2} s"))
            .collect();
        if self.pieces > 0 {
            parts.push(format!(
                "{} pieces of {:.1} KB on average",
                self.pieces,
                self.delivered.received as f64 / self.pieces as f64 / 1000.0
            ));
        }
        parts.join(", ")
    }

    /// The delivered rate, MB/s: pattern bytes the phone (or the pipe
    /// reader) actually received, over the time from the start signal until
    /// the end marker arrived. Skipped bytes do not count; without skips it
    /// is the plain throughput. This is the figure compared with tmux.
    pub fn mbps(&self) -> f64 {
        self.delivered.received as f64 / RATE_MB / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// MB/s while streaming: received bytes over [`Transfer::streaming`],
    /// the send path's own pace without the waits for catch-up snapshots
    /// (equal to [`Transfer::mbps`], give or take, when nothing was skipped).
    pub fn streaming_mbps(&self) -> f64 {
        self.delivered.received as f64 / RATE_MB / self.streaming.as_secs_f64().max(1e-9)
    }

    /// The pane's rate, MB/s: everything the generator wrote over the same
    /// time (how fast a `cat` finishes for the user, skipped bytes included).
    pub fn pane_mbps(&self) -> f64 {
        self.written.bytes as f64 / RATE_MB / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Nothing skipped, and length, order and checksum equal the generator's.
    pub fn byte_exact(&self) -> bool {
        self.delivered.byte_exact(&self.written)
    }

    /// Every byte the phone got is the pattern at its offset, none twice,
    /// bytes missing only at snapshots, and the pattern bytes the protocol
    /// says it skipped agree with the gaps found (it may count the end
    /// marker and the repeated ones too). Without skips: [`Transfer::byte_exact`].
    pub fn verified(&self) -> bool {
        let d = &self.delivered;
        let protocol = self.stream.bytes_skipped;
        d.intact(&self.written) && protocol >= d.skipped && protocol <= d.skipped + 1 + self.pokes
    }

    /// Pattern bytes skipped (from the gaps in what arrived).
    pub fn skipped(&self) -> u64 {
        self.delivered.skipped
    }

    /// Snapshots that replaced skipped bytes (between the markers).
    pub fn snapshots(&self) -> u64 {
        self.delivered.gaps
    }

    /// "byte-exact" or "12.3 MB skipped at 4 snapshots, the rest verified".
    pub fn check_text(&self) -> String {
        if self.byte_exact() {
            return "byte-exact".into();
        }
        let d = &self.delivered;
        if d.gaps == 0 {
            return format!(
                "NOT byte-exact ({} of {} bytes matched)",
                d.matched, self.written.bytes
            );
        }
        let wait = if self.longest_gap.is_zero() {
            String::new()
        } else {
            format!(
                ", longest wait for one {:.2} s",
                self.longest_gap.as_secs_f64()
            )
        };
        format!(
            "{:.1} MB skipped at {} snapshots{wait} (protocol: {:.1} MB), the rest {}",
            d.skipped as f64 / 1e6,
            d.gaps,
            self.stream.bytes_skipped as f64 / 1e6,
            if self.verified() {
                "verified at its offsets"
            } else {
                "NOT the pattern at its offsets"
            }
        )
    }
}

/// The difference of two counter snapshots (`after` − `before`).
fn stats_since(before: StreamStats, after: StreamStats) -> StreamStats {
    StreamStats {
        bytes_skipped: after.bytes_skipped.saturating_sub(before.bytes_skipped),
        snapshots: after.snapshots.saturating_sub(before.snapshots),
        duplicates_dropped: after
            .duplicates_dropped
            .saturating_sub(before.duplicates_dropped),
        fast_applied: after.fast_applied.saturating_sub(before.fast_applied),
        fast_dropped: after.fast_dropped.saturating_sub(before.fast_dropped),
        fast_inputs_sent: after
            .fast_inputs_sent
            .saturating_sub(before.fast_inputs_sent),
    }
}

/// Watches for the generator's end (its sum file) and then asks it for the
/// end marker again until the phone has it: the first one may have been
/// skipped with the bytes around it (the generator answers each input byte
/// with one).
struct EndWatch {
    sum: PathBuf,
    ended: Option<Instant>,
    checked: Instant,
    poked: Option<Instant>,
    pokes: u64,
}

impl EndWatch {
    fn new(sum: &Path) -> Self {
        EndWatch {
            sum: sum.to_path_buf(),
            ended: None,
            checked: Instant::now(),
            poked: None,
            pokes: 0,
        }
    }

    /// Whether the generator has finished (its file is looked for at most
    /// every [`QUIET`]).
    fn ended(&mut self) -> bool {
        if self.ended.is_none() && self.checked.elapsed() >= QUIET {
            self.checked = Instant::now();
            if self.sum.exists() {
                self.ended = Some(Instant::now());
            }
        }
        self.ended.is_some()
    }

    /// Asks for the end marker when one is due.
    async fn poke(&mut self, conn: &PhoneConnection) -> Result<()> {
        if !self.ended() {
            return Ok(());
        }
        let Some(ended) = self.ended else {
            return Ok(());
        };
        let due = self.poked.unwrap_or(ended) + POKE_EVERY;
        if Instant::now() >= due {
            conn.input(b"e")
                .await
                .context("asking for the end marker")?;
            self.poked = Some(Instant::now());
            self.pokes += 1;
        }
        Ok(())
    }
}

/// `detach`, reading (and dropping) output meanwhile: the phone's event
/// queue may be full, and the `detached` answer queues behind it.
pub async fn detach_draining(conn: &PhoneConnection) -> Result<()> {
    let drain = async { while conn.next_event().await.is_some() {} };
    tokio::select! {
        r = conn.detach() => r.context("detaching"),
        _ = drain => bail!("the connection closed while detaching"),
    }
}

/// The next output (bytes, snapshot flag), or `None` when none came within [`QUIET`].
async fn next_or_quiet(conn: &PhoneConnection) -> Result<Option<(Vec<u8>, bool)>> {
    match tokio::time::timeout(QUIET, next_piece(conn, EVENT_WAIT)).await {
        Ok(piece) => piece.map(Some),
        Err(_) => Ok(None),
    }
}

/// Waits (bounded) for the generator's sum file.
pub fn wait_written(path: &Path) -> Result<Written> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(w) = Written::read(path) {
            return Ok(w);
        }
        if Instant::now() >= deadline {
            bail!("the generator never wrote {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `bytes` of pattern through `pipe-pane -O` into this process, reading
/// tmux's pipe socket as the agent does (handed over by `muxlink __pane-pipe`).
pub fn native(rig: &mut Rig, bytes: u64, kind: Kind) -> Result<Transfer> {
    let sum = rig.scratch_file("native.sum");
    let _ = std::fs::remove_file(&sum);
    // tmux's pipe socket itself, handed over by `muxlink __pane-pipe` as
    // the agent gets it: no `cat` between tmux and the reader.
    let socket = rig.scratch_file("native.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).context("pipe socket")?;
    let cmd = pane_command(&rig.bench_exe, bytes, 0, &sum.to_string_lossy(), kind);
    let pane = rig.pane(&cmd)?;

    let (opened_tx, opened_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || -> Result<(Delivered, Instant, u64)> {
        // Waits for the helper that pipe-pane starts.
        let (conn, _) = listener.accept()?;
        let mut f = std::fs::File::from(tmux_bridge::receive_pane_pipe(&conn)?);
        let _ = opened_tx.send(());
        let mut framed = Delivered::new(kind, false);
        let mut buf = vec![0u8; 256 * 1024];
        let mut reads = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                bail!("the pipe closed before the end marker");
            }
            reads += 1;
            if framed.feed(&buf[..n], false) == Phase::Done {
                return Ok((framed, Instant::now(), reads));
            }
        }
    });

    let pipe = format!(
        "exec '{}' {} '{}'",
        rig.muxlink,
        agent_bin::PANE_PIPE_WORD,
        socket.display()
    );
    let procs = [
        ("tmux", rig.tmux_pid()?),
        ("bench reader", std::process::id()),
    ];
    let mut watch = None;
    let result = (|| {
        rig.tmux.run(&["pipe-pane", "-O", "-t", &pane, &pipe])?;
        opened_rx
            .recv_timeout(Duration::from_secs(10))
            .context("pipe-pane's helper never handed the pipe over")?;
        watch = Some(CpuWatch::start(&procs));
        let started = Instant::now();
        rig.tmux.run(&["send-keys", "-t", &pane, "-l", "g"])?;
        Ok::<_, anyhow::Error>(started)
    })();
    let started = match result {
        Ok(s) => s,
        Err(e) => {
            // Release a reader still waiting in accept(), then give up.
            let _ = std::os::unix::net::UnixStream::connect(&socket);
            let _ = reader.join();
            rig.kill_pane(&pane);
            return Err(e);
        }
    };
    // The reader ends at the end marker or when the pipe closes (pane gone).
    let (mut delivered, done, pieces) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("pipe reader panicked"))??;
    let cpu = watch.map(|w| w.finish()).unwrap_or_default();
    let written = wait_written(&sum)?;
    delivered.finish(&written);
    let _ = rig.tmux.run(&["pipe-pane", "-t", &pane]);
    rig.kill_pane(&pane);
    let _ = std::fs::remove_file(&socket);
    Ok(Transfer {
        elapsed: done - started,
        delivered,
        written,
        cpu,
        pieces,
        stream: StreamStats::default(),
        pokes: 0,
        streaming: done - started,
        longest_gap: Duration::ZERO,
    })
}

/// `bytes` of pattern from a pane through the agent to the phone, with or
/// without deflate (the phone app attaches with it), read as fast as the
/// phone can.
pub async fn through_agent(
    rig: &mut Rig,
    conn: &PhoneConnection,
    bytes: u64,
    kind: Kind,
    deflate: bool,
) -> Result<Transfer> {
    let sum = rig.scratch_file("muxlink.sum");
    let _ = std::fs::remove_file(&sum);
    let cmd = pane_command(&rig.bench_exe, bytes, 0, &sum.to_string_lossy(), kind);
    let pane = rig.pane(&cmd)?;
    conn.attach(&pane, COLS, ROWS, false, deflate).await?;
    let watch = CpuWatch::start(&[
        ("agent", rig.agent_pid()?),
        ("tmux", rig.tmux_pid()?),
        ("bench phone", std::process::id()),
    ]);
    let before = conn.stream_stats();
    let started = Instant::now();
    conn.input(b"g").await?;
    let mut delivered = Delivered::new(kind, false);
    let mut end = EndWatch::new(&sum);
    let deadline = started + TRANSFER_LIMIT;
    let mut last_output = started;
    let mut pieces = 0u64;
    let mut streaming = Duration::ZERO;
    let mut longest_gap = Duration::ZERO;
    let mut last_stream: Option<Instant> = None;
    while delivered.phase != Phase::Done {
        if Instant::now() >= deadline {
            bail!("bulk transfer took longer than {TRANSFER_LIMIT:?}");
        }
        match next_or_quiet(conn).await? {
            Some((data, snapshot)) => {
                let now = Instant::now();
                last_output = now;
                if delivered.phase == Phase::Inside {
                    if snapshot {
                        if let Some(t) = last_stream.take() {
                            longest_gap = longest_gap.max(now - t);
                        }
                    } else {
                        pieces += 1;
                        streaming += last_stream.map_or(Duration::ZERO, |t| now - t);
                        last_stream = Some(now);
                    }
                }
                delivered.feed(&data, snapshot);
            }
            None if !end.ended() && last_output.elapsed() >= EVENT_WAIT => {
                bail!("no output from the pane for {EVENT_WAIT:?}");
            }
            None => {}
        }
        end.poke(conn).await?;
    }
    let elapsed = started.elapsed();
    let cpu = watch.finish();
    let stream = stats_since(before, conn.stream_stats());
    let written = blocking(|| wait_written(&sum))?;
    delivered.finish(&written);
    detach_draining(conn).await?;
    rig.kill_pane(&pane);
    Ok(Transfer {
        elapsed,
        delivered,
        written,
        cpu,
        pieces,
        stream,
        pokes: end.pokes,
        streaming,
        longest_gap,
    })
}

/// What the slow-consumer run saw.
#[derive(Debug)]
pub struct Slow {
    /// Agent peak RSS minus before, bytes.
    pub agent_growth: u64,
    /// tmux server peak RSS minus before, bytes (tmux buffers what pipe-pane cannot deliver).
    pub tmux_growth: u64,
    /// The transfer (its `delivered` has the skips and the last screen).
    pub transfer: Transfer,
    /// The phone's last screen against the pane's (`capture-pane -p`).
    pub screen: ScreenCheck,
    /// When the paced phase ended and the phone started reading at full speed.
    pub paced_for: Duration,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

/// The phone reads at `rate` bytes/s (every output byte, snapshots
/// included) while the pane floods for `flood`, then at full speed until
/// the end marker; memory is sampled throughout. Then the phone's last
/// screen is compared with the pane's.
pub async fn slow_consumer(
    rig: &mut Rig,
    conn: &PhoneConnection,
    flood: Duration,
    rate: f64,
) -> Result<Slow> {
    let sum = rig.scratch_file("slow.sum");
    let _ = std::fs::remove_file(&sum);
    let cmd = pane_command(
        &rig.bench_exe,
        0,
        flood.as_secs(),
        &sum.to_string_lossy(),
        Kind::Letters,
    );
    let pane = rig.pane(&cmd)?;
    conn.attach(&pane, COLS, ROWS, false, true).await?;
    let agent = rig.agent_pid()?;
    let tmux = rig.tmux_pid()?;
    let agent_before = rss_bytes(agent)?;
    let tmux_before = rss_bytes(tmux)?;
    let peaks = PeakRss::start(vec![agent, tmux]);

    let before = conn.stream_stats();
    let started = Instant::now();
    conn.input(b"g").await?;
    let mut delivered = Delivered::new(Kind::Letters, true);
    let mut end = EndWatch::new(&sum);
    let mut paced_for = None;
    let mut read = 0u64;
    let deadline = started + flood + TRANSFER_LIMIT;
    let result = async {
        while delivered.phase != Phase::Done {
            if Instant::now() >= deadline {
                bail!(
                    "slow-consumer run took longer than {:?}",
                    flood + TRANSFER_LIMIT
                );
            }
            if let Some((data, snapshot)) = next_or_quiet(conn).await? {
                read += data.len() as u64;
                delivered.feed(&data, snapshot);
            }
            end.poke(conn).await?;
            if end.ended() {
                paced_for.get_or_insert_with(|| started.elapsed());
                continue;
            }
            let due = Duration::from_secs_f64(read as f64 / rate);
            let now = started.elapsed();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        Ok(())
    }
    .await;
    let elapsed = started.elapsed();
    let result = match result {
        Ok(()) => settle_tail(conn, &mut delivered).await,
        e => e,
    };
    let peak = peaks.finish();
    let stream = stats_since(before, conn.stream_stats());
    // A broken run still reports what arrived rather than assuming it.
    let error = result.err().map(|e| format!("{e:#}"));
    let written = match (blocking(|| wait_written(&sum)), &error) {
        (Ok(w), _) => w,
        (Err(e), None) => return Err(e),
        // The generator may still be flooding: the run's own error says why.
        (Err(e), Some(run)) => bail!("{run}; and then: {e:#}"),
    };
    delivered.finish(&written);
    let screen = match (&error, delivered.screen.as_ref()) {
        (None, Some(last)) => {
            blocking(|| screen::compare(rig, &pane, last)).unwrap_or_else(|e| ScreenCheck {
                same: None,
                detail: format!("{e:#}"),
            })
        }
        _ => ScreenCheck {
            same: None,
            detail: "the run stopped early".into(),
        },
    };
    // Also after an error: the phone must not stop reading while attached.
    let detached = detach_draining(conn).await;
    rig.kill_pane(&pane);
    if error.is_none() {
        detached?;
    }
    Ok(Slow {
        agent_growth: peak[0].saturating_sub(agent_before),
        tmux_growth: peak[1].saturating_sub(tmux_before),
        transfer: Transfer {
            elapsed,
            delivered,
            written,
            cpu: Vec::new(),
            pieces: 0,
            stream,
            pokes: end.pokes,
            streaming: elapsed,
            longest_gap: Duration::ZERO,
        },
        screen,
        paced_for: paced_for.unwrap_or(elapsed),
        error,
    })
}

/// After the end marker: a screen the agent captured while the pane flooded
/// may be off by the bytes in flight, and the agent sends it again once the
/// pane is quiet (agent-bin's handler/settle.rs). Reads until nothing came
/// for [`SETTLE_WAIT`], at most [`SETTLE_LIMIT`].
async fn settle_tail(conn: &PhoneConnection, delivered: &mut Delivered) -> Result<()> {
    let limit = Instant::now() + SETTLE_LIMIT;
    let mut last = Instant::now();
    while last.elapsed() < SETTLE_WAIT {
        if Instant::now() >= limit {
            bail!("output went on for {SETTLE_LIMIT:?} after the end marker");
        }
        if let Some((data, snapshot)) = next_or_quiet(conn).await? {
            delivered.feed(&data, snapshot);
            last = Instant::now();
        }
    }
    Ok(())
}

/// MiB of a byte count.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MEM_MB
}
