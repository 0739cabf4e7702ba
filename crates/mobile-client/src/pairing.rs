//! Pairing v2 from the QR payload (spec pairing.md §2 step 5–6, §8, §9): derive
//! the secret from the QR's host key and token, prove the identity, send our
//! X25519 key with the confirmation MAC the host checks, and check the reply
//! against the QR.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signaling_client::http::{signed_challenge, signed_json};
use signaling_proto::{
    PairCompleteRequest, PairCompleteResponse, QrPayload, derive_pairing_secret,
    pairing_confirmation,
};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::ClientError;
use crate::http::blocking;
use crate::identity::PhoneIdentity;
use crate::store::PairingRecord;

/// How the server of the QR payload is spoken to: the API version it serves
/// and its request-signing secret (the payload carries only its URL).
#[derive(Debug, Clone)]
pub struct ServerAccess {
    /// API version (`v1` by default; empty: no prefix).
    pub api_version: String,
    /// Request-signing secret (empty: no signing headers).
    pub hmac_secret: String,
}

/// Completes a pairing from the QR payload text and returns the record to store.
/// Nothing is stored here; the caller saves the record only on success.
pub async fn pair(
    identity: &PhoneIdentity,
    payload: &str,
    name: Option<&str>,
    server: &ServerAccess,
) -> Result<PairingRecord, ClientError> {
    let qr = QrPayload::parse(payload.trim()).map_err(payload_error)?;
    let host_key = qr.host_x25519_bytes().map_err(payload_error)?;
    if let Some(n) = name {
        signaling_proto::validate_name(n).map_err(|e| ClientError::Payload(e.to_string()))?;
    }
    // A fresh pairing key per attempt; dropped (and zeroized) when this returns.
    let own = StaticSecret::random_from_rng(rand::rngs::OsRng);
    let own_public = PublicKey::from(&own);
    // K comes from the QR's key and token alone (authenticated by the camera),
    // so it is known before the server is asked anything.
    let secret_key = derive_pairing_secret(&own, &host_key, &qr.token)
        .map_err(|e| ClientError::Payload(e.to_string()))?;
    let x25519 = STANDARD.encode(own_public.as_bytes());
    let confirmation = pairing_confirmation(
        &secret_key,
        identity.device_id(),
        &x25519,
        &qr.host_device_id,
    );

    let identity2 = identity.clone();
    let server_url = qr.server_url.clone();
    let ServerAccess {
        api_version,
        hmac_secret: secret,
    } = server.clone();
    let code = qr.code.clone();
    let name = name.map(str::to_owned);
    let resp: PairCompleteResponse = blocking(move || {
        let proof = signed_challenge(&identity2, &server_url, &api_version, &secret)?;
        let resp = signed_json(
            "POST",
            &server_url,
            &api_version,
            "/auth/pair/complete",
            &secret,
            None,
            Some(&PairCompleteRequest {
                pairing_code: code,
                device_id: proof.device_id,
                ed25519_public_key: identity2.public_key_b64(),
                x25519_public_key: x25519,
                name,
                nonce: proof.nonce,
                signature: proof.signature,
                confirmation,
            }),
        )?;
        Ok(resp)
    })
    .await?;

    // The QR code was read by the camera; the server may lie.
    if resp.host_device_id != qr.host_device_id {
        return Err(ClientError::PairingMismatch("host device id"));
    }
    let reply_key = signaling_proto::decode_public_key(&resp.host_x25519_public_key).ok();
    if reply_key != Some(host_key) {
        return Err(ClientError::PairingMismatch("host key"));
    }
    Ok(PairingRecord {
        host_device_id: qr.host_device_id.clone(),
        host_name: resp.host_name,
        server_url: qr.server_url.clone(),
        secret: *secret_key,
    })
}

/// A payload error without its own "invalid pairing payload" prefix, which
/// [`ClientError::Payload`] adds.
fn payload_error(e: signaling_proto::ProtoError) -> ClientError {
    match e {
        signaling_proto::ProtoError::InvalidQr(why) => ClientError::Payload(why.to_owned()),
        other => ClientError::Payload(other.to_string()),
    }
}
