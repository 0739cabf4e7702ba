//! The DTLS certificate fingerprints of a connection, as channel
//! authentication v2 needs them (terminal-protocol.md §12): our own from our
//! certificate, the other end's from the certificate it actually presented in
//! the DTLS handshake — never from SDP text, which a relay can rewrite or pad
//! with extra `a=fingerprint` lines.

/// Bytes of a SHA-256 fingerprint.
pub const FINGERPRINT_LEN: usize = 32;

/// SHA-256 over the DER of each end's DTLS certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtlsFingerprints {
    /// Our own certificate's fingerprint.
    pub local: [u8; FINGERPRINT_LEN],
    /// The fingerprint of the certificate the remote end presented.
    pub remote: [u8; FINGERPRINT_LEN],
}

/// SHA-256 of a DER certificate.
pub fn fingerprint_of_der(der: &[u8]) -> [u8; FINGERPRINT_LEN] {
    use sha2::Digest as _;
    sha2::Sha256::digest(der).into()
}

/// Parses the SDP form of a SHA-256 fingerprint, `AB:CD:…` (exactly 32
/// colon-separated byte pairs, hex in either case).
pub fn parse_fingerprint(text: &str) -> Option<[u8; FINGERPRINT_LEN]> {
    let mut out = [0u8; FINGERPRINT_LEN];
    let mut parts = text.trim().split(':');
    for byte in &mut out {
        let pair = parts.next()?;
        if pair.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The fingerprints of every `a=fingerprint:sha-256` line of an SDP text, in
/// order (session and media level alike). For tests and diagnostics: the
/// authentication itself never trusts these.
pub fn sdp_fingerprints(sdp: &str) -> Vec<Option<[u8; FINGERPRINT_LEN]>> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=fingerprint:"))
        .filter_map(|v| {
            let (hash, value) = v.split_once(' ')?;
            hash.eq_ignore_ascii_case("sha-256")
                .then(|| parse_fingerprint(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_form_parses_in_either_case() {
        let upper: String = (0x40u8..0x60)
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        let expected: [u8; 32] = std::array::from_fn(|i| 0x40 + i as u8);
        assert_eq!(parse_fingerprint(&upper), Some(expected));
        assert_eq!(
            parse_fingerprint(&upper.to_ascii_lowercase()),
            Some(expected)
        );
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        let good: String = vec!["ab"; 32].join(":");
        assert!(parse_fingerprint(&good).is_some());
        for bad in [
            String::new(),
            vec!["ab"; 31].join(":"),
            vec!["ab"; 33].join(":"),
            good.replacen("ab", "a", 1),
            good.replacen("ab", "zz", 1),
            good.replacen("ab", "abc", 1),
            good.replace(':', "-"),
        ] {
            assert_eq!(parse_fingerprint(&bad), None, "{bad}");
        }
    }

    #[test]
    fn every_sha256_line_is_listed_in_order() {
        let a = vec!["01"; 32].join(":");
        let b = vec!["02"; 32].join(":");
        let sdp = format!(
            "v=0\r\na=fingerprint:sha-256 {a}\r\nm=application 9\r\na=fingerprint:SHA-256 {b}\r\na=fingerprint:sha-1 00:11\r\n"
        );
        assert_eq!(sdp_fingerprints(&sdp), vec![Some([1; 32]), Some([2; 32])]);
    }

    #[test]
    fn der_hash_is_sha256() {
        assert_eq!(
            fingerprint_of_der(b"abc"),
            <[u8; 32]>::try_from(
                (0..32)
                    .map(|i| {
                        u8::from_str_radix(
                            &"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                                [2 * i..2 * i + 2],
                            16,
                        )
                        .unwrap()
                    })
                    .collect::<Vec<_>>()
                    .as_slice()
            )
            .unwrap()
        );
    }
}
