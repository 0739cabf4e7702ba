//! [`lock`]: the one way this crate takes a std mutex. Every critical
//! section here is panic-free, so a poisoned lock still guards consistent
//! data and is used as it is.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning (see the module doc).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
