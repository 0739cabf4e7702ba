//! Pure admission rules for a `connect_request` (peer-lifecycle.md §1 steps 1–4):
//! allowed device, shared secret, peer limit, reconnect replacement.

/// Default number of simultaneous peers (single pairing).
pub const DEFAULT_MAX_PEERS: usize = 1;
/// Largest accepted `max_peers` setting.
pub const MAX_PEERS_LIMIT: usize = 20;

/// Why a `connect_request` was refused; `as_str` is the `reason` sent in
/// `connection_rejected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The device is not the paired one, or no secret is known for it.
    NotPaired,
    /// The peer limit is reached.
    AlreadyConnected,
    /// The host could not build the peer connection, channel or offer.
    InternalError,
}

impl RejectReason {
    /// Wire string of the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotPaired => "not_paired",
            Self::AlreadyConnected => "already_connected",
            Self::InternalError => "internal_error",
        }
    }
}

/// Outcome of the admission checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Build a new peer; `replace` = silence and remove the device's existing peer first.
    Admit {
        /// The device already has a peer that this one replaces.
        replace: bool,
    },
    /// Refuse with `connection_rejected{reason}`.
    Reject(RejectReason),
}

/// Facts the admission rules look at.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRequest<'a> {
    /// The configured allowed mobile id (may be empty or a `!` sentinel).
    pub allowed_device_id: &'a str,
    /// The requesting mobile id (`targetDeviceId`).
    pub device_id: &'a str,
    /// Whether a non-empty shared secret could be loaded for `device_id`.
    pub secret_loaded: bool,
    /// Whether `device_id` already has a peer.
    pub has_peer: bool,
    /// Number of peers currently tracked.
    pub peer_count: usize,
    /// Configured limit (clamped to 1..=20 here).
    pub max_peers: usize,
}

/// True when `device_id` is the allowed device. Fails closed: an empty allowed id
/// or a sentinel (`!unpaired`, `!invalid-load-error`, anything starting with `!`)
/// matches nothing, and an empty device id never matches.
pub fn is_allowed(allowed_device_id: &str, device_id: &str) -> bool {
    !allowed_device_id.is_empty()
        && !allowed_device_id.starts_with('!')
        && !device_id.is_empty()
        && allowed_device_id == device_id
}

/// Clamp a configured peer limit into 1..=20.
pub fn clamp_max_peers(max_peers: usize) -> usize {
    max_peers.clamp(1, MAX_PEERS_LIMIT)
}

/// Run the admission checks in spec order.
pub fn admit(req: &AdmissionRequest<'_>) -> Admission {
    if !is_allowed(req.allowed_device_id, req.device_id) || !req.secret_loaded {
        return Admission::Reject(RejectReason::NotPaired);
    }
    if req.has_peer {
        // A reconnect replaces the old peer, so it does not count against the limit.
        return Admission::Admit { replace: true };
    }
    if req.peer_count >= clamp_max_peers(req.max_peers) {
        return Admission::Reject(RejectReason::AlreadyConnected);
    }
    Admission::Admit { replace: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(allowed: &'a str, device: &'a str) -> AdmissionRequest<'a> {
        AdmissionRequest {
            allowed_device_id: allowed,
            device_id: device,
            secret_loaded: true,
            has_peer: false,
            peer_count: 0,
            max_peers: 1,
        }
    }

    #[test]
    fn allowed_device_is_admitted() {
        assert_eq!(admit(&req("m1", "m1")), Admission::Admit { replace: false });
    }

    #[test]
    fn other_device_is_not_paired() {
        assert_eq!(
            admit(&req("m1", "m2")),
            Admission::Reject(RejectReason::NotPaired)
        );
    }

    #[test]
    fn empty_allowed_id_fails_closed() {
        assert_eq!(
            admit(&req("", "")),
            Admission::Reject(RejectReason::NotPaired)
        );
        assert_eq!(
            admit(&req("", "m1")),
            Admission::Reject(RejectReason::NotPaired)
        );
    }

    #[test]
    fn sentinels_never_match() {
        for s in ["!unpaired", "!invalid-load-error", "!other"] {
            assert_eq!(
                admit(&req(s, s)),
                Admission::Reject(RejectReason::NotPaired),
                "{s}"
            );
        }
    }

    #[test]
    fn missing_secret_is_not_paired() {
        let mut r = req("m1", "m1");
        r.secret_loaded = false;
        assert_eq!(admit(&r), Admission::Reject(RejectReason::NotPaired));
    }

    #[test]
    fn limit_reached_is_already_connected() {
        let mut r = req("m1", "m1");
        r.peer_count = 1;
        assert_eq!(admit(&r), Admission::Reject(RejectReason::AlreadyConnected));
        r.max_peers = 2;
        assert_eq!(admit(&r), Admission::Admit { replace: false });
    }

    #[test]
    fn reconnect_replaces_even_at_limit() {
        let mut r = req("m1", "m1");
        r.has_peer = true;
        r.peer_count = 1;
        assert_eq!(admit(&r), Admission::Admit { replace: true });
    }

    #[test]
    fn not_paired_checked_before_limit() {
        let mut r = req("m1", "m2");
        r.peer_count = 5;
        assert_eq!(admit(&r), Admission::Reject(RejectReason::NotPaired));
    }

    #[test]
    fn max_peers_is_clamped() {
        assert_eq!(clamp_max_peers(0), 1);
        assert_eq!(clamp_max_peers(7), 7);
        assert_eq!(clamp_max_peers(100), 20);
        let mut r = req("m1", "m1");
        r.max_peers = 0;
        assert_eq!(admit(&r), Admission::Admit { replace: false });
        r.peer_count = 20;
        r.max_peers = 50;
        assert_eq!(admit(&r), Admission::Reject(RejectReason::AlreadyConnected));
    }

    #[test]
    fn reason_strings() {
        assert_eq!(RejectReason::NotPaired.as_str(), "not_paired");
        assert_eq!(RejectReason::AlreadyConnected.as_str(), "already_connected");
        assert_eq!(RejectReason::InternalError.as_str(), "internal_error");
    }
}
