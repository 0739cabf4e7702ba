//! `Signal`: a typed view of [`SignalingMessage`], one variant per message
//! kind of signaling.md §6, converting losslessly both ways.

use crate::message::SignalingMessage;

pub use crate::kind;

/// Typed signaling message.
///
/// `From<SignalingMessage>` picks a typed variant only when the message holds
/// exactly the fields of that variant; anything else (unknown kind, or extra
/// fields for a known kind) stays [`Signal::Other`], so converting back always
/// yields the original message.
// `Other` carries the whole message by value so matching stays simple; a
// signal lives only as long as one dispatch, so the size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `auth{token, name?}` (client → server).
    Auth {
        /// JWT.
        token: String,
        /// Device name, empty when not sent.
        name: String,
    },
    /// `auth{status:"ok"}` (server → client).
    AuthOk,
    /// `presence`.
    Presence,
    /// `presence_ack`.
    PresenceAck,
    /// `connect_request{targetDeviceId}`.
    ConnectRequest {
        /// Addressee, or the sender after relay.
        target_device_id: String,
    },
    /// `sdp_offer{targetDeviceId, sdp}`.
    SdpOffer {
        /// Addressee, or the sender after relay.
        target_device_id: String,
        /// Offer SDP.
        sdp: String,
    },
    /// `sdp_answer{targetDeviceId, sdp}`.
    SdpAnswer {
        /// Addressee, or the sender after relay.
        target_device_id: String,
        /// Answer SDP.
        sdp: String,
    },
    /// `ice_candidate{targetDeviceId, candidate, sdpMid?, sdpMLineIndex?}`.
    IceCandidate {
        /// Addressee, or the sender after relay.
        target_device_id: String,
        /// Candidate line.
        candidate: String,
        /// Media stream id, empty when absent.
        sdp_mid: String,
        /// Media line index.
        sdp_m_line_index: Option<u16>,
    },
    /// `connection_rejected{targetDeviceId, reason}`.
    ConnectionRejected {
        /// Addressee, or the sender after relay (may be empty from the server).
        target_device_id: String,
        /// `not_paired` or `already_connected`.
        reason: String,
    },
    /// `host_online{deviceId, name?}`.
    HostOnline {
        /// Host id.
        device_id: String,
        /// Host name, empty when unknown.
        name: String,
    },
    /// `host_offline{deviceId}`.
    HostOffline {
        /// Host id.
        device_id: String,
    },
    /// `pair_complete{mobileDeviceId, mobileX25519PublicKey, mobileName?,
    /// mobileConfirmation}`.
    PairComplete {
        /// New mobile's id.
        mobile_device_id: String,
        /// Its X25519 public key, base64.
        mobile_x25519_public_key: String,
        /// Its name, empty when unknown.
        mobile_name: String,
        /// Its confirmation MAC, base64 (pairing.md §9.4); the host verifies it.
        mobile_confirmation: String,
    },
    /// `device_unpaired{reason, hostDeviceId, hostName?}`.
    DeviceUnpaired {
        /// One of the `UNPAIR_*` constants.
        reason: String,
        /// The host that dropped the pairing.
        host_device_id: String,
        /// Its name, empty when unknown.
        host_name: String,
    },
    /// `mobile_name_updated{deviceId, name}`.
    MobileNameUpdated {
        /// Mobile id.
        device_id: String,
        /// New name.
        name: String,
    },
    /// `error{error}`.
    Error {
        /// Error text.
        error: String,
    },
    /// Anything not matching a variant above exactly.
    Other(SignalingMessage),
}

impl Signal {
    /// The wire `type` of this signal.
    pub fn kind(&self) -> &str {
        match self {
            Signal::Auth { .. } | Signal::AuthOk => kind::AUTH,
            Signal::Presence => kind::PRESENCE,
            Signal::PresenceAck => kind::PRESENCE_ACK,
            Signal::ConnectRequest { .. } => kind::CONNECT_REQUEST,
            Signal::SdpOffer { .. } => kind::SDP_OFFER,
            Signal::SdpAnswer { .. } => kind::SDP_ANSWER,
            Signal::IceCandidate { .. } => kind::ICE_CANDIDATE,
            Signal::ConnectionRejected { .. } => kind::CONNECTION_REJECTED,
            Signal::HostOnline { .. } => kind::HOST_ONLINE,
            Signal::HostOffline { .. } => kind::HOST_OFFLINE,
            Signal::PairComplete { .. } => kind::PAIR_COMPLETE,
            Signal::DeviceUnpaired { .. } => kind::DEVICE_UNPAIRED,
            Signal::MobileNameUpdated { .. } => kind::MOBILE_NAME_UPDATED,
            Signal::Error { .. } => kind::ERROR,
            Signal::Other(m) => &m.kind,
        }
    }
}

