//! Bulk output: the generator's bytes through the agent to the phone, the
//! same bytes through tmux's own `pipe-pane` to a FIFO (no agent), and a
//! phone that reads slower than the pane writes.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mobile_client::PhoneConnection;

use crate::echo::{EVENT_WAIT, next_output};
use crate::generator::{Written, pane_command};
use crate::measure::{MEM_MB, PeakRss, RATE_MB, clock_ticks, cpu_ticks, rss_bytes};
use crate::pattern::{Framed, Kind, Phase};
use crate::rig::{COLS, ROWS, Rig, blocking};

/// Longest any one bulk transfer may take before the bench gives up.
const TRANSFER_LIMIT: Duration = Duration::from_secs(300);

/// One bulk transfer's outcome.
#[derive(Debug)]
pub struct Transfer {
    /// Trigger sent → end marker received.
    pub elapsed: Duration,
    /// The received content, checked against the pattern.
    pub framed: Framed,
    /// What the generator says it wrote.
    pub written: Written,
    /// CPU seconds each process spent during the transfer.
    pub cpu: Vec<(&'static str, f64)>,
    /// Output events (messages) or FIFO reads that carried the bytes.
    pub pieces: u64,
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
                self.framed.checker.received as f64 / self.pieces as f64 / 1000.0
            ));
        }
        parts.join(", ")
    }

    /// MB/s of pattern bytes.
    pub fn mbps(&self) -> f64 {
        self.framed.checker.received as f64 / RATE_MB / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Length, order and checksum all equal the generator's.
    pub fn byte_exact(&self) -> bool {
        let c = &self.framed.checker;
        self.framed.phase == Phase::Done
            && !c.diverged
            && c.received == self.written.bytes
            && c.matched == self.written.bytes
            && c.hash.value() == self.written.hash
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

/// `bytes` of pattern through `pipe-pane -O 'cat > FIFO'` into this process.
pub fn native(rig: &mut Rig, bytes: u64, kind: Kind) -> Result<Transfer> {
    let sum = rig.scratch_file("native.sum");
    let _ = std::fs::remove_file(&sum);
    let fifo = rig.scratch_file("native.fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .context("mkfifo")?;
    if !st.success() {
        bail!("mkfifo failed");
    }
    let cmd = pane_command(&rig.bench_exe, bytes, 0, &sum.to_string_lossy(), kind);
    let pane = rig.pane(&cmd)?;

    let (opened_tx, opened_rx) = mpsc::channel();
    let reader_fifo = fifo.clone();
    let reader = std::thread::spawn(move || -> Result<(Framed, Instant, u64)> {
        // Opening a FIFO for reading waits for its writer (`cat`, started by pipe-pane).
        let mut f = std::fs::File::open(&reader_fifo)?;
        let _ = opened_tx.send(());
        let mut framed = Framed::new(kind);
        let mut buf = vec![0u8; 256 * 1024];
        let mut reads = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                bail!("the FIFO closed before the end marker");
            }
            reads += 1;
            if framed.feed(&buf[..n]) == Phase::Done {
                return Ok((framed, Instant::now(), reads));
            }
        }
    });

    let pipe = format!("cat > '{}'", fifo.display());
    let procs = [
        ("tmux", rig.tmux_pid()?),
        ("bench reader", std::process::id()),
    ];
    let mut watch = None;
    let result = (|| {
        rig.tmux.run(&["pipe-pane", "-O", "-t", &pane, &pipe])?;
        opened_rx
            .recv_timeout(Duration::from_secs(10))
            .context("pipe-pane never opened the FIFO")?;
        watch = Some(CpuWatch::start(&procs));
        let started = Instant::now();
        rig.tmux.run(&["send-keys", "-t", &pane, "-l", "g"])?;
        Ok::<_, anyhow::Error>(started)
    })();
    let started = match result {
        Ok(s) => s,
        Err(e) => {
            // Release a reader still waiting in open(), then give up.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
            let _ = reader.join();
            rig.kill_pane(&pane);
            return Err(e);
        }
    };
    // The reader ends at the end marker or when the FIFO closes (pane gone).
    let (framed, done, pieces) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("FIFO reader panicked"))??;
    let cpu = watch.map(|w| w.finish()).unwrap_or_default();
    let written = wait_written(&sum)?;
    let _ = rig.tmux.run(&["pipe-pane", "-t", &pane]);
    rig.kill_pane(&pane);
    let _ = std::fs::remove_file(&fifo);
    Ok(Transfer {
        elapsed: done - started,
        framed,
        written,
        cpu,
        pieces,
    })
}

