//! Trickled remote host candidates rank just below peer-reflexive ones.
//!
//! A trickling peer starts its connectivity checks before its candidates
//! reach us, so the ICE agent usually learns its address first as a
//! peer-reflexive candidate from an incoming check. webrtc-ice 0.17.2 then
//! adds the trickled candidate with the same address as a second remote
//! candidate instead of replacing the first (RFC 8838 §11.4). A host
//! candidate's pair ranks higher than the peer-reflexive one's but never
//! succeeds (every response is credited to the first candidate with that
//! address), so the controlling side, which nominates a pair only when it is
//! the best one available, waits for its next 200 ms check tick.
//!
//! Giving a trickled host candidate the type preference 109 (host is 126,
//! peer-reflexive 110, server-reflexive 100) keeps host above server-reflexive
//! and relayed candidates and host candidates in their order, but lets the
//! peer-reflexive pair of the same address be the best one, so nomination
//! follows its first successful check. Checking the agent's candidates first
//! (its stats) instead would race with the incoming check. Candidates written
//! into a remote description are ranked the same way: the library may add
//! them after the peer's first check has arrived.

/// Type preference given to a remote host candidate (RFC 8445 §5.1.2.1).
const HOST_BELOW_PRFLX: u32 = 109;

/// `candidate` (an SDP `candidate:` attribute value, with or without the
/// prefix) with its priority lowered as described above when it is a host
/// candidate; anything else, or a line we cannot read, is returned unchanged.
pub(crate) fn rank_host_below_prflx(candidate: &str) -> String {
    let mut fields: Vec<&str> = candidate.split(' ').collect();
    // foundation component transport priority address port "typ" type …
    let is_host = fields
        .iter()
        .position(|f| *f == "typ")
        .and_then(|i| fields.get(i + 1))
        .is_some_and(|t| *t == "host");
    let priority = fields.get(3).and_then(|p| p.parse::<u32>().ok());
    match priority {
        Some(p) if is_host && (p >> 24) > HOST_BELOW_PRFLX => {
            let lowered = (HOST_BELOW_PRFLX << 24) | (p & 0x00FF_FFFF);
            let lowered = lowered.to_string();
            fields[3] = &lowered;
            fields.join(" ")
        }
        _ => candidate.to_owned(),
    }
}

/// A remote session description with every `a=candidate` line passed through
/// [`rank_host_below_prflx`] (a peer that writes its candidates into the
/// answer is checked before the library has added them, like a trickling one).
pub(crate) fn rank_sdp_hosts_below_prflx(sdp: &str) -> String {
    if !sdp.contains("a=candidate:") {
        return sdp.to_owned();
    }
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        match line.strip_prefix("a=") {
            Some(value) if value.starts_with("candidate:") => {
                let body = value.trim_end_matches(['\r', '\n']);
                out.push_str("a=");
                out.push_str(&rank_host_below_prflx(body));
                out.push_str(&value[body.len()..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{rank_host_below_prflx, rank_sdp_hosts_below_prflx};

    #[test]
    fn candidate_lines_of_a_description_are_ranked_and_the_rest_kept() {
        let sdp = "v=0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n\
                   a=candidate:3 1 udp 1694498815 203.0.113.7 7000 typ srflx raddr 0.0.0.0 rport 0\r\n\
                   a=end-of-candidates\r\n";
        assert_eq!(
            rank_sdp_hosts_below_prflx(sdp),
            sdp.replace("2130706431", "1845493759")
        );
        let plain = "v=0\na=mid:0\n";
        assert_eq!(rank_sdp_hosts_below_prflx(plain), plain);
    }

    #[test]
    fn host_candidates_drop_below_peer_reflexive_and_nothing_else_changes() {
        // 2130706431 = 126 << 24 | 0xFFFFFF; 1862270975 = 110 << 24 | 0xFFFFFF.
        let host = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host";
        let got = rank_host_below_prflx(host);
        assert_eq!(got, "candidate:1 1 udp 1845493759 127.0.0.1 5000 typ host");
        // Below 1862270975 (prflx 110) and above 1694498815 (srflx 100).
        let bare = "2 1 udp 2122260223 192.168.1.5 6000 typ host generation 0";
        assert_eq!(
            rank_host_below_prflx(bare),
            "2 1 udp 1837047551 192.168.1.5 6000 typ host generation 0"
        );
        for other in [
            "candidate:3 1 udp 1694498815 203.0.113.7 7000 typ srflx raddr 0.0.0.0 rport 0",
            "candidate:4 1 udp 16777215 198.51.100.2 8000 typ relay raddr 0.0.0.0 rport 0",
            "candidate:5 1 udp 1845493759 127.0.0.1 5000 typ host",
            "candidate:6 1 udp nonsense 127.0.0.1 5000 typ host",
            "",
        ] {
            assert_eq!(rank_host_below_prflx(other), other);
        }
    }
}
