//! Which hosts on other instances this instance's phones were told are
//! online: the table behind the presence audit (nats.rs), which asks the
//! bus about each of them every [`AUDIT_INTERVAL`]. A host nobody holds in
//! [`STRIKES`] consecutive rounds (the instance's bus link up throughout)
//! is gone — its instance died without saying goodbye — and its phones are
//! told `host_offline`; if it answers again within [`REMEMBER_GONE`] (its
//! instance was only cut off from the bus), they are told `host_online`
//! again with the last announcement's text.
//!
//! Several rounds, not one: after a NATS restart the instances redial at
//! different moments (up to the client's 4 s backoff), and a host whose
//! instance is not back yet must not be declared gone by one that is.
//! Each host's entry carries a generation, bumped whenever it is announced
//! online, so an audit answer that raced with a new `host_online` is not
//! acted on.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use signaling_proto::SignalingMessage;
use signaling_proto::signal::kind;

/// How often an instance asks about the remote hosts its phones believe
/// online.
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(5);

/// Consecutive "nobody holds it" rounds before a host is gone.
pub const STRIKES: u8 = 3;

/// How long a gone host is still asked about, to tell its phones when it
/// answers again.
pub const REMEMBER_GONE: Duration = Duration::from_secs(600);

/// Hosts tracked at most; beyond it, new ones are not audited (their
/// phones learn at their next connect, as without the audit).
const MAX_HOSTS: usize = 65_536;

/// What one audit round learnt about a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An instance holds it.
    Present,
    /// Nobody is subscribed for it.
    Nobody,
    /// No answer (bus fault, timeout): counts for nothing.
    Unknown,
}

struct Entry {
    generation: u64,
    mobiles: HashSet<String>,
    /// The `host_online` the phones got, to send again on a return.
    announcement: Utf8Bytes,
    strikes: u8,
    gone_since: Option<Instant>,
}

/// Remote hosts announced online to phones here.
#[derive(Default)]
pub struct Believed {
    hosts: HashMap<String, Entry>,
    next_generation: u64,
}

impl Believed {
    /// `mobile` (a phone here) was told `host` (elsewhere) is online with
    /// `announcement` (the `host_online` text).
    pub fn online(&mut self, host: &str, mobile: &str, announcement: Utf8Bytes) {
        if !self.hosts.contains_key(host) && self.hosts.len() >= MAX_HOSTS {
            return;
        }
        self.next_generation += 1;
        let entry = self.hosts.entry(host.to_owned()).or_insert_with(|| Entry {
            generation: 0,
            mobiles: HashSet::new(),
            announcement: announcement.clone(),
            strikes: 0,
            gone_since: None,
        });
        entry.generation = self.next_generation;
        entry.mobiles.insert(mobile.to_owned());
        entry.announcement = announcement;
        entry.strikes = 0;
        entry.gone_since = None;
    }

    /// `host` left (announced `host_offline`) or was unpaired: not watched.
    pub fn forget_host(&mut self, host: &str) {
        self.hosts.remove(host);
    }

    /// `mobile` has no socket here any more.
    pub fn forget_mobile(&mut self, mobile: &str) {
        self.hosts.retain(|_, e| {
            e.mobiles.remove(mobile);
            !e.mobiles.is_empty()
        });
    }

    /// The bus link was lost since the last round: earlier strikes do not
    /// count (other instances may not be back yet).
    pub fn reset_strikes(&mut self) {
        for e in self.hosts.values_mut() {
            e.strikes = 0;
        }
    }

    /// Every tracked host with its generation, to ask the bus about.
    pub fn due(&self) -> Vec<(String, u64)> {
        self.hosts
            .iter()
            .map(|(h, e)| (h.clone(), e.generation))
            .collect()
    }

