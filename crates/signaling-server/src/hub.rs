//! Registry of this process's authenticated sockets per device: bounded per
//! device, with non-blocking fan-out (a full outbound queue drops that socket
//! only). It knows nothing of other instances: [`crate::bus::Router`] wraps
//! it and adds the NATS side when the server runs with `--bus`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the writer task of a socket sends next.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame.
    Text(Utf8Bytes),
    /// A close frame, after which the writer stops.
    Close(u16, &'static str),
}

/// Asks one socket to close, with the code it should use.
#[derive(Debug, Default)]
pub struct Kill {
    token: CancellationToken,
    reason: OnceLock<(u16, &'static str)>,
}

impl Kill {
    /// Requests the close; the first reason wins.
    pub fn fire(&self, code: u16, reason: &'static str) {
        let _ = self.reason.set((code, reason));
        self.token.cancel();
    }

    /// Resolves once [`Kill::fire`] was called.
    pub async fn fired(&self) -> (u16, &'static str) {
        self.token.cancelled().await;
        self.reason
            .get()
            .copied()
            .unwrap_or((signaling_proto::consts::CLOSE_SOCKET_ERROR, "closed"))
    }
}

/// One registered socket.
#[derive(Debug, Clone)]
pub struct SocketHandle {
    /// Unique per server run.
    pub id: u64,
    /// Bounded queue to the socket's writer.
    pub tx: mpsc::Sender<Outbound>,
    /// Close switch.
    pub kill: Arc<Kill>,
}

impl SocketHandle {
    /// Queues a frame without waiting; a full queue closes the socket (1011)
    /// so one slow reader never stalls the sender. False when not queued.
    pub fn push(&self, text: Utf8Bytes) -> bool {
        match self.tx.try_send(Outbound::Text(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.fire(
                    signaling_proto::consts::CLOSE_SOCKET_ERROR,
                    "outbound queue full",
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Sockets of every online device.
#[derive(Default)]
pub struct Hub {
    devices: Mutex<HashMap<String, Vec<SocketHandle>>>,
}

impl Hub {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Vec<SocketHandle>>> {
        // Critical sections never panic midway, so a poisoned map is consistent.
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a socket unless the device already has `max`; false when full.
    /// `first` (the `auth` reply) is queued to the socket under the map's
    /// lock, so nothing another task sends the device can overtake it.
    pub fn register(
        &self,
        device_id: &str,
        handle: SocketHandle,
        max: usize,
        first: Utf8Bytes,
    ) -> bool {
        let mut map = self.map();
        let sockets = map.entry(device_id.to_owned()).or_default();
        if sockets.len() >= max {
            return false;
        }
        handle.push(first);
        sockets.push(handle);
        true
    }

    /// Removes a socket; true when it was the device's last one.
    pub fn unregister(&self, device_id: &str, socket_id: u64) -> bool {
        let mut map = self.map();
        let Some(sockets) = map.get_mut(device_id) else {
            return false;
        };
        let before = sockets.len();
        sockets.retain(|s| s.id != socket_id);
        let removed = sockets.len() != before;
        if sockets.is_empty() {
            map.remove(device_id);
            return removed;
        }
        false
    }

    /// Queues `text` (one serialized message) to every socket of
    /// `device_id` here; true if any accepted it.
    pub fn push(&self, device_id: &str, text: &Utf8Bytes) -> bool {
        let targets: Vec<SocketHandle> = self.map().get(device_id).cloned().unwrap_or_default();
        // Every socket must get the frame, so no short-circuiting `any`.
        let delivered = targets.iter().filter(|s| s.push(text.clone())).count();
        delivered > 0
    }

    /// True when the device has an authenticated socket here.
    pub fn is_online(&self, device_id: &str) -> bool {
        self.map().contains_key(device_id)
    }

    /// Closes every socket of the device here.
    pub fn kill_device(&self, device_id: &str, code: u16, reason: &'static str) {
        for s in self.map().get(device_id).into_iter().flatten() {
            s.kill.fire(code, reason);
        }
    }

    /// Authenticated sockets in total.
    pub fn socket_count(&self) -> usize {
        self.map().values().map(Vec::len).sum()
    }

    /// Devices with an authenticated socket (the `devices_online` metric).
    pub fn device_count(&self) -> usize {
        self.map().len()
    }
}
