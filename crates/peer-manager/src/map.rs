//! The peer map's identity rules (peer-lifecycle.md §1 step 4, §4 "cleanup"):
//! one current peer per device, and a peer leaves only if it is still the
//! current one, so a replaced peer's late close never evicts its successor.
//! Pure; the manager keeps one behind its lock.

use std::collections::HashMap;
use std::sync::Arc;

/// Device id → current peer; two peers are the same only if they are the same
/// allocation (`Arc::ptr_eq`).
#[derive(Debug)]
pub struct PeerMap<P> {
    peers: HashMap<String, Arc<P>>,
}

impl<P> Default for PeerMap<P> {
    fn default() -> Self {
        Self {
            peers: HashMap::new(),
        }
    }
}

impl<P> PeerMap<P> {
    /// Makes `peer` the device's current peer; returns the one it replaces.
    pub fn insert(&mut self, device_id: &str, peer: Arc<P>) -> Option<Arc<P>> {
        self.peers.insert(device_id.to_owned(), peer)
    }

    /// Removes `peer` only if it is still `device_id`'s current peer; true when
    /// it was (and only then is its close reported to the handler).
    pub fn remove_if_current(&mut self, device_id: &str, peer: &Arc<P>) -> bool {
        if self
            .peers
            .get(device_id)
            .is_some_and(|p| Arc::ptr_eq(p, peer))
        {
            self.peers.remove(device_id);
            true
        } else {
            false
        }
    }

    /// Removes the device's peer, whichever it is (`close_peer`).
    pub fn remove(&mut self, device_id: &str) -> Option<Arc<P>> {
        self.peers.remove(device_id)
    }

    /// The device's current peer.
    pub fn get(&self, device_id: &str) -> Option<&Arc<P>> {
        self.peers.get(device_id)
    }

    /// True when the device has a peer.
    pub fn contains(&self, device_id: &str) -> bool {
        self.peers.contains_key(device_id)
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when there is no peer.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Every (device id, peer).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<P>)> {
        self.peers.iter()
    }

    /// Removes every peer.
    pub fn clear(&mut self) {
        self.peers.clear();
    }
}
