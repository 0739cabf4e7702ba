//! The signaling WebSocket's way through a proxy: the same environment the
//! HTTP calls honour (ureq's reading of `ALL_PROXY`, `HTTPS_PROXY`,
//! `HTTP_PROXY` and `NO_PROXY`, upper or lower case), and the HTTP CONNECT
//! tunnel opened on a plain TCP stream before the TLS and WebSocket
//! handshakes. Only `http://` proxies are spoken; a SOCKS or `https://`
//! proxy is refused with a message saying so.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest CONNECT reply head read from a proxy.
const MAX_CONNECT_REPLY: usize = 8 * 1024;

/// Why no tunnel was opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The configured proxy speaks a protocol the dial does not (permanent).
    #[error(
        "the proxy {proxy} from the environment is {protocol}; the signaling WebSocket can only go through an http:// proxy (HTTP CONNECT): set HTTPS_PROXY to one, or add the server to NO_PROXY"
    )]
    Unsupported {
        /// `host:port` of the proxy.
        proxy: String,
        /// Its protocol, e.g. `socks5`.
        protocol: &'static str,
    },
    /// The proxy could not be reached or refused the tunnel (transient).
    #[error("proxy {proxy}: {detail}")]
    Tunnel {
        /// `host:port` of the proxy.
        proxy: String,
        /// What went wrong.
        detail: String,
    },
}

/// The proxy the environment names for `host` (ureq's rules, so HTTP calls
/// and the WebSocket agree), or `None` for a direct connection.
pub(crate) fn from_env(host: &str, port: u16) -> Option<ureq::Proxy> {
    let proxy = ureq::Proxy::try_from_env()?;
    let target: ureq::http::Uri = format!("http://{}", authority(host, port)).parse().ok()?;
    (!proxy.is_no_proxy(&target)).then_some(proxy)
}

/// `host:port`, with an IPv6 literal in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Opens a TCP connection to `proxy` and asks it for a CONNECT tunnel to
/// `host:port`; on `200` the stream carries the tunnel.
pub(crate) async fn connect_tunnel(
    proxy: &ureq::Proxy,
    host: &str,
    port: u16,
) -> Result<TcpStream, ProxyError> {
    let shown = authority(proxy.host(), proxy.port());
    let protocol = match proxy.protocol() {
        ureq::ProxyProtocol::Http => None,
        ureq::ProxyProtocol::Https => Some("https"),
        ureq::ProxyProtocol::Socks4 => Some("socks4"),
        ureq::ProxyProtocol::Socks4A => Some("socks4a"),
        ureq::ProxyProtocol::Socks5 => Some("socks5"),
        _ => Some("socks5h"),
    };
    if let Some(protocol) = protocol {
        return Err(ProxyError::Unsupported {
            proxy: shown,
            protocol,
        });
    }
    let tunnel = |detail: String| ProxyError::Tunnel {
        proxy: shown.clone(),
        detail,
    };
    let mut stream = TcpStream::connect((proxy.host(), proxy.port()))
        .await
        .map_err(|e| tunnel(format!("cannot connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let target = authority(host, port);
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(user) = proxy.username() {
        let credentials = format!("{user}:{}", proxy.password().unwrap_or_default());
        head.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            STANDARD.encode(credentials)
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| tunnel(format!("cannot send CONNECT: {e}")))?;
    let reply = read_head(&mut stream)
        .await
        .map_err(|e| tunnel(format!("no CONNECT reply: {e}")))?;
    let status_line = reply.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") || status != "200" {
        return Err(tunnel(format!(
            "refused the tunnel to {target}: {status_line}"
        )));
    }
    Ok(stream)
}

/// Reads a reply head up to the blank line, byte by byte so nothing of the
/// tunnel's own traffic is consumed.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_REPLY {
            return Err(std::io::Error::other("reply head too long"));
        }
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_authority_keeps_brackets() {
        assert_eq!(authority("::1", 443), "[::1]:443");
        assert_eq!(authority("[::1]", 443), "[::1]:443");
        assert_eq!(authority("h", 80), "h:80");
    }

    #[tokio::test]
    async fn a_socks_proxy_is_refused_in_words() {
        let proxy = ureq::Proxy::new("socks5://127.0.0.1:1080").unwrap();
        let err = connect_tunnel(&proxy, "127.0.0.1", 5000).await.unwrap_err();
        assert!(matches!(
            err,
            ProxyError::Unsupported {
                protocol: "socks5",
                ..
            }
        ));
        assert!(
            err.to_string().contains("only go through an http:// proxy"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_refused_connect_is_a_tunnel_error_naming_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let _ = read_head(&mut conn).await;
            let _ = conn.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        });
        let proxy = ureq::Proxy::new(&format!("http://{addr}")).unwrap();
        let err = connect_tunnel(&proxy, "127.0.0.1", 5000).await.unwrap_err();
        assert!(err.to_string().contains("403 Forbidden"), "{err}");
    }
}
