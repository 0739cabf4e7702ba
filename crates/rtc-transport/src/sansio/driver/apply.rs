//! How the driver carries out the handles' commands on the core:
//! descriptions, each ICE generation's host, server-reflexive and relayed
//! candidates, queued
//! remote candidates, channels, sends, fingerprints, close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rtc::data_channel::{RTCDataChannelId, RTCDataChannelInit};
use rtc::ice::candidate::Candidate as IceCandidate;
use rtc::peer_connection::configuration::RTCOfferOptions;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, CandidateRelayConfig, CandidateServerReflexiveConfig,
    RTCIceCandidate, RTCIceCandidateInit,
};

use super::{Driver, answer, emit};
use crate::MAX_PENDING_CANDIDATES;
use crate::dtls::{DtlsFingerprints, fingerprint_of_der, sdp_fingerprints};
use crate::error::RtcError;
use crate::event::{Candidate, RtcEvent};
use crate::options::ChannelOptions;
use crate::sansio::channel::{ChanShared, ChanState, ChannelOp, RtcChannel};
use crate::sansio::command::Command;
use crate::sansio::gather::StunQueries;
use crate::sdp::outgoing_sdp;

pub(super) fn apply(d: &mut Driver, cmd: Command) {
    match cmd {
        Command::CreateChannel {
            label,
            options,
            reply,
        } => answer(reply, create_channel(d, label, options)),
        Command::CreateOffer { ice_restart, reply } => answer(reply, create_offer(d, ice_restart)),
        Command::SetAnswer { sdp, reply } => answer(reply, set_answer(d, sdp)),
        Command::AcceptOffer { sdp, reply } => answer(reply, accept_offer(d, sdp)),
        Command::AddCandidate { candidate } => add_candidate(d, candidate),
        Command::Fingerprints { reply } => answer(reply, fingerprints(d)),
        Command::Close => d.shared.closed.store(true, Ordering::SeqCst),
    }
}

pub(super) fn apply_op(d: &mut Driver, op: ChannelOp) {
    match op {
        ChannelOp::Send { id, data } => send(d, id, data),
        ChannelOp::Close { id } => {
            if let Some(mut dc) = d.pc.data_channel(id)
                && let Err(e) = dc.close()
            {
                tracing::debug!(error = %e, "data channel close");
            }
            if let Some(ch) = d.channels.remove(&id) {
                ch.set_state(ChanState::Closed);
            }
        }
    }
}

fn create_channel(
    d: &mut Driver,
    label: String,
    options: ChannelOptions,
) -> Result<RtcChannel, RtcError> {
    let init = RTCDataChannelInit {
        ordered: options.ordered,
        max_retransmits: options.max_retransmits,
        ..Default::default()
    };
    let id = d.pc.create_data_channel(&label, Some(init))?.id();
    let (ch, handle) = ChanShared::new(
        id,
        label,
        options,
        Arc::clone(&d.shared.remote_max),
        d.shared.channel_ops.clone(),
    );
    d.channels.insert(id, ch);
    d.shared.remember(handle.clone());
    Ok(handle)
}

fn create_offer(d: &mut Driver, ice_restart: bool) -> Result<String, RtcError> {
    if ice_restart {
        d.pc.restart_ice();
        d.remote_set = false;
        d.pending.clear();
    }
    let offer = d.pc.create_offer(Some(RTCOfferOptions { ice_restart }))?;
    let sdp = outgoing_sdp(&offer.sdp);
    d.pc.set_local_description(Instant::now(), offer)?;
    gather(d)?;
    Ok(sdp)
}

fn set_answer(d: &mut Driver, sdp: String) -> Result<(), RtcError> {
    let desc = RTCSessionDescription::answer(sdp)?;
    d.pc.set_remote_description(Instant::now(), desc)?;
    remote_description_set(d);
    Ok(())
}

fn accept_offer(d: &mut Driver, sdp: String) -> Result<String, RtcError> {
    let desc = RTCSessionDescription::offer(sdp)?;
    d.pc.set_remote_description(Instant::now(), desc)?;
    let answer = d.pc.create_answer(None)?;
    let out = outgoing_sdp(&answer.sdp);
    d.pc.set_local_description(Instant::now(), answer)?;
    remote_description_set(d);
    gather(d)?;
    Ok(out)
}

/// Adds this generation's host candidates (one per socket) and reports
/// them, then asks the STUN servers for server-reflexive ones; the end of
/// gathering follows the last answer or given-up query. After the local
/// description, so candidates are trickled, never written into it twice.
fn gather(d: &mut Driver) -> Result<(), RtcError> {
    let ufrag = current_ufrag(d);
    if d.gathered_ufrag == ufrag {
        return Ok(());
    }
    d.gathered_ufrag = ufrag;
    let locals: Vec<_> = d.sockets.iter().map(|s| s.local).collect();
    let now = Instant::now();
    if d.relay_only {
        d.stun = StunQueries::default();
    } else {
        for local in &locals {
            let host = CandidateHostConfig {
                base_config: base_config(*local),
                ..Default::default()
            }
            .new_candidate_host()?;
            add_local(d, &RTCIceCandidate::from(&host))?;
        }
        d.stun = StunQueries::start(&locals, &d.stun_servers, now);
    }
    for index in 0..d.relays.len() {
        relayed(d, index);
    }
    d.gathering = true;
    d.send_stun(now);
    Ok(())
}

