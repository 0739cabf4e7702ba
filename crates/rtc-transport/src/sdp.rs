//! SDP text helpers: advertise our max-message-size and read the remote one,
//! and drop the candidate lines of our outgoing descriptions.
//!
//! The `rtc` core writes its own `a=max-message-size` (at most 256 KiB, its
//! send ceiling); the protocol's 1 MiB (spec peer-lifecycle §3) replaces it in
//! every SDP we send, right after the application section's `a=sctp-port` line.

use crate::DEFAULT_REMOTE_MAX_MESSAGE;

/// The largest message muxlink sends or accepts (terminal-protocol §1), and the
/// value we advertise in `a=max-message-size`.
pub const MAX_MESSAGE_SIZE: usize = 1_048_576;

const ATTR: &str = "a=max-message-size:";

/// Replaces any `a=max-message-size` by ours (the core writes its own, at
/// most 256 KiB).
pub(crate) fn replace_max_message_size(sdp: &str) -> String {
    add_max_message_size(&strip_max_message_size(sdp), MAX_MESSAGE_SIZE)
}

/// Our outgoing SDP: our max-message-size, and no `a=candidate` or
/// `a=end-of-candidates` line. The core writes the local candidates it already
/// has into later descriptions (an ICE restart's offer carries the previous
/// generation's); every candidate is trickled once instead, through
/// signaling.
pub(crate) fn outgoing_sdp(sdp: &str) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut kept = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        if line.starts_with("a=candidate:") || line.starts_with("a=end-of-candidates") {
            continue;
        }
        kept.push_str(line);
        kept.push_str(eol);
    }
    replace_max_message_size(&kept)
}

fn add_max_message_size(sdp: &str, value: usize) -> String {
    if sdp.lines().any(|l| l.starts_with(ATTR)) {
        return sdp.to_owned();
    }
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::with_capacity(sdp.len() + 40);
    let mut in_application = false;
    let mut added = false;
    for line in sdp.split_inclusive('\n') {
        out.push_str(line);
        let bare = line.trim_end_matches(['\r', '\n']);
        if bare.starts_with("m=") {
            in_application = bare.starts_with("m=application");
        }
        if in_application && !added && bare.starts_with("a=sctp-port:") {
            if !line.ends_with('\n') {
                out.push_str(eol);
            }
            out.push_str(ATTR);
            out.push_str(&value.to_string());
            out.push_str(eol);
            added = true;
        }
    }
    out
}

/// Removes every `a=max-message-size` line.
fn strip_max_message_size(sdp: &str) -> String {
    sdp.split_inclusive('\n')
        .filter(|l| !l.starts_with(ATTR))
        .collect()
}

/// The max-message-size a remote SDP advertises for its application section:
/// 65 536 when absent or unreadable, capped at [`MAX_MESSAGE_SIZE`]; 0 ("no limit")
/// also maps to [`MAX_MESSAGE_SIZE`].
pub fn parse_max_message_size(sdp: &str) -> usize {
    let mut in_application = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("m=") {
            in_application = line.starts_with("m=application");
            continue;
        }
        if in_application && let Some(v) = line.strip_prefix(ATTR) {
            return match v.trim().parse::<u64>() {
                Ok(0) => MAX_MESSAGE_SIZE,
                Ok(n) => usize::try_from(n)
                    .unwrap_or(MAX_MESSAGE_SIZE)
                    .min(MAX_MESSAGE_SIZE),
                Err(_) => DEFAULT_REMOTE_MAX_MESSAGE,
            };
        }
    }
    DEFAULT_REMOTE_MAX_MESSAGE
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\na=ice-ufrag:x\r\n";

    #[test]
    fn advertises_once_in_the_application_section() {
        let out = replace_max_message_size(SDP);
        assert!(
            out.contains("a=sctp-port:5000\r\na=max-message-size:1048576\r\na=ice-ufrag:x\r\n")
        );
        assert_eq!(replace_max_message_size(&out), out);
        assert_eq!(parse_max_message_size(&out), 1_048_576);
        // The core's own (smaller) value is replaced, not kept beside ours.
        let core = out.replace("1048576", "262144");
        assert_eq!(replace_max_message_size(&core), out);
    }

    #[test]
    fn outgoing_sdp_has_no_candidate_lines() {
        let with = SDP.replace(
            "a=ice-ufrag:x\r\n",
            "a=ice-ufrag:x\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n",
        );
        let out = outgoing_sdp(&with);
        assert!(!out.contains("a=candidate"), "{out}");
        assert!(!out.contains("end-of-candidates"), "{out}");
        assert!(out.ends_with("a=ice-ufrag:x\r\n"), "{out}");
        assert_eq!(parse_max_message_size(&out), MAX_MESSAGE_SIZE);
    }

    #[test]
    fn absent_means_64k_and_values_are_capped() {
        assert_eq!(parse_max_message_size(SDP), 65_536);
        let with = |v: &str| {
            SDP.replace(
                "a=sctp-port:5000\r\n",
                &format!("a=sctp-port:5000\r\na=max-message-size:{v}\r\n"),
            )
        };
        assert_eq!(parse_max_message_size(&with("262144")), 262_144);
        assert_eq!(parse_max_message_size(&with("0")), MAX_MESSAGE_SIZE);
        assert_eq!(
            parse_max_message_size(&with("99999999999")),
            MAX_MESSAGE_SIZE
        );
        assert_eq!(parse_max_message_size(&with("x")), 65_536);
        assert_eq!(
            parse_max_message_size(&strip_max_message_size(&with("5"))),
            65_536
        );
    }
}
