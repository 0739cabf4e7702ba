//! The channel-authentication part of [`PeerCore`](super::PeerCore)
//! (terminal-protocol.md §12, v2): challenge + deadline, the phone's MAC over both
//! nonces and both DTLS fingerprints, the host's own proof in `auth_ok`, then the
//! direction gate and decode-error replies.
//!
//! The fingerprints come from the DTLS handshake (our certificate and the one
//! the phone presented), so a relay that terminates DTLS on both sides makes the
//! two transcripts differ and the proof fail: the peer is closed before any
//! request reaches tmux.

use std::time::{Duration, Instant};

use terminal_protocol::{AuthTranscript, DecodeError, ErrorCode, Event, MAX_MESSAGE_SIZE, Request};
use zeroize::Zeroize as _;

/// Largest `error.message` the host sends (terminal-protocol.md §8).
const MAX_ERROR_MESSAGE: usize = 4096;

/// Why the gate closed the peer. No `error` event is sent for any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No valid `auth_response` within the deadline (or one arrived after it).
    Timeout,
    /// First message larger than the 1 MiB limit.
    TooLarge,
    /// First message not decodable.
    Undecodable,
    /// First message of another type than `auth_response`.
    UnexpectedType,
    /// `nonce` or `mac` empty, longer than 128 chars, not base64 of 32
    /// bytes, or the MAC not equal.
    BadMac,
    /// A message arrived before the challenge was sent.
    NoChallenge,
}

/// What the driver does with one incoming DataChannel message.
#[derive(Debug)]
pub enum GateVerdict {
    /// The phone proved the key: send this `auth_ok` (with the host's proof)
    /// before anything else; requests flow from now on.
    Authenticated(Event),
    /// Authenticated request for the handler, in arrival order.
    Deliver(Request),
    /// Reply with this event (an `error`), in order with the handler's replies.
    Reply(Event),
    /// Drop silently (unknown type, event type, repeated `auth_response`).
    Drop,
    /// Close the peer (only before authentication).
    Close(AuthFailure),
}

#[derive(Debug)]
enum GateState {
    /// Channel not open yet.
    Idle,
    /// Challenge sent; waiting for the proof until `deadline`. `fp_host` is our
    /// DTLS certificate's fingerprint, `fp_mobile` the one the phone presented.
    Challenged {
        nonce: [u8; 32],
        fp_host: [u8; 32],
        fp_mobile: [u8; 32],
        deadline: Instant,
    },
    /// Proof accepted.
    Authenticated,
    /// Failed; everything is ignored.
    Failed,
}

/// Channel-authentication gate of one peer.
///
/// Inputs: [`handle_open`](Self::handle_open) once when the channel opens (the
/// caller draws the nonce and reads the DTLS fingerprints), [`handle_message`](Self::handle_message) per received
/// message, [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout). Invariant: success and timeout are
/// mutually exclusive, whichever is seen first wins, and a proof arriving at or
/// after the deadline counts as late.
pub struct AuthGate {
    secret: [u8; 32],
    timeout: Duration,
    state: GateState,
}

impl std::fmt::Debug for AuthGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and nonce stay out of logs.
        let authenticated = self.is_authenticated();
        write!(
            f,
            "AuthGate {{ timeout: {:?}, authenticated: {authenticated} }}",
            self.timeout
        )
    }
}

impl Drop for AuthGate {
    fn drop(&mut self) {
        self.secret.zeroize();
        if let GateState::Challenged { nonce, .. } = &mut self.state {
            nonce.zeroize();
        }
    }
}

impl AuthGate {
    /// A gate for the pairing secret `secret` with the given proof deadline.
    pub fn new(secret: [u8; 32], timeout: Duration) -> Self {
        Self {
            secret,
            timeout,
            state: GateState::Idle,
        }
    }

