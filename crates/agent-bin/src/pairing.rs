//! Pairing v2 on the host (pairing.md §2 and §9): the fresh X25519 key and
//! token of one attempt, the QR payload and web client URL built from them,
//! and the check of each relayed `pair_complete` before anything is stored.
//!
//! The token `T` only ever leaves this process inside the QR code, so a
//! `pair_complete` carrying a key the signaling server chose cannot come with
//! a valid confirmation: [`PairingAttempt::accept`] refuses it and the caller
//! keeps waiting for the real phone.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use signaling_proto::{PairingToken, QrPayload, SignalingMessage};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::store;

/// The one line printed for a refused `pair_complete` (pairing.md §9.6).
pub const REFUSED_LINE: &str = "a pairing attempt with a key that does not match this QR code was refused; the signaling server may be tampering";

/// The secrets of one pairing attempt: X25519 key and token, both zeroized
/// when the attempt is dropped (success, refusal timeout or error).
pub struct PairingAttempt {
    secret: StaticSecret,
    /// The public half, sent to the server and shown in the QR.
    pub public: [u8; 32],
    token: PairingToken,
}

/// A `pair_complete` that passed the confirmation check.
pub struct AcceptedPhone {
    /// The phone's device id (32 lowercase hex chars).
    pub device_id: String,
    /// Its name as relayed, cut to 64 chars; empty when none or when it
    /// breaks the name rule (controls, bidi formatting characters).
    pub name: String,
    /// The pairing secret `K`.
    pub secret: Zeroizing<[u8; 32]>,
}

/// Why a relayed `pair_complete` was refused; nothing is stored for any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The phone id is not 32 lowercase hex chars.
    #[error("the server sent an invalid phone id")]
    BadDeviceId,
    /// The phone key is not 32 bytes of base64, or gives an all-zero secret.
    #[error("the phone's pairing key is not a usable X25519 key")]
    BadKey,
    /// The confirmation is missing, malformed or does not match.
    #[error("{REFUSED_LINE}")]
    Confirmation,
}

impl PairingAttempt {
    /// Draws a new key and token from the OS CSPRNG.
    pub fn generate() -> Self {
        Self::from_parts(
            StaticSecret::random_from_rng(rand::rngs::OsRng),
            signaling_proto::new_pairing_token(),
        )
    }

    /// Wraps a known key and token (test vectors).
    pub fn from_parts(secret: StaticSecret, token: PairingToken) -> Self {
        let public = PublicKey::from(&secret).to_bytes();
        PairingAttempt {
            secret,
            public,
            token,
        }
    }

    /// The 5-field QR payload `code|hostKey|hostId|serverUrl|token`.
    pub fn payload(&self, code: &str, host_id: &str, server_url: &str) -> String {
        QrPayload {
            code: code.to_owned(),
            host_x25519_public_key: B64.encode(self.public),
            host_device_id: host_id.to_owned(),
            server_url: server_url.trim_end_matches('/').to_owned(),
            token: self.token.clone(),
        }
        .to_string()
    }

    /// Checks one relayed `pair_complete` (pairing.md §9.6): a valid phone id,
    /// a usable key, and a confirmation that matches `K` derived from our key,
    /// that key and our token, compared in constant time.
    pub fn accept(&self, msg: &SignalingMessage, host_id: &str) -> Result<AcceptedPhone, Refusal> {
        if !store::valid_device_id(&msg.mobile_device_id) {
            return Err(Refusal::BadDeviceId);
        }
        let key = signaling_proto::decode_public_key(&msg.mobile_x25519_public_key)
            .map_err(|_| Refusal::BadKey)?;
        let secret = signaling_proto::derive_pairing_secret(&self.secret, &key, &self.token)
            .map_err(|_| Refusal::BadKey)?;
        signaling_proto::verify_pairing_confirmation(
            &secret,
            &msg.mobile_device_id,
            &msg.mobile_x25519_public_key,
            host_id,
            &msg.mobile_confirmation,
        )
        .map_err(|_| Refusal::Confirmation)?;
        Ok(AcceptedPhone {
            device_id: msg.mobile_device_id.clone(),
            name: relayed_name(&msg.mobile_name),
            secret,
        })
    }
}

/// A relayed phone name as the host keeps it: cut to 64 chars, and dropped
/// (empty) when it breaks [`signaling_proto::validate_name`], since the server
/// relaying it may not have checked.
fn relayed_name(raw: &str) -> String {
    let name = signaling_proto::truncate_name(raw);
    if name.is_empty() || signaling_proto::validate_name(&name).is_ok() {
        return name;
    }
    tracing::warn!(
        name = %crate::printable::printable(&name),
        "the phone's name is not kept: it breaks the name rule"
    );
    String::new()
}