impl From<Signal> for SignalingMessage {
    fn from(s: Signal) -> Self {
        let mut m = SignalingMessage::new(s.kind());
        match s {
            Signal::Auth { token, name } => {
                m.token = token;
                m.name = name;
            }
            Signal::AuthOk => m.status = "ok".to_owned(),
            Signal::Presence | Signal::PresenceAck => {}
            Signal::ConnectRequest { target_device_id } => m.target_device_id = target_device_id,
            Signal::SdpOffer {
                target_device_id,
                sdp,
            }
            | Signal::SdpAnswer {
                target_device_id,
                sdp,
            } => {
                m.target_device_id = target_device_id;
                m.sdp = sdp;
            }
            Signal::IceCandidate {
                target_device_id,
                candidate,
                sdp_mid,
                sdp_m_line_index,
            } => {
                m.target_device_id = target_device_id;
                m.candidate = candidate;
                m.sdp_mid = sdp_mid;
                m.sdp_m_line_index = sdp_m_line_index;
            }
            Signal::ConnectionRejected {
                target_device_id,
                reason,
            } => {
                m.target_device_id = target_device_id;
                m.reason = reason;
            }
            Signal::HostOnline { device_id, name }
            | Signal::MobileNameUpdated { device_id, name } => {
                m.device_id = device_id;
                m.name = name;
            }
            Signal::HostOffline { device_id } => m.device_id = device_id,
            Signal::PairComplete {
                mobile_device_id,
                mobile_x25519_public_key,
                mobile_name,
                mobile_confirmation,
            } => {
                m.mobile_device_id = mobile_device_id;
                m.mobile_x25519_public_key = mobile_x25519_public_key;
                m.mobile_name = mobile_name;
                m.mobile_confirmation = mobile_confirmation;
            }
            Signal::DeviceUnpaired {
                reason,
                host_device_id,
                host_name,
            } => {
                m.reason = reason;
                m.host_device_id = host_device_id;
                m.host_name = host_name;
            }
            Signal::Error { error } => m.error = error,
            Signal::Other(other) => return other,
        }
        m
    }
}

impl From<SignalingMessage> for Signal {
    fn from(m: SignalingMessage) -> Self {
        let c = m.clone();
        let typed = match m.kind.as_str() {
            kind::AUTH if m.status == "ok" => Signal::AuthOk,
            kind::AUTH => Signal::Auth {
                token: c.token,
                name: c.name,
            },
            kind::PRESENCE => Signal::Presence,
            kind::PRESENCE_ACK => Signal::PresenceAck,
            kind::CONNECT_REQUEST => Signal::ConnectRequest {
                target_device_id: c.target_device_id,
            },
            kind::SDP_OFFER => Signal::SdpOffer {
                target_device_id: c.target_device_id,
                sdp: c.sdp,
            },
            kind::SDP_ANSWER => Signal::SdpAnswer {
                target_device_id: c.target_device_id,
                sdp: c.sdp,
            },
            kind::ICE_CANDIDATE => Signal::IceCandidate {
                target_device_id: c.target_device_id,
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_m_line_index: c.sdp_m_line_index,
            },
            kind::CONNECTION_REJECTED => Signal::ConnectionRejected {
                target_device_id: c.target_device_id,
                reason: c.reason,
            },
            kind::HOST_ONLINE => Signal::HostOnline {
                device_id: c.device_id,
                name: c.name,
            },
            kind::HOST_OFFLINE => Signal::HostOffline {
                device_id: c.device_id,
            },
            kind::PAIR_COMPLETE => Signal::PairComplete {
                mobile_device_id: c.mobile_device_id,
                mobile_x25519_public_key: c.mobile_x25519_public_key,
                mobile_name: c.mobile_name,
                mobile_confirmation: c.mobile_confirmation,
            },
            kind::DEVICE_UNPAIRED => Signal::DeviceUnpaired {
                reason: c.reason,
                host_device_id: c.host_device_id,
                host_name: c.host_name,
            },
            kind::MOBILE_NAME_UPDATED => Signal::MobileNameUpdated {
                device_id: c.device_id,
                name: c.name,
            },
            kind::ERROR => Signal::Error { error: c.error },
            _ => return Signal::Other(m),
        };
        // Only accept the typed variant if it carries every field of the
        // message; otherwise keep the message whole so nothing is lost.
        if SignalingMessage::from(typed.clone()) == m {
            typed
        } else {
            Signal::Other(m)
        }
    }
}