/// The relay at `index` has its allocation: add and report its candidate
/// for this generation (nothing while it has none).
pub(super) fn relayed(d: &mut Driver, index: usize) {
    let Some((relayed, socket)) = d
        .relays
        .get(index)
        .and_then(|r| Some((r.relayed?, r.socket)))
    else {
        return;
    };
    let Some(base) = d.sockets.get(socket).map(|s| s.local) else {
        return;
    };
    let made = CandidateRelayConfig {
        base_config: base_config(relayed),
        rel_addr: base.ip().to_string(),
        rel_port: base.port(),
        ..Default::default()
    }
    .new_candidate_relay();
    add_derived(d, made, relayed, "relayed candidate");
}

/// A STUN server reported `mapped` for the socket at `index`: add and report
/// the server-reflexive candidate. Also when it is the socket's own address
/// (no NAT on the way), as other ICE agents do: it costs a redundant pair,
/// and shows that the STUN server answers.
pub(super) fn server_reflexive(d: &mut Driver, index: usize, mapped: SocketAddr) {
    let Some(base) = d.sockets.get(index).map(|s| s.local) else {
        return;
    };
    let made = CandidateServerReflexiveConfig {
        base_config: base_config(mapped),
        rel_addr: base.ip().to_string(),
        rel_port: base.port(),
        ..Default::default()
    }
    .new_candidate_server_reflexive();
    add_derived(d, made, mapped, "server-reflexive candidate");
}

/// Adds and reports a candidate derived from a host socket (server-reflexive
/// or relayed); one that cannot be made or added is only logged, as the
/// others still work.
fn add_derived<E>(d: &mut Driver, made: Result<IceCandidate, E>, addr: SocketAddr, what: &str)
where
    RtcError: From<E>,
{
    let added = made
        .map_err(RtcError::from)
        .and_then(|c| add_local(d, &RTCIceCandidate::from(&c)));
    if let Err(e) = added {
        tracing::debug!(error = %e, %addr, "{what}");
    }
}

fn base_config(addr: SocketAddr) -> CandidateConfig {
    CandidateConfig {
        network: "udp".into(),
        address: addr.ip().to_string(),
        port: addr.port(),
        component: 1,
        ..Default::default()
    }
}

/// Gives a local candidate to the core and reports it to the owner.
fn add_local(d: &mut Driver, candidate: &RTCIceCandidate) -> Result<(), RtcError> {
    let init = candidate.to_json()?;
    d.pc.add_local_candidate(init.clone())?;
    let candidate = if init.candidate.starts_with("candidate:") {
        init.candidate
    } else {
        format!("candidate:{}", init.candidate)
    };
    emit(
        &d.events,
        RtcEvent::LocalCandidate(Candidate {
            candidate,
            sdp_mid: Some(
                init.sdp_mid
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "0".into()),
            ),
            sdp_m_line_index: Some(init.sdp_mline_index.unwrap_or(0)),
        }),
    );
    Ok(())
}

/// The ICE username fragment of the current local description: one per generation.
fn current_ufrag(d: &Driver) -> Option<String> {
    let sdp = d.pc.local_description()?.sdp;
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

fn remote_description_set(d: &mut Driver) {
    d.remote_set = true;
    for c in std::mem::take(&mut d.pending) {
        if let Err(e) = d.pc.add_remote_candidate(c) {
            tracing::debug!(error = %e, "queued remote candidate rejected");
        }
    }
}

fn add_candidate(d: &mut Driver, c: Candidate) {
    let init = RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: None,
        url: None,
    };
    if !d.remote_set {
        if d.pending.len() >= MAX_PENDING_CANDIDATES {
            tracing::warn!("remote candidate queue full; candidate dropped");
        } else {
            d.pending.push(init);
        }
        return;
    }
    if let Err(e) = d.pc.add_remote_candidate(init) {
        tracing::debug!(error = %e, "remote candidate rejected");
    }
}

fn fingerprints(d: &mut Driver) -> Result<DtlsFingerprints, RtcError> {
    let remote =
        d.pc.sctp()
            .and_then(|s| s.transport().get_remote_certificates().first().cloned())
            .ok_or(RtcError::NoFingerprint(
                "the remote end presented no certificate",
            ))?;
    let local =
        d.pc.local_description()
            .and_then(|desc| sdp_fingerprints(&desc.sdp).into_iter().flatten().next())
            .ok_or(RtcError::NoFingerprint(
                "our certificate has no sha-256 fingerprint",
            ))?;
    Ok(DtlsFingerprints {
        local,
        remote: fingerprint_of_der(&remote),
    })
}

fn send(d: &mut Driver, id: RTCDataChannelId, data: Bytes) {
    let len = data.len();
    let Some(ch) = d.channels.get(&id).cloned() else {
        return;
    };
    ch.sent_to_core(len);
    let result = match d.pc.data_channel(id) {
        Some(mut dc) => dc.send(Instant::now(), BytesMut::from(data)),
        None => return ch.set_state(ChanState::Closed),
    };
    if let Err(e) = result {
        // A message the core refuses (too large, channel closing) ends the
        // channel: the ordered stream would have a hole otherwise.
        tracing::debug!(error = %e, label = ch.label(), "send refused");
        if ch.options().is_reliable() {
            ch.set_state(ChanState::Closed);
        }
    }
}
