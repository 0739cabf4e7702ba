//! `muxlink serve`: the bundled signaling server (the signaling-server library)
//! in the foreground until Ctrl-C or SIGTERM.

use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};

use crate::config::Overrides;
use crate::error::CliError;

/// Runs the server; prints `listening on <URL>` on stdout once it accepts connections.
pub async fn serve(bind: &str, db: Option<&Path>, o: &Overrides) -> Result<(), CliError> {
    let addr: std::net::SocketAddr = bind.parse().map_err(|_| {
        CliError::Other(format!(
            "invalid --bind address {bind:?}: use host:port, e.g. 127.0.0.1:8080"
        ))
    })?;
    let mut config = signaling_server::ServerConfig {
        bind: addr,
        hmac_secret: o.hmac_secret.clone().unwrap_or_default(),
        ..Default::default()
    };
    if let Some(db) = db {
        config.database = Some(db.to_path_buf());
    }
    let server = signaling_server::Server::start(config)
        .await
        .map_err(|e| CliError::Other(format!("cannot start the server on {bind}: {e}")))?;
    println!("listening on {}", server.url());
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::Other(format!("cannot install signal handlers: {e}")))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.shutdown().await;
    Ok(())
}
