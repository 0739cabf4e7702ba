//! Channel authentication v2 (terminal-protocol §12), phone side: the
//! phone's proof over both nonces and both DTLS fingerprints, then the check
//! of the host's `auth_ok` before anything else is sent.

use rtc_transport::{RtcChannel, RtcPeer};
use terminal_protocol::{AuthTranscript, Event, Request};

use super::{AUTH_TIMEOUT, closed_or};
use crate::error::ClientError;
use crate::misbehave::{MacBehaviour, Misbehave};

/// Channel authentication v2 (terminal-protocol §12), phone side: check the
/// challenge, prove the key over `N_H ‖ N_M ‖ FP_H ‖ FP_M` with `FP_H` taken
/// from the certificate the host actually presented, then wait for `auth_ok`
/// and verify the host's proof before anything else is sent. Any failure
/// after our proof went out is [`ClientError::Intercepted`]: a relay in the
/// middle of DTLS, a fake host and a host with another key all look alike.
pub(super) async fn handshake(
    peer: &RtcPeer,
    channel: &RtcChannel,
    secret: &[u8; 32],
    mb: &Misbehave,
) -> Result<(), ClientError> {
    let first = tokio::time::timeout(AUTH_TIMEOUT, channel.recv())
        .await
        .map_err(|_| ClientError::Timeout("auth_challenge"))?
        .ok_or(ClientError::Closed)?;
    let nonce = match Event::decode(&first) {
        Ok(Event::AuthChallenge { nonce }) => nonce,
        Ok(other) => {
            return Err(ClientError::Handshake(format!(
                "expected auth_challenge, got {}",
                other.type_name()
            )));
        }
        Err(e) => {
            return Err(ClientError::Handshake(format!(
                "undecodable challenge: {e}"
            )));
        }
    };
    let host_nonce = terminal_protocol::decode_nonce(&nonce)
        .map_err(|e| ClientError::Handshake(format!("challenge {e}")))?;
    let fingerprints = peer
        .dtls_fingerprints()
        .await
        .map_err(|e| ClientError::Intercepted(e.to_string()))?;
    let mobile_nonce =
        terminal_protocol::try_new_nonce().map_err(|e| ClientError::Handshake(e.to_string()))?;
    let transcript = AuthTranscript {
        host_nonce,
        mobile_nonce,
        host_fingerprint: fingerprints.remote,
        mobile_fingerprint: fingerprints.local,
    };
    for m in &mb.before_auth {
        channel.send_unchecked(m).await.map_err(closed_or)?;
    }
    let mac = match mb.mac {
        MacBehaviour::Correct => Some(transcript.mobile_mac_b64(secret)),
        MacBehaviour::Wrong => {
            let mut wrong = *secret;
            wrong[0] ^= 0xff;
            Some(transcript.mobile_mac_b64(&wrong))
        }
        MacBehaviour::Garbage => Some("!!not base64!!".to_owned()),
        MacBehaviour::Missing => None,
    };
    if let Some(mac) = mac {
        let response = Request::AuthResponse {
            nonce: terminal_protocol::nonce_b64(&transcript.mobile_nonce),
            mac,
        };
        channel.send(&response.encode()).await.map_err(closed_or)?;
    }
    if mb.skip_auth_wait {
        return Ok(());
    }
    let reply = tokio::time::timeout(AUTH_TIMEOUT, channel.recv())
        .await
        .map_err(|_| ClientError::Intercepted("no auth_ok within 10 s".into()))?
        .ok_or_else(|| ClientError::Intercepted("the host closed the connection".into()))?;
    match Event::decode(&reply) {
        Ok(Event::AuthOk { mac }) => transcript
            .verify_host_mac(secret, &mac)
            .map_err(|e| ClientError::Intercepted(format!("auth_ok {e}"))),
        Ok(other) => Err(ClientError::Intercepted(format!(
            "expected auth_ok, got {}",
            other.type_name()
        ))),
        Err(e) => Err(ClientError::Intercepted(format!(
            "undecodable auth_ok: {e}"
        ))),
    }
}
