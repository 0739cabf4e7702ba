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
use crate::measure::{MEM_MB, PeakRss, RATE_MB, rss_bytes};
use crate::pattern::{Framed, Phase};
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
}

impl Transfer {
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
fn wait_written(path: &Path) -> Result<Written> {
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
pub fn native(rig: &mut Rig, bytes: u64) -> Result<Transfer> {
    let sum = rig.scratch_file("native.sum");
    let fifo = rig.scratch_file("native.fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .context("mkfifo")?;
    if !st.success() {
        bail!("mkfifo failed");
    }
    let cmd = pane_command(&rig.bench_exe, bytes, 0, &sum.to_string_lossy());
    let pane = rig.pane(&cmd)?;

    let (opened_tx, opened_rx) = mpsc::channel();
    let reader_fifo = fifo.clone();
    let reader = std::thread::spawn(move || -> Result<(Framed, Instant)> {
        // Opening a FIFO for reading waits for its writer (`cat`, started by pipe-pane).
        let mut f = std::fs::File::open(&reader_fifo)?;
        let _ = opened_tx.send(());
        let mut framed = Framed::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                bail!("the FIFO closed before the end marker");
            }
            if framed.feed(&buf[..n]) == Phase::Done {
                return Ok((framed, Instant::now()));
            }
        }
    });

    let pipe = format!("cat > '{}'", fifo.display());
    let result = (|| {
        rig.tmux.run(&["pipe-pane", "-O", "-t", &pane, &pipe])?;
        opened_rx
            .recv_timeout(Duration::from_secs(10))
            .context("pipe-pane never opened the FIFO")?;
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
    let (framed, done) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("FIFO reader panicked"))??;
    let written = wait_written(&sum)?;
    let _ = rig.tmux.run(&["pipe-pane", "-t", &pane]);
    rig.kill_pane(&pane);
    let _ = std::fs::remove_file(&fifo);
    Ok(Transfer {
        elapsed: done - started,
        framed,
        written,
    })
}

/// `bytes` of pattern from a pane through the agent to the phone (deflate on,
/// as the phone app attaches).
pub async fn through_agent(rig: &mut Rig, conn: &PhoneConnection, bytes: u64) -> Result<Transfer> {
    let sum = rig.scratch_file("muxlink.sum");
    let cmd = pane_command(&rig.bench_exe, bytes, 0, &sum.to_string_lossy());
    let pane = rig.pane(&cmd)?;
    conn.attach(&pane, COLS, ROWS, false, true).await?;
    let started = Instant::now();
    conn.input(b"g").await?;
    let mut framed = Framed::default();
    let deadline = started + TRANSFER_LIMIT;
    while framed.phase != Phase::Done {
        if Instant::now() >= deadline {
            bail!("bulk transfer took longer than {TRANSFER_LIMIT:?}");
        }
        let data = next_output(conn, EVENT_WAIT).await?;
        framed.feed(&data);
    }
    let elapsed = started.elapsed();
    let written = blocking(|| wait_written(&sum))?;
    conn.detach().await?;
    rig.kill_pane(&pane);
    Ok(Transfer {
        elapsed,
        framed,
        written,
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
    let cmd = pane_command(&rig.bench_exe, 0, flood.as_secs(), &sum.to_string_lossy());
    let pane = rig.pane(&cmd)?;
    conn.attach(&pane, COLS, ROWS, false, true).await?;
    let agent = rig.agent_pid()?;
    let tmux = rig.tmux_pid()?;
    let agent_before = rss_bytes(agent)?;
    let tmux_before = rss_bytes(tmux)?;
    let peaks = PeakRss::start(vec![agent, tmux]);

    let started = Instant::now();
    conn.input(b"g").await?;
    let mut framed = Framed::default();
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
        },
        paced_for,
        error,
    })
}

/// MiB of a byte count.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MEM_MB
}
