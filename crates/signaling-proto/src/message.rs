//! `SignalingMessage`: the flat JSON object carried in every WebSocket text
//! frame (signaling.md §6), with omit-when-empty fields.

use serde::{Deserialize, Deserializer, Serialize};

use crate::consts::MAX_WS_MESSAGE;
use crate::error::ProtoError;

/// One WebSocket signaling message.
///
/// Every field is optional on the wire: empty strings are omitted when
/// serializing and absent (or `null`) fields read as empty. `sdpMLineIndex`
/// is omitted only when `None`; `Some(0)` is kept. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalingMessage {
    /// Message kind, JSON `type` (e.g. `auth`, `sdp_offer`).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,
    /// JWT in `auth`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub token: String,
    /// Device name (`auth`, `host_online`, `mobile_name_updated`).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// `ok` in the `auth` reply.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub status: String,
    /// Error text in `error`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub error: String,
    /// Reason in `connection_rejected` and `device_unpaired`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub reason: String,
    /// Addressee (client → server) or, after relay, the sender's id.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub target_device_id: String,
    /// Subject device of `host_online`, `host_offline`, `mobile_name_updated`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub device_id: String,
    /// SDP of `sdp_offer` / `sdp_answer`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub sdp: String,
    /// ICE candidate line of `ice_candidate`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub candidate: String,
    /// Media stream id of `ice_candidate`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub sdp_mid: String,
    /// Media line index of `ice_candidate`; kept on the wire even when 0.
    #[serde(
        rename = "sdpMLineIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sdp_m_line_index: Option<u16>,
    /// `pair_complete`: the new mobile's device id.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub mobile_device_id: String,
    /// `pair_complete`: the mobile's X25519 public key (base64).
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub mobile_x25519_public_key: String,
    /// `pair_complete`: the mobile's name.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub mobile_name: String,
    /// `pair_complete`: the phone's pairing confirmation (pairing.md §9.5),
    /// relayed verbatim from `pair/complete`; the host verifies it.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub mobile_confirmation: String,
    /// `device_unpaired`: the host that dropped the pairing.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub host_device_id: String,
    /// `device_unpaired`: that host's name.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "String::is_empty"
    )]
    pub host_name: String,
}

/// Reads a JSON string or `null` (as empty), so peers that send `null` for an
/// absent field interoperate.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl SignalingMessage {
    /// A message with only `type` set.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            ..Self::default()
        }
    }

    /// Parses one WebSocket text message, rejecting texts longer than
    /// [`MAX_WS_MESSAGE`] characters before touching the JSON.
    pub fn parse(text: &str) -> Result<Self, ProtoError> {
        // Byte length bounds the character count from above, so the count is
        // only needed for long multi-byte texts.
        if text.len() > MAX_WS_MESSAGE {
            let len = text.chars().count();
            if len > MAX_WS_MESSAGE {
                return Err(ProtoError::MessageTooLarge {
                    len,
                    max: MAX_WS_MESSAGE,
                });
            }
        }
        // serde would also accept a JSON array for a struct; the wire only
        // carries objects.
        if !text.trim_start().starts_with('{') {
            return Err(ProtoError::InvalidJson("expected a JSON object".to_owned()));
        }
        serde_json::from_str(text).map_err(|e| ProtoError::InvalidJson(e.to_string()))
    }

    /// Serializes to compact JSON (empty fields omitted).
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and an integer into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A `{type:"error", error}` message.
    pub fn error(text: &str) -> Self {
        Self {
            error: text.to_owned(),
            ..Self::new(crate::kind::ERROR)
        }
    }
}
