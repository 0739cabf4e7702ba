//! Building the API base URL, the WebSocket URL and the signed request path
//! from a bare server URL and an API version (signaling.md §1).

/// `server_url` + `/` + `version` (no prefix when `version` is empty), e.g.
/// `http://127.0.0.1:5000/v1`. A trailing `/` on `server_url` is dropped.
pub fn api_base(server_url: &str, version: &str) -> String {
    let base = server_url.trim_end_matches('/');
    let version = version.trim_matches('/');
    if version.is_empty() {
        base.to_owned()
    } else {
        format!("{base}/{version}")
    }
}

/// The WebSocket URL: [`api_base`] + `/ws` with `http`→`ws`, `https`→`wss`.
pub fn ws_url(server_url: &str, version: &str) -> String {
    let base = api_base(server_url, version);
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base
    };
    format!("{base}/ws")
}

/// The URL path that is signed and routed, e.g. `/v1/auth/token`.
pub fn api_path(version: &str, path: &str) -> String {
    let version = version.trim_matches('/');
    let path = path.trim_start_matches('/');
    if version.is_empty() {
        format!("/{path}")
    } else {
        format!("/{version}/{path}")
    }
}