/// `bytes` of pattern from a pane through the agent to the phone, with or
/// without deflate (the phone app attaches with it).
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
    let started = Instant::now();
    conn.input(b"g").await?;
    let mut framed = Framed::new(kind);
    let deadline = started + TRANSFER_LIMIT;
    let mut pieces = 0u64;
    while framed.phase != Phase::Done {
        if Instant::now() >= deadline {
            bail!("bulk transfer took longer than {TRANSFER_LIMIT:?}");
        }
        let data = next_output(conn, EVENT_WAIT).await?;
        if framed.phase == Phase::Inside {
            pieces += 1;
        }
        framed.feed(&data);
    }
    let elapsed = started.elapsed();
    let cpu = watch.finish();
    let written = blocking(|| wait_written(&sum))?;
    conn.detach().await?;
    rig.kill_pane(&pane);
    Ok(Transfer {
        elapsed,
        framed,
        written,
        cpu,
        pieces,
    })
}

/// What the slow-consumer run saw.
#[derive(Debug)]
pub struct Slow {
    /// Agent peak RSS minus before, bytes.
    pub agent_growth: u64,
    /// tmux server peak RSS minus before, bytes (tmux buffers what pipe-pane cannot deliver).
    pub tmux_growth: u64,
    /// Generator bytes not received in order.
    pub lost: u64,
    /// The transfer.
    pub transfer: Transfer,
    /// When the paced phase ended and the phone started reading at full speed.
    pub paced_for: Duration,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

/// The phone reads at `rate` bytes/s while the pane floods for `flood`, then
/// drains at full speed; memory is sampled throughout.
pub async fn slow_consumer(
    rig: &mut Rig,
    conn: &PhoneConnection,
    flood: Duration,
    rate: f64,
) -> Result<Slow> {
    let sum = rig.scratch_file("slow.sum");
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

    let started = Instant::now();
    conn.input(b"g").await?;
    let mut framed = Framed::new(Kind::Letters);
    let mut paced = true;
    let mut paced_for = Duration::ZERO;
    let mut last_check = started;
    let deadline = started + flood + TRANSFER_LIMIT;
    let result = async {
        while framed.phase != Phase::Done {
            if Instant::now() >= deadline {
                bail!(
                    "slow-consumer run took longer than {:?}",
                    flood + TRANSFER_LIMIT
                );
            }
            let data = next_output(conn, EVENT_WAIT).await?;
            framed.feed(&data);
            if paced {
                // The flood is over once the generator wrote its sum file.
                if last_check.elapsed() >= Duration::from_millis(100) {
                    last_check = Instant::now();
                    if sum.exists() {
                        paced = false;
                        paced_for = started.elapsed();
                        continue;
                    }
                }
                let due = Duration::from_secs_f64(framed.checker.received as f64 / rate);
                let now = started.elapsed();
                if due > now {
                    tokio::time::sleep(due - now).await;
                }
            }
        }
        Ok(())
    }
    .await;
    let elapsed = started.elapsed();
    let peak = peaks.finish();
    // A broken run still counts its lost bytes rather than assuming them.
    let error = result.err().map(|e| format!("{e:#}"));
    let written = blocking(|| wait_written(&sum))?;
    if error.is_none() {
        conn.detach().await?;
    }
    rig.kill_pane(&pane);
    let lost = written.bytes.saturating_sub(framed.checker.matched);
    Ok(Slow {
        agent_growth: peak[0].saturating_sub(agent_before),
        tmux_growth: peak[1].saturating_sub(tmux_before),
        lost,
        transfer: Transfer {
            elapsed,
            framed,
            written,
            cpu: Vec::new(),
            pieces: 0,
        },
        paced_for,
        error,
    })
}

/// MiB of a byte count.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MEM_MB
}
