//! The names the attachment table (`attachment.rs`) and its endings
//! (`ending.rs`) share: the [`Driver`] trait naming the I/O types the table
//! stores without opening, and [`AttachmentId`]. Kept apart so the table and
//! its endings depend on them, not on each other.

/// The driver's types, which the table stores and hands back but never opens.
pub(crate) trait Driver {
    /// A connected phone.
    type Link: Clone;
    /// An open pane output stream, while its opener or its task holds it.
    type Output;
    /// A running output task, which closes its stream when it stops.
    type Pump;
    /// Whether two links are the same peer object (not just the same device).
    fn same_link(a: &Self::Link, b: &Self::Link) -> bool;
}

/// Which attachment: generations are never reused within one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation(pub(super) u64);

/// Names one attachment of one device; a stale id matches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttachmentId {
    pub(super) device: String,
    pub(super) generation: Generation,
}
