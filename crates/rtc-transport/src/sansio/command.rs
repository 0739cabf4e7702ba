//! What a peer handle ([`super::RtcPeer`]) asks its driver to do; calls
//! that answer carry a [`Reply`].

use tokio::sync::oneshot;

use super::channel::RtcChannel;
use crate::dtls::DtlsFingerprints;
use crate::error::RtcError;
use crate::event::Candidate;
use crate::options::ChannelOptions;

pub(super) type Reply<T> = oneshot::Sender<T>;

pub(super) enum Command {
    CreateChannel {
        label: String,
        options: ChannelOptions,
        reply: Reply<Result<RtcChannel, RtcError>>,
    },
    CreateOffer {
        ice_restart: bool,
        reply: Reply<Result<String, RtcError>>,
    },
    SetAnswer {
        sdp: String,
        reply: Reply<Result<(), RtcError>>,
    },
    AcceptOffer {
        sdp: String,
        reply: Reply<Result<String, RtcError>>,
    },
    AddCandidate {
        candidate: Candidate,
    },
    Fingerprints {
        reply: Reply<Result<DtlsFingerprints, RtcError>>,
    },
    Close,
}
