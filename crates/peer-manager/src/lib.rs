//! WebRTC peers of the host agent: admission, offer/answer, key possession, lifecycle.

#![warn(missing_docs)]
