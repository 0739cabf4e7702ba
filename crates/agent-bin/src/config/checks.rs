//! Checks of single settings, each giving the error that names its key:
//! the server URL (with a scheme added when missing), the API version, the
//! fallback STUN URL, and the warning for a server URL a phone cannot use.

use crate::error::CliError;

/// Checks a server URL: `http`/`https` with a host, no query/fragment; returns
/// it without a trailing slash. A URL without a scheme (`localhost:8080`,
/// `signal.example.net`) gets `http://` for a loopback host and `https://`
/// otherwise.
pub fn validate_server_url(raw: &str) -> Result<String, CliError> {
    let bad = |why: &str| CliError::BadUrl {
        url: raw.to_string(),
        reason: why.to_string(),
    };
    let trimmed = raw.trim();
    let with_scheme;
    let raw = if !trimmed.contains("://") && !trimmed.is_empty() && !trimmed.contains(' ') {
        let probe =
            url::Url::parse(&format!("http://{trimmed}")).map_err(|e| bad(&e.to_string()))?;
        let scheme = match probe.host() {
            Some(host) if is_loopback(&host) => "http",
            _ => "https",
        };
        with_scheme = format!("{scheme}://{trimmed}");
        with_scheme.as_str()
    } else {
        raw
    };
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("there is no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not carry a query or fragment"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// Checks an API version (`MUXLINK_API_VERSION` or `api_version`): one path
/// segment of letters, digits, `.`, `_` or `-`, or empty for no prefix.
pub fn validate_api_version(raw: &str) -> Result<String, CliError> {
    let version = raw.trim().trim_matches('/');
    let ok = version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok || version.len() > 32 {
        return Err(CliError::BadConfig(format!(
            "API version {:?} (MUXLINK_API_VERSION / api_version): write one path segment such as v1, or \"\" for none",
            crate::printable::printable(raw)
        )));
    }
    Ok(version.to_owned())
}

/// Checks a fallback STUN URL (`MUXLINK_STUN_URL` or `stun_url`):
/// `stun:host[:port]` (the WebRTC stack speaks STUN over UDP only).
pub fn validate_stun_url(raw: &str) -> Result<String, CliError> {
    let url = raw.trim();
    let rest = url.strip_prefix("stun:").unwrap_or_default();
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ', '@']) {
        return Err(CliError::BadConfig(format!(
            "STUN URL {:?} (MUXLINK_STUN_URL / stun_url): write it as stun:host[:port], e.g. stun:signal.example.net:3478",
            crate::printable::printable(raw)
        )));
    }
    Ok(url.to_string())
}

/// True for `localhost` (and its subdomains), 127.0.0.0/8 and ::1.
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    }
}

/// True for addresses only reachable on a local network: 10/8, 172.16/12,
/// 192.168/16, 169.254/16, 100.64/10 (carrier NAT), fc00::/7, fe80::/10 and
/// `.local` / `.lan` / `.home.arpa` names.
fn is_private(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            [".local", ".lan", ".home.arpa", ".internal"]
                .iter()
                .any(|suffix| d.ends_with(suffix))
                || !d.contains('.')
        }
        url::Host::Ipv4(a) => {
            a.is_private()
                || a.is_link_local()
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)
        }
        url::Host::Ipv6(a) => {
            let first = a.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// One warning line when `server_url` (already validated) cannot work from a
/// phone: a loopback host (only this computer reaches it), plain `http://` to
/// another host (phone browsers give the web client WebCrypto only on https),
/// or a private-network address (the phone must be on that network).
pub fn phone_reachability_warning(server_url: &str) -> Option<String> {
    let url = url::Url::parse(server_url).ok()?;
    let host = url.host()?;
    let shown = url.host_str().unwrap_or_default();
    if is_loopback(&host) {
        return Some(format!(
            "warning: {shown} is this computer's loopback address: a phone cannot reach it (only `muxlink-phone` on this machine can); use a name or address the phone can reach"
        ));
    }
    let private = is_private(&host);
    if url.scheme() == "http" {
        let lan = if private {
            ", and a private address is reachable only from the same network"
        } else {
            ""
        };
        return Some(format!(
            "warning: {server_url} is plain http: phone browsers allow the web client's cryptography only over https (use `muxlink serve --tls-cert/--tls-key` or a TLS proxy){lan}"
        ));
    }
    private.then(|| {
        format!(
            "warning: {shown} is a private-network address: the phone must be on the same network (or VPN) to reach it"
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    #[test]
    fn bad_urls_are_rejected() {
        for u in ["ftp://x", "not a url", "http://", "http://x/?q=1"] {
            assert!(validate_server_url(u).is_err(), "{u}");
        }
        assert_eq!(
            validate_server_url("https://signal.example.net/").unwrap(),
            "https://signal.example.net"
        );
    }

    #[test]
    fn a_url_without_a_scheme_gets_one() {
        for (given, stored) in [
            ("localhost:8080", "http://localhost:8080"),
            ("127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("[::1]:9", "http://[::1]:9"),
            ("signal.example.net", "https://signal.example.net"),
            ("192.168.1.5:8443", "https://192.168.1.5:8443"),
        ] {
            assert_eq!(validate_server_url(given).unwrap(), stored, "{given}");
        }
    }

    #[test]
    fn urls_a_phone_cannot_use_get_one_warning() {
        let w = |u: &str| phone_reachability_warning(u).unwrap_or_default();
        assert!(w("http://localhost:8080").contains("loopback"));
        assert!(w("https://127.0.0.1").contains("loopback"));
        assert!(w("http://signal.example.net").contains("https"));
        let lan = w("http://192.168.1.5:8080");
        assert!(
            lan.contains("https") && lan.contains("same network"),
            "{lan}"
        );
        assert!(w("https://10.0.0.2").contains("private-network"));
        assert!(w("https://box.local").contains("private-network"));
        assert_eq!(
            phone_reachability_warning("https://signal.example.net"),
            None
        );
        assert_eq!(phone_reachability_warning("https://203.0.113.9:443"), None);
    }

    #[test]
    fn api_version_is_one_segment() {
        assert_eq!(validate_api_version("v2").unwrap(), "v2");
        assert_eq!(validate_api_version("/v2/").unwrap(), "v2");
        assert_eq!(validate_api_version("").unwrap(), "");
        for bad in ["v1/x", "v 1", "v1?x"] {
            let e = validate_api_version(bad).unwrap_err().to_string();
            assert!(e.contains("api_version"), "{bad}: {e}");
        }
    }
}
