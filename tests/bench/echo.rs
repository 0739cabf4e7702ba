//! Keystroke round trips: one byte into a raw-echo pane, timed until the
//! phone receives it back, with the byte sent by the phone (the product's
//! path) or by one spawned `tmux send-keys` per key (the naive baseline).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mobile_client::{Event, PhoneConnection};

use crate::measure::ms;

/// The pane program the echo measurements type into.
pub const RAW_ECHO: &str = "stty raw -echo; exec cat";
/// Longest wait for one echo (or any one output event).
pub const EVENT_WAIT: Duration = Duration::from_secs(10);
/// Keys typed and thrown away before timing (settles the snapshot and caches).
const WARM_UP: usize = 20;
/// The next key is typed no sooner than this after the previous one (200 keys
/// a second, faster than anyone types). Each reliable original waits
/// `FAST_COPY_LEAD` (3 ms) behind its fast copy and the host holds at most 8
/// of its own at once, so keys typed back to back as soon as each echo
/// arrives (every ~0.5 ms) measured a burst, not a keystroke: p99 3-4 ms.
const KEY_GAP: Duration = Duration::from_millis(5);

/// The next `output` event's bytes; other events are skipped, and a closed
/// pane or connection, or an `error`, ends the wait with an error.
pub async fn next_output(conn: &PhoneConnection, wait: Duration) -> Result<Vec<u8>> {
    next_piece(conn, wait).await.map(|(data, _)| data)
}

/// [`next_output`] with the output's `snapshot` flag (stream v2: a fresh
/// screen, not stream bytes).
pub async fn next_piece(conn: &PhoneConnection, wait: Duration) -> Result<(Vec<u8>, bool)> {
    tokio::time::timeout(wait, async {
        loop {
            match conn.next_event().await {
                Some(Event::Output { data, snapshot, .. }) => return Ok((data, snapshot)),
                Some(Event::PaneClosed { pane_id }) => bail!("pane {pane_id} closed"),
                Some(Event::Error { code, message }) => bail!("agent error {code}: {message}"),
                Some(_) => {}
                None => bail!("the connection closed"),
            }
        }
    })
    .await
    .context("no output from the pane in time")?
}

/// How a key reaches the pane.
pub enum Keyer<'a> {
    /// `input` from the phone over the DataChannel.
    Phone,
    /// One `tmux -L <socket> send-keys -H <hex> -t <pane>` process per key.
    SpawnSendKeys {
        /// tmux socket name.
        socket: &'a str,
        /// Target pane.
        pane: &'a str,
    },
}

impl Keyer<'_> {
    async fn send(&self, conn: &PhoneConnection, key: u8) -> Result<()> {
        match self {
            Keyer::Phone => conn.input(&[key]).await.context("sending input"),
            Keyer::SpawnSendKeys { socket, pane } => {
                let st = tokio::process::Command::new("tmux")
                    .args(["-L", socket, "send-keys", "-t", pane, "-H"])
                    .arg(format!("{key:02x}"))
                    .status()
                    .await
                    .context("spawning tmux send-keys")?;
                if !st.success() {
                    bail!("tmux send-keys failed ({st})");
                }
                Ok(())
            }
        }
    }
}

/// Types `samples` single bytes (after a warm-up) into the attached raw-echo
/// pane and returns each round trip in milliseconds: from handing the key to
/// the phone library until its echo arrives. The wait runs beside the send,
/// since with stream v2 `input` returns only after sending the reliable
/// original 3 ms behind the fast copy, and the echo may arrive before that.
pub async fn echo_rtts(
    conn: &PhoneConnection,
    keyer: &Keyer<'_>,
    samples: usize,
) -> Result<Vec<f64>> {
    time_keys(samples, async |i, key| {
        let echoed = async {
            loop {
                let data = next_output(conn, EVENT_WAIT)
                    .await
                    .with_context(|| format!("waiting for the echo of key {i}"))?;
                if data.contains(&key) {
                    return Ok::<_, anyhow::Error>(Instant::now());
                }
            }
        };
        let (sent, echoed) = tokio::join!(keyer.send(conn, key), echoed);
        sent?;
        echoed
    })
    .await
}

/// The timing rule every echo measurement shares: [`WARM_UP`] keys thrown
/// away, then `samples` timed ones at least [`KEY_GAP`] apart, each a rotating letter so a late echo of
/// an earlier key is never mistaken for this one. `round_trip(i, key)` types
/// key `i` and returns the instant its echo arrived; the round trip counts
/// from just before the call.
pub async fn time_keys(
    samples: usize,
    mut round_trip: impl AsyncFnMut(usize, u8) -> Result<Instant>,
) -> Result<Vec<f64>> {
    let mut rtts = Vec::with_capacity(samples);
    for i in 0..WARM_UP + samples {
        let key = b'a' + (i % 26) as u8;
        let started = Instant::now();
        let echoed = round_trip(i, key).await?;
        if i >= WARM_UP {
            rtts.push(ms(echoed.duration_since(started)));
        }
        tokio::time::sleep_until((started + KEY_GAP).into()).await;
    }
    Ok(rtts)
}