    /// True once the proof was accepted.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, GateState::Authenticated)
    }

    /// Deadline of the pending proof, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            GateState::Challenged { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// The channel opened at `now`: returns the `auth_challenge` to send.
    /// `fp_host` is the SHA-256 of our DTLS certificate, `fp_mobile` that of the
    /// certificate the phone presented in the handshake.
    pub fn handle_open(
        &mut self,
        now: Instant,
        nonce: [u8; 32],
        fp_host: [u8; 32],
        fp_mobile: [u8; 32],
    ) -> Event {
        self.state = GateState::Challenged {
            nonce,
            fp_host,
            fp_mobile,
            deadline: now + self.timeout,
        };
        Event::AuthChallenge {
            nonce: terminal_protocol::nonce_b64(&nonce),
        }
    }

    /// The channel cannot be authenticated (no nonce from the random source, no
    /// DTLS fingerprints, or the challenge could not be sent): close the peer.
    pub fn handle_send_failed(&mut self) -> AuthFailure {
        self.state = GateState::Failed;
        AuthFailure::NoChallenge
    }

    /// Timer check at `now`; `Some` = close the peer.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<AuthFailure> {
        match self.state {
            GateState::Challenged { deadline, .. } if now >= deadline => {
                self.state = GateState::Failed;
                Some(AuthFailure::Timeout)
            }
            _ => None,
        }
    }

    /// One received message at `now`.
    pub fn handle_message(&mut self, now: Instant, bytes: &[u8]) -> GateVerdict {
        match &self.state {
            GateState::Failed => GateVerdict::Drop,
            GateState::Idle => self.fail(AuthFailure::NoChallenge),
            GateState::Challenged {
                nonce,
                fp_host,
                fp_mobile,
                deadline,
            } => {
                let (nonce, fp_host, fp_mobile, deadline) =
                    (*nonce, *fp_host, *fp_mobile, *deadline);
                if now >= deadline {
                    return self.fail(AuthFailure::Timeout);
                }
                if bytes.len() > MAX_MESSAGE_SIZE {
                    return self.fail(AuthFailure::TooLarge);
                }
                let (mobile_nonce, mac) = match Request::decode(bytes) {
                    Ok(Request::AuthResponse { nonce, mac }) => (nonce, mac),
                    Ok(_) | Err(DecodeError::UnknownType(_)) => {
                        return self.fail(AuthFailure::UnexpectedType);
                    }
                    Err(_) => return self.fail(AuthFailure::Undecodable),
                };
                let Ok(mobile_nonce) = terminal_protocol::decode_nonce(&mobile_nonce) else {
                    return self.fail(AuthFailure::BadMac);
                };
                let transcript = AuthTranscript {
                    host_nonce: nonce,
                    mobile_nonce,
                    host_fingerprint: fp_host,
                    mobile_fingerprint: fp_mobile,
                };
                if transcript.verify_mobile_mac(&self.secret, &mac).is_err() {
                    return self.fail(AuthFailure::BadMac);
                }
                let ok = Event::AuthOk {
                    mac: transcript.host_mac_b64(&self.secret),
                };
                // Dropping the Challenged state forgets the nonce; the
                // transcript zeroizes its copy on drop.
                self.state = GateState::Authenticated;
                GateVerdict::Authenticated(ok)
            }
            GateState::Authenticated => Self::after_auth(bytes),
        }
    }

    fn fail(&mut self, why: AuthFailure) -> GateVerdict {
        self.state = GateState::Failed;
        GateVerdict::Close(why)
    }

    fn after_auth(bytes: &[u8]) -> GateVerdict {
        if bytes.len() > MAX_MESSAGE_SIZE {
            return GateVerdict::Reply(Event::error(
                ErrorCode::MessageTooLarge,
                format!(
                    "message of {} bytes exceeds the limit of {MAX_MESSAGE_SIZE}",
                    bytes.len()
                ),
            ));
        }
        match Request::decode(bytes) {
            // Direction gate: a repeated proof is dropped, never answered.
            Ok(Request::AuthResponse { .. }) => GateVerdict::Drop,
            Ok(req) => GateVerdict::Deliver(req),
            // Unknown types and event types sent by the mobile are dropped.
            Err(DecodeError::UnknownType(_)) => GateVerdict::Drop,
            Err(e) => {
                let mut message = e.to_string();
                truncate_utf8(&mut message, MAX_ERROR_MESSAGE);
                GateVerdict::Reply(Event::error(e.code(), message))
            }
        }
    }
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}
