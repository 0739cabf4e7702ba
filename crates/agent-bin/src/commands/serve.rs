//! `muxlink serve`: the bundled signaling server (the signaling-server library)
//! in the foreground until Ctrl-C or SIGTERM, over https/wss when given a
//! certificate and key. Every other server setting (limits, timeouts, trusted
//! proxies, JWT secret file) comes from the standalone server's TOML file
//! named by `MUXLINK_SERVER_CONFIG`, under the flags.

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ServeArgs;
use crate::config::Overrides;
use crate::error::CliError;

/// Runs the server; prints `listening on <URL>` (`https://…` with TLS) on
/// stdout once it accepts connections.
/// `tls_cert` and `tls_key` go together; the files are checked before listening.
pub async fn serve(opts: ServeArgs, o: &Overrides) -> Result<(), CliError> {
    let ServeArgs {
        bind,
        db,
        tls_cert,
        tls_key,
        cors_origins,
        stun_bind,
    } = opts;
    let bind = bind.as_str();
    let addr = resolve_bind(bind)?;
    let tls = signaling_server::TlsFiles::from_pair(tls_cert, tls_key)
        .map_err(|e| CliError::Other(e.to_string()))?;
    let mut config = server_file()?;
    config.bind = addr;
    if let Some(secret) = &o.hmac_secret {
        config.hmac_secret = secret.clone();
    }
    if tls.is_some() {
        config.tls = tls;
    }
    if !cors_origins.is_empty() {
        config.cors_origins = cors_origins;
    }
    if let Some(db) = db {
        config.database = Some(db);
    }
    if let Some(stun) = stun_bind {
        config.stun_bind = stun;
    }
    // Installed before the `listening on` line, so a script that stops the
    // server as soon as it reads the line gets the clean shutdown, not a kill.
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| CliError::Other(format!("cannot install signal handlers: {e}")))?;
    let server = signaling_server::Server::start(config)
        .await
        .map_err(|e| CliError::Other(format!("cannot start the server on {bind}: {e}")))?;
    println!("listening on {}", server.url());
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    server.shutdown().await;
    Ok(())
}

/// `host:port` → the address to listen on: an IP address as given, or a host
/// name resolved (its first IPv4 address when it has one, so `localhost` is
/// 127.0.0.1).
fn resolve_bind(bind: &str) -> Result<std::net::SocketAddr, CliError> {
    use std::net::ToSocketAddrs as _;
    if let Ok(addr) = bind.parse() {
        return Ok(addr);
    }
    let usage = "use host:port, e.g. 127.0.0.1:8080, localhost:8080 or 0.0.0.0:443";
    let has_port = bind
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err(CliError::Other(format!(
            "invalid --bind address {bind:?}: {usage}"
        )));
    }
    let addrs: Vec<std::net::SocketAddr> = bind
        .to_socket_addrs()
        .map_err(|e| {
            CliError::Other(format!(
                "invalid --bind address {bind:?}: cannot resolve the host ({e}); {usage}"
            ))
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| {
            CliError::Other(format!(
                "invalid --bind address {bind:?}: the host has no address; {usage}"
            ))
        })
}

/// The server settings of the TOML file named by `MUXLINK_SERVER_CONFIG`
/// (the same file `muxlink-signaling-server --config` reads), or defaults.
fn server_file() -> Result<signaling_server::ServerConfig, CliError> {
    let mut config = signaling_server::ServerConfig::default();
    let Some(path) = std::env::var_os("MUXLINK_SERVER_CONFIG") else {
        return Ok(config);
    };
    let path = PathBuf::from(path);
    let shown = path.display();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CliError::Other(format!("cannot read MUXLINK_SERVER_CONFIG {shown}: {e}")))?;
    signaling_server::ConfigFile::from_toml(&text)
        .map_err(|e| CliError::Other(format!("invalid MUXLINK_SERVER_CONFIG {shown}: {e}")))?
        .apply(&mut config)
        .map_err(|e| CliError::Other(e.to_string()))?;
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn refused(cert: Option<PathBuf>, key: Option<PathBuf>) -> String {
        let o = Overrides::default();
        let opts = ServeArgs {
            bind: "127.0.0.1:0".into(),
            tls_cert: cert,
            tls_key: key,
            ..Default::default()
        };
        match serve(opts, &o).await {
            Err(CliError::Other(text)) => text,
            other => panic!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn bind_takes_host_names() {
        assert_eq!(
            resolve_bind("localhost:8080").unwrap(),
            "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve_bind("[::1]:9").unwrap(),
            "[::1]:9".parse::<std::net::SocketAddr>().unwrap()
        );
        for bad in [
            "localhost",
            "8080",
            ":8080",
            "localhost:http",
            "no-such-host.invalid:80",
        ] {
            let e = resolve_bind(bad).unwrap_err().to_string();
            assert!(e.contains("invalid --bind address"), "{bad}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[tokio::test]
    async fn tls_settings_are_checked_before_listening() {
        let e = refused(Some("cert.pem".into()), None).await;
        assert!(e.contains("--tls-key"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("cert.pem");
        let e = refused(Some(missing.clone()), Some(dir.path().join("key.pem"))).await;
        assert!(e.contains("cannot read TLS certificate file"), "{e}");
        assert!(e.contains(missing.to_str().unwrap()), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}
