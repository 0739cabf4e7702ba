//! Pairing v2 from the QR payload (spec pairing.md §2 step 5–6, §8, §9): derive
//! the secret from the QR's host key and token, prove the identity, send our
//! X25519 key with the confirmation MAC the host checks, and check the reply
//! against the QR.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signaling_client::http::{fetch_challenge, signed_json};
use signaling_proto::consts::DEFAULT_API_VERSION;
use signaling_proto::{
    PairCompleteRequest, PairCompleteResponse, QrPayload, derive_pairing_secret,
    pairing_confirmation,
};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::ClientError;
use crate::http::blocking;
use crate::identity::PhoneIdentity;
use crate::store::PairingRecord;

/// Completes a pairing from the QR payload text and returns the record to store.
/// Nothing is stored here; the caller saves the record only on success.
pub async fn pair(
    identity: &PhoneIdentity,
    payload: &str,
    name: Option<&str>,
    hmac_secret: &str,
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
    let secret = hmac_secret.to_owned();
    let code = qr.code.clone();
    let name = name.map(str::to_owned);
    let resp: PairCompleteResponse = blocking(move || {
        let device_id = identity2.device_id().to_owned();
        let nonce = fetch_challenge(&server_url, DEFAULT_API_VERSION, &secret, &device_id)?;
        let signature = identity2.sign_challenge(&nonce);
        let resp = signed_json(
            "POST",
            &server_url,
            DEFAULT_API_VERSION,
            "/auth/pair/complete",
            &secret,
            None,
            Some(&PairCompleteRequest {
                pairing_code: code,
                device_id,
                ed25519_public_key: identity2.public_key_b64(),
                x25519_public_key: x25519,
                name,
                nonce,
                signature,
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