    /// Applies one round's `verdict` on `host` (read at `generation`);
    /// returns what to tell which phones, if anything.
    pub fn answer(
        &mut self,
        host: &str,
        generation: u64,
        verdict: Verdict,
        now: Instant,
    ) -> Option<(Utf8Bytes, Vec<String>)> {
        let entry = self.hosts.get_mut(host)?;
        if entry.generation != generation {
            return None;
        }
        let mobiles = || entry.mobiles.iter().cloned().collect::<Vec<_>>();
        match (entry.gone_since, verdict) {
            (None, Verdict::Present) => entry.strikes = 0,
            (None, Verdict::Nobody) => {
                entry.strikes = entry.strikes.saturating_add(1);
                if entry.strikes >= STRIKES {
                    entry.gone_since = Some(now);
                    let offline = SignalingMessage {
                        device_id: host.to_owned(),
                        ..SignalingMessage::new(kind::HOST_OFFLINE)
                    };
                    return Some((Utf8Bytes::from(offline.to_json()), mobiles()));
                }
            }
            (Some(_), Verdict::Present) => {
                entry.gone_since = None;
                entry.strikes = 0;
                return Some((entry.announcement.clone(), mobiles()));
            }
            (Some(since), _) if now.duration_since(since) > REMEMBER_GONE => {
                self.hosts.remove(host);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s)
    }

    fn round(b: &mut Believed, host: &str, v: Verdict, now: Instant) -> Option<Vec<String>> {
        let generation = b.due().into_iter().find(|(h, _)| h == host)?.1;
        b.answer(host, generation, v, now).map(|(_, mut m)| {
            m.sort();
            m
        })
    }

    #[test]
    fn a_host_nobody_holds_is_gone_after_three_rounds_and_returns() {
        let mut b = Believed::default();
        let now = Instant::now();
        b.online("h", "m1", text("online"));
        b.online("h", "m2", text("online"));
        assert_eq!(round(&mut b, "h", Verdict::Nobody, now), None);
        assert_eq!(round(&mut b, "h", Verdict::Unknown, now), None);
        assert_eq!(round(&mut b, "h", Verdict::Nobody, now), None);
        assert_eq!(
            round(&mut b, "h", Verdict::Nobody, now),
            Some(vec!["m1".to_owned(), "m2".to_owned()])
        );
        assert_eq!(round(&mut b, "h", Verdict::Nobody, now), None);
        let (g, _) = (b.due()[0].1, ());
        let back = b.answer("h", g, Verdict::Present, now).unwrap();
        assert_eq!(back.0, "online");
        // Long gone: dropped.
        for _ in 0..3 {
            round(&mut b, "h", Verdict::Nobody, now);
        }
        round(&mut b, "h", Verdict::Nobody, now + REMEMBER_GONE * 2);
        assert!(b.due().is_empty());
    }

    #[test]
    fn presence_and_reset_clear_strikes_and_a_new_announcement_wins() {
        let mut b = Believed::default();
        let now = Instant::now();
        b.online("h", "m", text("online"));
        round(&mut b, "h", Verdict::Nobody, now);
        round(&mut b, "h", Verdict::Nobody, now);
        b.reset_strikes();
        round(&mut b, "h", Verdict::Nobody, now);
        round(&mut b, "h", Verdict::Present, now);
        round(&mut b, "h", Verdict::Nobody, now);
        assert_eq!(round(&mut b, "h", Verdict::Nobody, now), None);
        let old = b.due()[0].1;
        b.online("h", "m", text("online again"));
        assert_eq!(b.answer("h", old, Verdict::Nobody, now), None);
    }

    #[test]
    fn offline_unpaired_and_leaving_phones_end_the_tracking() {
        let mut b = Believed::default();
        b.online("h1", "m", text("1"));
        b.online("h2", "m", text("2"));
        b.online("h2", "other", text("2"));
        b.forget_host("h1");
        b.forget_mobile("m");
        let due = b.due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, "h2");
        b.forget_mobile("other");
        assert!(b.due().is_empty());
    }
}
