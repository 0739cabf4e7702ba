//! Our own UDP sockets for ICE host candidates on loopback, with large kernel
//! buffers.
//!
//! The library's ICE agent binds its sockets itself, with the operating
//! system's default buffers (about 208 KiB on Linux). A 1 MiB message over
//! loopback arrives as one burst of ~900 packets, which overflows such a
//! receive buffer; the lost packets then wait out SCTP's retransmission timer
//! (at least 1 s, doubling) and the sender's deadline can pass. For loopback-only
//! peers without a STUN server, [`HostSockets`] hands the agent our own socket,
//! with 4 MiB send and receive buffers (or the most the system allows), through
//! the library's UDP-mux hook: the agent asks it for one socket per ICE
//! generation (per local ufrag) and gathers its host candidate on it.
//!
//! Why not the library's `UDPMuxDefault` on one socket: in webrtc-ice 0.17.2 it
//! forgets to unmap a closed generation's remote addresses, so after an ICE
//! restart packets from the same remote address keep going to the closed
//! generation and the restart can fail. A fresh socket per generation is what
//! the library's own (ephemeral) sockets do too. Why loopback only: every host
//! candidate of a generation shares the socket the mux hook returns, so with
//! several interfaces a packet could be read by the wrong candidate; and the
//! library's mux mode gathers no server-reflexive candidates.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use socket2::{Domain, Protocol, Socket, Type};
use webrtc::ice::udp_mux::UDPMux;
use webrtc::util::{Conn, Error as UtilError};

/// The send and receive buffer size we ask for.
pub(crate) const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Below this we stop halving a refused buffer size and keep the system's default.
const MIN_BUFFER_BYTES: usize = 64 * 1024;

/// One peer's loopback host sockets: the current ICE generation's, keyed by its
/// local ufrag. An older generation's socket closes once the agent has dropped
/// its candidates (their receive loops end when the candidates close).
#[derive(Default)]
pub(crate) struct HostSockets {
    current: Mutex<Option<(String, Arc<tokio::net::UdpSocket>)>>,
}

impl HostSockets {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<(String, Arc<tokio::net::UdpSocket>)>> {
        // Recover from poisoning: the guarded value is replaced whole, never half-written.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl UDPMux for HostSockets {
    async fn close(&self) -> Result<(), UtilError> {
        self.current().take();
        Ok(())
    }

    async fn get_conn(
        self: Arc<Self>,
        ufrag: &str,
    ) -> Result<Arc<dyn Conn + Send + Sync>, UtilError> {
        let mut current = self.current();
        if let Some((u, socket)) = current.as_ref()
            && u == ufrag
        {
            return Ok(Arc::clone(socket) as Arc<dyn Conn + Send + Sync>);
        }
        let socket = Arc::new(bind_udp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
        ))?);
        *current = Some((ufrag.to_owned(), Arc::clone(&socket)));
        Ok(socket as Arc<dyn Conn + Send + Sync>)
    }

    async fn remove_conn_by_ufrag(&self, ufrag: &str) {
        let mut current = self.current();
        if current.as_ref().is_some_and(|(u, _)| u == ufrag) {
            current.take();
        }
    }
}

/// A non-blocking UDP socket bound to `addr` whose send and receive buffers are
/// [`SOCKET_BUFFER_BYTES`], or the largest smaller power-of-two size the system
/// accepts (Linux caps silently at `net.core.rmem_max`/`wmem_max`; macOS refuses
/// sizes above `kern.ipc.maxsockbuf`). The sizes obtained are logged at debug.
pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    grow(|n| socket.set_recv_buffer_size(n));
    grow(|n| socket.set_send_buffer_size(n));
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let local = socket.local_addr()?.as_socket();
    tracing::debug!(
        local = ?local,
        recv_buffer = ?socket.recv_buffer_size().ok(),
        send_buffer = ?socket.send_buffer_size().ok(),
        "udp host socket bound"
    );
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Asks for [`SOCKET_BUFFER_BYTES`], halving on refusal; a system that refuses
/// even [`MIN_BUFFER_BYTES`] keeps its default.
fn grow(mut set: impl FnMut(usize) -> io::Result<()>) {
    let mut size = SOCKET_BUFFER_BYTES;
    while size >= MIN_BUFFER_BYTES {
        if set(size).is_ok() {
            return;
        }
        size /= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffers_grow_past_the_default_where_the_system_allows() {
        let udp = bind_udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let sock = socket2::SockRef::from(&udp);
        let default = Socket::new(Domain::IPV4, Type::DGRAM, None)
            .unwrap()
            .recv_buffer_size()
            .unwrap();
        // Never smaller than the default; larger wherever the limit permits.
        assert!(sock.recv_buffer_size().unwrap() >= default);
        assert!(sock.send_buffer_size().unwrap() >= MIN_BUFFER_BYTES);
        assert!(udp.local_addr().unwrap().port() != 0);
    }

    #[test]
    fn a_refused_size_is_halved_until_accepted() {
        let mut asked = Vec::new();
        grow(|n| {
            asked.push(n);
            if n > SOCKET_BUFFER_BYTES / 4 {
                Err(io::Error::other("too large"))
            } else {
                Ok(())
            }
        });
        assert_eq!(
            asked,
            [
                SOCKET_BUFFER_BYTES,
                SOCKET_BUFFER_BYTES / 2,
                SOCKET_BUFFER_BYTES / 4
            ]
        );
        let mut tries = 0;
        grow(|_| {
            tries += 1;
            Err(io::Error::other("never"))
        });
        assert_eq!(tries, 7, "4 MiB down to 64 KiB, then the default stays");
    }
}
