//! Pairing (pairing.md §2): `POST /auth/pair/initiate` (the host asks for a
//! code), `POST /auth/pair/complete` (the phone redeems it; its confirmation
//! is relayed to the host) and `DELETE /auth/pairing`, with the
//! `device_unpaired` notices and the deletion of phones left unpaired.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use signaling_proto::consts::*;
use signaling_proto::{
    MAX_CONFIRMATION_LEN, PairCompleteRequest, PairCompleteResponse, PairInitiateRequest,
    PairInitiateResponse, RemovedResponse, SignalingMessage, signal::kind, verify_challenge,
};

use super::St;
use super::extract::{Client, bearer, check_name, consume_challenge, identity_keys, parse_body};
use crate::api_error::ApiError;
use crate::rate_limit::{Endpoint, RateKey};
use crate::state::AppState;
use crate::store::{Device, DeviceType, PendingPairing};

/// The 400 message for a `pair/complete` without a confirmation.
const ERR_NO_CONFIRMATION: &str = "missing confirmation: pairing v2 needs the phone's confirmation \
     (update the phone's muxlink and scan the host's QR code again)";

/// pairing.md §9.5: `confirmation` is opaque to the server but REQUIRED, a
/// non-empty string of at most [`MAX_CONFIRMATION_LEN`] characters.
fn check_confirmation(confirmation: &str) -> Result<(), ApiError> {
    if confirmation.is_empty() {
        return Err(ApiError::bad_request(ERR_NO_CONFIRMATION));
    }
    if confirmation.chars().count() > MAX_CONFIRMATION_LEN {
        return Err(ApiError::bad_request(format!(
            "confirmation is longer than {MAX_CONFIRMATION_LEN} characters"
        )));
    }
    Ok(())
}

pub(super) async fn pair_initiate(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<PairInitiateResponse>, ApiError> {
    st.rate(Endpoint::PairInitiate, client.rate())?;
    let req: PairInitiateRequest = parse_body(&body)?;
    let key = identity_keys(
        &req.device_id,
        &req.ed25519_public_key,
        &req.x25519_public_key,
    )?;
    check_name(&req.name)?;
    consume_challenge(&st, &req.device_id, &req.nonce).await?;
    let id = req.device_id.clone();
    let stored = st.db.device(&id).await?;
    // A host that outlived its unpaired lifetime registers anew.
    let expired = stored.as_ref().is_some_and(|d| st.is_expired(d));
    let existing = stored.filter(|_| !expired);
    // The device id is derived from the key, so a stored key equals the body key.
    let verify_key = existing.as_ref().map_or(key, |d| d.public_key);
    verify_challenge(&verify_key, &req.device_id, &req.nonce, &req.signature)
        .map_err(|_| ApiError::unauthorized("invalid signature"))?;
    if existing
        .as_ref()
        .is_some_and(|d| d.device_type != DeviceType::Host)
    {
        return Err(ApiError::new(StatusCode::CONFLICT, "device type conflict"));
    }
    if existing.is_none() {
        st.rate(Endpoint::Register, RateKey::Prefix(client.0.prefix()))?;
    }
    let host = Device {
        id: req.device_id.clone(),
        device_type: DeviceType::Host,
        public_key: key,
        name: req.name.clone().unwrap_or_default(),
        created_at: st.now(),
        ever_paired: false,
    };
    let host_name = if host.name.is_empty() {
        existing.map(|d| d.name).unwrap_or_default()
    } else {
        host.name.clone()
    };
    if expired {
        st.db.delete_device(&host.id).await?;
    }
    st.db.upsert_device(&host).await?;
    let pending = PendingPairing {
        host_id: req.device_id.clone(),
        host_x25519_public_key: req.x25519_public_key.clone(),
        host_name,
    };
    let code = st
        .db
        .create_pairing_code(&pending, st.now(), &st.bounds)
        .await?
        .ok_or_else(|| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many pending pairings")
        })?;
    tracing::info!(host = %req.device_id, "pairing initiated");
    Ok(Json(PairInitiateResponse { pairing_code: code }))
}

