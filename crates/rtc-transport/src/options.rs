//! How a DataChannel delivers its messages: [`ChannelOptions`], the part of
//! the library's channel init muxlink uses (reliable and ordered for the
//! terminal stream; unordered and never retransmitted for fast copies), and
//! [`FAST_COPY_LEAD`], how far a fast copy must go ahead of its original.

use std::time::Duration;

/// How long the reliable original of a fast copy is held back after the copy
/// was handed on, so the two do not leave in one datagram. SCTP bundles the
/// queued chunks of every channel of a connection into its next packet, so a
/// copy and an original queued together are lost together and the copy saves
/// nothing. The driver writes the core's packets at the end of each turn, so
/// a copy and an original handed over in one turn would share a packet; 3 ms
/// leaves room for a busy driver and is nothing next to the 1 s
/// retransmission the copy avoids (docs/stream-v2.md §4).
pub const FAST_COPY_LEAD: Duration = Duration::from_millis(3);

/// Delivery options of a DataChannel created with
/// [`crate::RtcPeer::create_data_channel_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelOptions {
    /// Messages are delivered in the order they were sent.
    pub ordered: bool,
    /// `None`: reliable (retransmitted until acknowledged). `Some(n)`: a
    /// message is retransmitted at most `n` times, then abandoned.
    pub max_retransmits: Option<u16>,
}

impl ChannelOptions {
    /// Ordered and reliable: the `terminal` channel.
    pub const fn reliable() -> ChannelOptions {
        ChannelOptions {
            ordered: true,
            max_retransmits: None,
        }
    }

    /// Unordered and never retransmitted (`maxRetransmits: 0`): the fast
    /// channel of stream v2 (docs/stream-v2.md §4), whose copies are either
    /// early or lost.
    pub const fn fast() -> ChannelOptions {
        ChannelOptions {
            ordered: false,
            max_retransmits: Some(0),
        }
    }

    /// True when every message is retransmitted until acknowledged.
    pub const fn is_reliable(&self) -> bool {
        self.max_retransmits.is_none()
    }
}

impl Default for ChannelOptions {
    fn default() -> ChannelOptions {
        ChannelOptions::reliable()
    }
}