/// The web client URL a phone camera opens: `<web base>#<payload>`. The
/// fragment never reaches a server. Only characters that a URL fragment
/// cannot hold as they are get percent-encoded (the payload's `|`, `+`, `/`,
/// `=` may stay; the page percent-decodes the fragment once).
pub fn web_url(web_base: &str, payload: &str) -> String {
    let base = web_base.trim_end_matches('#');
    // A bare origin gets its root path; a URL with a path is kept as given.
    let has_path = base
        .split_once("://")
        .is_some_and(|(_, rest)| rest.contains('/'));
    let mut out = if has_path {
        format!("{base}#")
    } else {
        format!("{base}/#")
    };
    for b in payload.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?|".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling_proto::pairing_confirmation;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    const HOST_ID: &str = "21fe31dfa154a261626bf854046fd227";
    const MOBILE_ID: &str = "0123456789abcdef0123456789abcdef";
    const MOBILE_PUB: &str = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";

    /// The host of vector §9.1.
    fn vector_host() -> PairingAttempt {
        PairingAttempt::from_parts(
            StaticSecret::from(hex32(
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
            )),
            Zeroizing::new(std::array::from_fn(|i| 0xf0 + i as u8)),
        )
    }

    fn complete(key: &str, confirmation: &str) -> SignalingMessage {
        SignalingMessage {
            mobile_device_id: MOBILE_ID.into(),
            mobile_x25519_public_key: key.into(),
            mobile_name: "Pixel".into(),
            mobile_confirmation: confirmation.into(),
            ..SignalingMessage::new("pair_complete")
        }
    }

    #[test]
    fn spec_v2_vector_payload_and_acceptance() {
        let host = vector_host();
        assert_eq!(
            host.payload("ABC234", HOST_ID, "https://signal.example.net/"),
            "ABC234|hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=|21fe31dfa154a261626bf854046fd227|https://signal.example.net|8PHy8/T19vf4+fr7/P3+/w=="
        );
        let phone = host
            .accept(
                &complete(MOBILE_PUB, "QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo="),
                HOST_ID,
            )
            .unwrap();
        assert_eq!(phone.device_id, MOBILE_ID);
        assert_eq!(phone.name, "Pixel");
        assert_eq!(
            hex::encode(*phone.secret),
            "c568e156200eee0049bddd189ddce76e5d120eb3d6957cb6fc79c08902582ed9"
        );
    }

    #[test]
    fn relayed_names_with_controls_or_bidi_are_not_kept() {
        assert_eq!(relayed_name("Pixel"), "Pixel");
        assert_eq!(relayed_name(&"é".repeat(70)), "é".repeat(64));
        assert_eq!(relayed_name(""), "");
        for bad in ["a\u{1b}[2J", "x\u{9b}31m", "evil\u{202e}txt", "\u{2066}i"] {
            assert_eq!(relayed_name(bad), "", "{bad:?}");
        }
    }

    /// The server substitutes its own key: whatever confirmation it sends
    /// (the phone's, none, or one it made without the token) is refused.
    #[test]
    fn substituted_key_is_refused_whatever_the_confirmation() {
        let host = vector_host();
        let server_key = StaticSecret::random_from_rng(rand::rngs::OsRng);
        let server_pub = B64.encode(PublicKey::from(&server_key).as_bytes());
        let host_pub: [u8; 32] = host.public;
        // The server's best guess at K: its own DH with the host key, some token.
        let guess =
            signaling_proto::derive_pairing_secret(&server_key, &host_pub, &[0u8; 16]).unwrap();
        let forged = pairing_confirmation(&guess, MOBILE_ID, &server_pub, HOST_ID);
        for c in [
            "QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo=",
            "",
            forged.as_str(),
            "not base64!",
            &"A".repeat(200),
        ] {
            assert!(
                matches!(
                    host.accept(&complete(&server_pub, c), HOST_ID),
                    Err(Refusal::Confirmation)
                ),
                "{c}"
            );
        }
    }

    #[test]
    fn malformed_pair_complete_is_refused() {
        let host = vector_host();
        let good = "QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo=";
        let mut bad_id = complete(MOBILE_PUB, good);
        bad_id.mobile_device_id = MOBILE_ID.to_uppercase();
        assert!(matches!(
            host.accept(&bad_id, HOST_ID),
            Err(Refusal::BadDeviceId)
        ));
        assert!(matches!(
            host.accept(&complete("AAAA", good), HOST_ID),
            Err(Refusal::BadKey)
        ));
        let zero = B64.encode([0u8; 32]);
        assert!(matches!(
            host.accept(&complete(&zero, good), HOST_ID),
            Err(Refusal::BadKey)
        ));
        // The right confirmation under another host id (a relay between two hosts).
        assert!(matches!(
            host.accept(
                &complete(MOBILE_PUB, good),
                "31fe31dfa154a261626bf854046fd227"
            ),
            Err(Refusal::Confirmation)
        ));
    }

    #[test]
    fn web_url_keeps_the_payload_readable_in_the_fragment() {
        let p = "ABC234|hSDw+Yk/p1R=|21fe|https://s.example.net:8443|8PHy8/T19vf4+fr7/P3+/w==";
        assert_eq!(
            web_url("https://s.example.net:8443/", p),
            format!("https://s.example.net:8443/#{p}")
        );
        assert_eq!(
            web_url("https://s.example.net:8443", p),
            format!("https://s.example.net:8443/#{p}")
        );
        // A client hosted under a path keeps it.
        assert_eq!(
            web_url("https://static.example.org/muxlink/", "A B"),
            "https://static.example.org/muxlink/#A%20B"
        );
    }
}
