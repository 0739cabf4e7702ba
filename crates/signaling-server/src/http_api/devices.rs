//! `DELETE /auth/device`, `GET /turn/credentials` and the `/ws` upgrade:
//! the endpoints for a device that already holds a token (the upgrade checks
//! the origin and the per-client and total socket limits before accepting).

use std::sync::Arc;

use axum::Json;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use signaling_proto::consts::*;
use signaling_proto::{RemovedResponse, TurnCredentials};

use super::St;
use super::extract::{Client, bearer, secs};
use super::pairing::{drop_orphan_mobiles, notify_unpaired};
use crate::api_error::ApiError;
use crate::rate_limit::{Endpoint, RateKey};
use crate::store::DeviceType;

pub(super) async fn delete_device(
    State(st): St,
    headers: HeaderMap,
) -> Result<Json<RemovedResponse>, ApiError> {
    let (claims, _) = bearer(&st, &headers).await?;
    st.rate(Endpoint::Device, RateKey::Device(claims.device_id.clone()))?;
    let id = claims.device_id.clone();
    let device = st.db.device(&id).await?;
    let removed = st.db.delete_device(&id).await?;
    let removed_pairings = removed.as_deref().unwrap_or_default();
    notify_unpaired(
        &st,
        device.as_ref(),
        removed_pairings,
        UNPAIR_HOST_UNINSTALLED,
    )
    .await;
    let mobiles: Vec<String> = removed_pairings
        .iter()
        .filter(|p| p.mobile_id != claims.device_id)
        .map(|p| p.mobile_id.clone())
        .collect();
    drop_orphan_mobiles(&st, &mobiles).await;
    st.db.cancel_pairing_code(&claims.device_id).await?;
    st.hub
        .kill_device(&claims.device_id, CLOSE_DEVICE_NOT_FOUND, "device deleted")
        .await;
    Ok(Json(RemovedResponse {
        removed: removed.is_some(),
    }))
}

pub(super) async fn turn_credentials(
    State(st): St,
    headers: HeaderMap,
) -> Result<Json<TurnCredentials>, ApiError> {
    let (claims, device) = bearer(&st, &headers).await?;
    st.rate(Endpoint::Turn, RateKey::Device(claims.device_id.clone()))?;
    // TURN relays cost bandwidth: only for a device that is paired now.
    let id = device.id.clone();
    let paired = match device.device_type {
        DeviceType::Host => st.db.paired_mobile(&id).await?.is_some(),
        DeviceType::Mobile => !st.db.paired_hosts(&id).await?.is_empty(),
    };
    if !paired {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "turn credentials are only for paired devices",
        ));
    }
    let turn = &st.config.turn;
    if turn.secret.is_empty() {
        return Ok(Json(TurnCredentials {
            urls: turn.urls.clone(),
            username: turn.username.clone(),
            credential: turn.credential.clone(),
        }));
    }
    let username = format!(
        "{}:{}",
        st.now().saturating_add(secs(turn.ttl)),
        claims.device_id
    );
    let mut mac = <Hmac<sha1::Sha1> as hmac::Mac>::new_from_slice(turn.secret.as_bytes())
        .map_err(|_| ApiError::new(StatusCode::BAD_GATEWAY, "turn credentials unavailable"))?;
    mac.update(username.as_bytes());
    let credential = STANDARD.encode(mac.finalize().into_bytes());
    Ok(Json(TurnCredentials {
        urls: turn.urls.clone(),
        username,
        credential,
    }))
}

pub(super) async fn ws_upgrade(
    State(st): St,
    client: Client,
    conn: Option<axum::Extension<crate::slots::ConnSlot>>,
    headers: HeaderMap,
    uri: Uri,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let own = crate::cors::own_authorities(&headers, &uri);
    if !st
        .cors
        .ws_origin_allowed(crate::cors::request_origin(&headers), &own)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin not allowed: add it to the server's --cors-origin list",
        )
        .into_response();
    }
    let Ok(upgrade) = upgrade else {
        return ApiError::new(StatusCode::UPGRADE_REQUIRED, "websocket upgrade required")
            .into_response();
    };
    if let Err(e) = st.rate(Endpoint::Ws, client.rate()) {
        return e.into_response();
    }
    let Some(client_slot) = st.client_sockets.acquire(Some(client.0)) else {
        return ApiError {
            message: "too many connections from this address".to_owned(),
            ..ApiError::rate_limited(10)
        }
        .into_response();
    };
    let Ok(permit) = Arc::clone(&st.sockets).try_acquire_owned() else {
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many connections")
            .into_response();
    };
    let frame = st.config.limits.max_ws_frame.max(MAX_WS_MESSAGE * 4);
    // Held from here so a shutdown racing the upgrade still waits for it.
    let tracked = st.socket_tasks.token();
    upgrade
        // Small initial buffers keep idle sockets cheap; they grow per message.
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(frame)
        .max_frame_size(frame)
        .on_upgrade(move |socket| async move {
            crate::ws::serve_socket(st, socket, permit).await;
            drop((tracked, client_slot, conn));
        })
}
