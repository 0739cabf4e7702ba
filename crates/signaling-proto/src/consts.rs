//! Timing, size and naming constants shared by every signaling participant
//! (signaling.md §4–§9, pairing.md §6).

use std::time::Duration;

/// Interval between two `presence` messages of a connected client.
pub const PRESENCE_INTERVAL: Duration = Duration::from_secs(30);
/// Upper clamp of a configured presence interval.
pub const MAX_PRESENCE_INTERVAL: Duration = Duration::from_secs(45);
/// Grace added to twice the presence interval to form the client read deadline.
pub const READ_DEADLINE_GRACE: Duration = Duration::from_secs(10);
/// A cached JWT is reused while it expires later than this margin from now.
pub const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Default JWT lifetime (`exp = iat + 3600`).
pub const JWT_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// A client that failed to authenticate for this long stops retrying until woken.
pub const DORMANCY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// First reconnect backoff.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Largest reconnect backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Timeout of every signaling HTTP call.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Label of the single WebRTC DataChannel carrying the terminal protocol.
pub const DATA_CHANNEL_LABEL: &str = "terminal";
/// Largest WebSocket text message, in characters.
pub const MAX_WS_MESSAGE: usize = 16_384;
/// Largest SDP a host accepts in an answer.
pub const MAX_SDP_LEN: usize = 65_536;
/// Largest HTTP response body a client reads.
pub const MAX_HTTP_BODY: usize = 65_536;
/// Largest body a client reads from a failed WebSocket upgrade.
pub const MAX_WS_UPGRADE_ERROR_BODY: usize = 4_096;
/// Allowed clock difference for signed requests, in seconds.
pub const SIGNING_SKEW_SECS: i64 = 60;
/// How long a request nonce is remembered by the server's replay cache, in seconds.
pub const REPLAY_WINDOW_SECS: i64 = 120;
/// How long the host caches TURN credentials.
pub const TURN_CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// Lifetime of a TURN REST credential issued by the server.
pub const TURN_CREDENTIAL_TTL: Duration = Duration::from_secs(60 * 60);
/// Lifetime of a pairing code and the host's wait for `pair_complete`.
pub const PAIRING_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Lifetime of a challenge nonce.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// The server idle-reaps a socket silent for this long.
pub const SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How far in the future a JWT `iat` may lie, in seconds.
pub const JWT_IAT_LEEWAY_SECS: i64 = 60;
/// Open sockets allowed per device.
pub const MAX_SOCKETS_PER_DEVICE: usize = 5;
/// API version path segment used when none is configured.
pub const DEFAULT_API_VERSION: &str = "v1";
/// Request-signing header: Unix seconds.
pub const HEADER_TIMESTAMP: &str = "muxlink-timestamp";
/// Request-signing header: fresh hex nonce.
pub const HEADER_NONCE: &str = "muxlink-nonce";
/// Request-signing header: hex HMAC-SHA256.
pub const HEADER_SIGNATURE: &str = "muxlink-signature";
/// Allowed-device sentinel when the host has no pairing record.
pub const UNPAIRED_SENTINEL: &str = "!unpaired";
/// Allowed-device sentinel when the pairing record could not be loaded.
pub const LOAD_ERROR_SENTINEL: &str = "!invalid-load-error";
/// JWT `aud` claim.
pub const JWT_AUDIENCE: &str = "muxlink";
/// Device type of a host (JWT `deviceType`).
pub const DEVICE_TYPE_HOST: &str = "host";
/// Device type of a mobile (JWT `deviceType`).
pub const DEVICE_TYPE_MOBILE: &str = "mobile";
/// `connection_rejected.reason`: sender is not the paired device.
pub const REASON_NOT_PAIRED: &str = "not_paired";
/// `connection_rejected.reason`: host is at its peer limit.
pub const REASON_ALREADY_CONNECTED: &str = "already_connected";
/// `device_unpaired.reason`: the host paired another mobile.
pub const UNPAIR_REPLACED: &str = "replaced_by_new_pairing";
/// `device_unpaired.reason`: the host removed the pairing.
pub const UNPAIR_HOST_UNPAIRED: &str = "host_unpaired";
/// `device_unpaired.reason`: the host deleted its device record.
pub const UNPAIR_HOST_UNINSTALLED: &str = "host_uninstalled";
/// WS `error` text for a message above [`MAX_WS_MESSAGE`].
pub const ERR_MESSAGE_TOO_LARGE: &str = "Message too large";
/// WS `error` text for a message other than `auth` before authentication.
pub const ERR_NOT_AUTHENTICATED: &str = "Not authenticated";
/// HTTP `error` text for a missing, used or expired pairing code.
pub const ERR_INVALID_PAIRING_CODE: &str = "Invalid or expired pairing code";
/// HTTP `error` text for `/auth/token` when the device is not registered.
pub const ERR_UNKNOWN_DEVICE: &str = "unknown device";
/// WS close code: idle socket reaped.
pub const CLOSE_IDLE: u16 = 1000;
/// WS close code: too many sockets for the device.
pub const CLOSE_TOO_MANY_SOCKETS: u16 = 1008;
/// WS close code: message too large.
pub const CLOSE_MESSAGE_TOO_LARGE: u16 = 1009;
/// WS close code: socket error.
pub const CLOSE_SOCKET_ERROR: u16 = 1011;
/// WS close code: authentication failed or token missing.
pub const CLOSE_AUTH_FAILED: u16 = 4001;
/// WS close code: device not found.
pub const CLOSE_DEVICE_NOT_FOUND: u16 = 4004;
