//! The `type` strings of signaling.md §6, one constant per message kind;
//! [`crate::Signal`] and [`crate::SignalingMessage`] both speak them.

/// Client auth and its `status:"ok"` reply.
pub const AUTH: &str = "auth";
/// Client keep-alive.
pub const PRESENCE: &str = "presence";
/// Server reply to `presence`.
pub const PRESENCE_ACK: &str = "presence_ack";
/// Mobile asks a host to start WebRTC.
pub const CONNECT_REQUEST: &str = "connect_request";
/// SDP offer relay.
pub const SDP_OFFER: &str = "sdp_offer";
/// SDP answer relay.
pub const SDP_ANSWER: &str = "sdp_answer";
/// Trickle ICE candidate relay.
pub const ICE_CANDIDATE: &str = "ice_candidate";
/// A side refuses a connection.
pub const CONNECTION_REJECTED: &str = "connection_rejected";
/// A paired host came online.
pub const HOST_ONLINE: &str = "host_online";
/// A paired host went offline (or is offline).
pub const HOST_OFFLINE: &str = "host_offline";
/// A mobile completed pairing with this host.
pub const PAIR_COMPLETE: &str = "pair_complete";
/// The pairing of this mobile was removed.
pub const DEVICE_UNPAIRED: &str = "device_unpaired";
/// The paired mobile authenticated with a new name.
pub const MOBILE_NAME_UPDATED: &str = "mobile_name_updated";
/// Any failure.
pub const ERROR: &str = "error";