pub(super) async fn pair_complete(
    State(st): St,
    client: Client,
    body: Bytes,
) -> Result<Json<PairCompleteResponse>, ApiError> {
    st.rate(Endpoint::PairComplete, client.rate())?;
    let prefix = client.0.prefix();
    if let Some(retry) = st
        .db
        .guess_budget_spent(prefix, st.now(), &st.bounds)
        .await?
    {
        return Err(ApiError {
            message: "too many failed pairing attempts".to_owned(),
            ..ApiError::rate_limited(retry)
        });
    }
    // An absent `confirmation` reads as empty and gets the same answer.
    let req: PairCompleteRequest = parse_body(&body)?;
    // Checked before the challenge and the code are consumed, so a malformed
    // request burns neither.
    check_confirmation(&req.confirmation)?;
    let key = identity_keys(
        &req.device_id,
        &req.ed25519_public_key,
        &req.x25519_public_key,
    )?;
    check_name(&req.name)?;
    consume_challenge(&st, &req.device_id, &req.nonce).await?;
    verify_challenge(&key, &req.device_id, &req.nonce, &req.signature)
        .map_err(|_| ApiError::unauthorized("invalid signature"))?;
    let id = req.device_id.clone();
    // Check the type before burning the code, so a conflict leaves it usable.
    let known = st.db.device(&id).await?;
    if known
        .as_ref()
        .is_some_and(|d| d.device_type != DeviceType::Mobile)
    {
        return Err(ApiError::new(StatusCode::CONFLICT, "device type conflict"));
    }
    if known.is_none() {
        st.rate(Endpoint::Register, RateKey::Prefix(prefix))?;
    }
    let now = st.now();
    let code = req.pairing_code.trim().to_ascii_uppercase();
    let redeemed = st.db.redeem_pairing_code(&code, now).await?;
    let Some(pending) = redeemed else {
        st.db.record_failed_guess(prefix, now, &st.bounds).await?;
        tracing::info!(client = %client.0, "pairing attempt with a wrong or expired code");
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ERR_INVALID_PAIRING_CODE,
        ));
    };
    let mobile = Device {
        id: req.device_id.clone(),
        device_type: DeviceType::Mobile,
        public_key: key,
        name: req.name.clone().unwrap_or_default(),
        created_at: now,
        ever_paired: false,
    };
    let host_id = pending.host_id.clone();
    let replaced = st
        .db
        .complete_pairing(&host_id, &mobile, now)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, ERR_INVALID_PAIRING_CODE)
            }
            other => other.into(),
        })?;
    if let Some(old) = replaced {
        let notice = SignalingMessage {
            reason: UNPAIR_REPLACED.to_owned(),
            host_device_id: pending.host_id.clone(),
            host_name: pending.host_name.clone(),
            ..SignalingMessage::new(kind::DEVICE_UNPAIRED)
        };
        st.hub.send(&old, &notice).await;
        drop_orphan_mobiles(&st, &[old]).await;
    }
    // The confirmation is relayed verbatim and kept nowhere else: the host
    // checks it (pairing.md §9.6), the server cannot.
    let done = SignalingMessage {
        mobile_device_id: req.device_id.clone(),
        mobile_x25519_public_key: req.x25519_public_key.clone(),
        mobile_name: req.name.clone().unwrap_or_default(),
        mobile_confirmation: req.confirmation,
        ..SignalingMessage::new(kind::PAIR_COMPLETE)
    };
    st.hub.send(&pending.host_id, &done).await;
    tracing::info!(host = %pending.host_id, mobile = %req.device_id, "pairing completed");
    Ok(Json(PairCompleteResponse {
        host_x25519_public_key: pending.host_x25519_public_key,
        host_device_id: pending.host_id,
        host_name: pending.host_name,
    }))
}

/// Tells each mobile of `pairings` whose host is `host_id` that it was unpaired.
pub(super) async fn notify_unpaired(
    st: &AppState,
    host: Option<&Device>,
    pairings: &[crate::store::Pairing],
    reason: &str,
) {
    let Some(host) = host else { return };
    for p in pairings.iter().filter(|p| p.host_id == host.id) {
        let notice = SignalingMessage {
            reason: reason.to_owned(),
            host_device_id: host.id.clone(),
            host_name: host.name.clone(),
            ..SignalingMessage::new(kind::DEVICE_UNPAIRED)
        };
        st.hub.send(&p.mobile_id, &notice).await;
    }
}

/// Deletes each of `mobiles` that no longer has a pairing, so its token
/// stops working, and closes its sockets (after anything already queued,
/// e.g. `device_unpaired`).
pub(super) async fn drop_orphan_mobiles(st: &AppState, mobiles: &[String]) {
    for id in mobiles {
        let m = id.clone();
        match st.db.delete_orphan_mobile(&m).await {
            Ok(true) => {
                tracing::info!(mobile = %id, "deleted an unpaired phone");
                st.hub
                    .kill_device(id, CLOSE_DEVICE_NOT_FOUND, "device unpaired")
                    .await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "deleting an unpaired phone failed");
                st.metrics.store_error();
            }
        }
    }
}

/// `DELETE /auth/pairing`: removes the caller's pairings; each phone left
/// without a pairing is deleted (its JWT stops working at once).
pub(super) async fn unpair(
    State(st): St,
    headers: HeaderMap,
) -> Result<Json<RemovedResponse>, ApiError> {
    let (claims, device) = bearer(&st, &headers).await?;
    st.rate(Endpoint::Pairing, RateKey::Device(claims.device_id.clone()))?;
    let id = claims.device_id.clone();
    let removed = st.db.remove_pairings(&id).await?;
    notify_unpaired(&st, Some(&device), &removed, UNPAIR_HOST_UNPAIRED).await;
    let mut mobiles: Vec<String> = removed.iter().map(|p| p.mobile_id.clone()).collect();
    if device.device_type == DeviceType::Mobile {
        mobiles.push(device.id.clone());
    }
    mobiles.dedup();
    drop_orphan_mobiles(&st, &mobiles).await;
    Ok(Json(RemovedResponse {
        removed: !removed.is_empty(),
    }))
}
