//! Connect timing for both ways a phone hands over its ICE candidates:
//! trickled after the answer (the Rust phone's and web client's default) and
//! written into the answer after gathering (non-trickle,
//! [`CandidateStyle::InAnswer`]). Both series use the one paired phone, paced
//! to the agent's per-phone `connect_request` budget outside the timed part.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mobile_client::{CandidateStyle, PhoneClient, PhoneConnection, Signaling};

use crate::measure::ms;
use crate::report::Latency;

/// Connects timed per style.
pub const CONNECTS: usize = 20;
/// The agent's per-phone connect_request budget: a burst, then one per interval.
const CONNECT_BURST: usize = 6;
const CONNECT_INTERVAL: Duration = Duration::from_millis(1050);
/// Fallback only: silence after the phone's last local candidate that ends
/// its gathering wait if rtc-transport never reports the end of gathering
/// (it does, `RtcEvent::GatheringComplete`, and the phone answers then).
pub const IN_ANSWER_QUIET: Duration = Duration::from_millis(50);

/// Keeps connects within the agent's budget: after the burst, one per interval.
#[derive(Debug, Default)]
pub struct Pacer {
    started: usize,
    last: Option<Instant>,
}

impl Pacer {
    /// Waits (untimed) until the next connect_request is within budget.
    pub async fn next(&mut self) {
        if self.started >= CONNECT_BURST
            && let Some(prev) = self.last
        {
            tokio::time::sleep_until((prev + CONNECT_INTERVAL).into()).await;
        }
        self.started += 1;
        self.last = Some(Instant::now());
    }
}

/// Times [`CONNECTS`] connects of `phone` (each closes the one before) and
/// returns them with the last connection, still open.
pub async fn time_connects(
    phone: &PhoneClient,
    sig: &Arc<Signaling>,
    pacer: &mut Pacer,
) -> Result<(Latency, PhoneConnection)> {
    let mut times = Vec::with_capacity(CONNECTS);
    let mut conn: Option<PhoneConnection> = None;
    for _ in 0..CONNECTS {
        if let Some(c) = conn.take() {
            c.close().await;
        }
        pacer.next().await;
        let t = Instant::now();
        let c = phone.connect(Arc::clone(sig)).await.context("connecting")?;
        times.push(ms(t.elapsed()));
        conn = Some(c);
    }
    Ok((Latency::of(&times), conn.context("no connection")?))
}

/// The same phone (config directory, identity, pairing) with its candidates
/// written into the answer.
pub fn in_answer_phone(phone: &PhoneClient) -> Result<PhoneClient> {
    let mut cfg = phone.config().clone();
    cfg.candidates = CandidateStyle::InAnswer {
        quiet: IN_ANSWER_QUIET,
    };
    Ok(PhoneClient::open(cfg)?)
}
