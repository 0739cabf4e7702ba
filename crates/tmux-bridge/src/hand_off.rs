//! Handing a pane pipe's socket to the bridge, so pane output reaches the
//! agent with no process copying it on the way.
//!
//! `pipe-pane -O` gives its command the pane's output on stdin: one end of a
//! socket pair whose other end tmux writes to. With `cat` as the command,
//! every chunk of output wakes `cat`, which writes it into the bridge's FIFO,
//! which wakes the agent: one process and one copy more than needed, on the
//! path of every echoed keystroke. Instead the command is a helper (the
//! `muxlink` binary's hidden `__pane-pipe` word) that connects to a Unix
//! socket in the pipe's private directory, passes its stdin there with
//! `SCM_RIGHTS` and exits; the bridge then reads tmux's socket directly.
//!
//! The helper side is [`hand_off_pane_pipe`] (blocking, a few system calls);
//! the bridge side is [`HandOffListener`]. The helper exits with success only
//! once the descriptor is sent, so the command's `|| cat` fallback (see
//! `output`) never runs beside a hand-off and the two never share the pipe.

use std::io::{self, ErrorKind, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};

/// The one data byte sent with the descriptor (a message with ancillary
/// data needs at least one byte of data).
const TAG: u8 = b'P';

/// The helper's side: connects to `socket` and sends this process's stdin
/// (tmux's pipe socket) with `SCM_RIGHTS`. Ok once it is sent.
pub fn hand_off_pane_pipe(socket: &Path) -> io::Result<()> {
    send_fd(socket, 0)
}

/// Connects to `socket` and sends `fd` with the tag byte.
fn send_fd(socket: &Path, fd: RawFd) -> io::Result<()> {
    let stream = std::os::unix::net::UnixStream::connect(socket)?;
    let fds = [fd];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&[TAG])],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    if sent != 1 {
        return Err(io::Error::new(ErrorKind::WriteZero, "descriptor not sent"));
    }
    Ok(())
}

/// The receiving side for a caller with no runtime (the bench's tmux-alone
/// baseline reads tmux's pipe as the bridge does): one hand-off from a
/// connection accepted on the socket the helper was given; the descriptor
/// read from there on is tmux's end of the pipe.
pub fn receive_pane_pipe(conn: &std::os::unix::net::UnixStream) -> io::Result<OwnedFd> {
    receive_fd(conn.as_raw_fd())
}

/// The bridge's side: a listening socket in a pipe's private directory
/// (mode 0700, so only this user can connect).
#[derive(Debug)]
pub(crate) struct HandOffListener {
    listener: UnixListener,
}

impl HandOffListener {
    /// Listens at `path` (must not exist yet).
    pub(crate) fn bind(path: &Path) -> io::Result<HandOffListener> {
        Ok(HandOffListener {
            listener: UnixListener::bind(path)?,
        })
    }

    /// The next handed-off pipe, as a non-blocking stream to read pane
    /// output from. An error means this connection handed over nothing
    /// usable; the helper then exits with failure and its shell falls back.
    pub(crate) async fn receive(&self) -> io::Result<UnixStream> {
        let (conn, _) = self.listener.accept().await?;
        let fd = loop {
            conn.readable().await?;
            match conn.try_io(Interest::READABLE, || receive_fd(conn.as_raw_fd())) {
                Ok(fd) => break fd,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        let stream = std::os::unix::net::UnixStream::from(fd);
        stream.set_nonblocking(true)?;
        UnixStream::from_std(stream)
    }
}

/// One `recvmsg` on the accepted connection: exactly one descriptor, a
/// socket, with the tag byte. Every descriptor received is owned at once, so
/// extra ones close.
fn receive_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = MsgFlags::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = MsgFlags::empty();
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), flags)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: the kernel just installed these descriptors in this
            // process for us; nothing else holds them.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let bytes = msg.bytes;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    if bytes == 0 && fds.is_empty() {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            "closed without handing over a pipe",
        ));
    }
    if truncated || bytes != 1 || byte[0] != TAG || fds.len() != 1 {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            "malformed pipe hand-off",
        ));
    }
    let fd = fds.remove(0);
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    let stat = nix::sys::stat::fstat(&fd)?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            "handed-off descriptor is not a socket",
        ));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A socket pair stands in for tmux's: the "helper" hands one end over
    /// and the bridge reads what is written into the other.
    #[tokio::test]
    async fn a_handed_off_socket_carries_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hand");
        let listener = HandOffListener::bind(&path).unwrap();
        let (mut tmux_end, helper_end) = std::os::unix::net::UnixStream::pair().unwrap();
        let sender = std::thread::spawn({
            let path = path.clone();
            // The helper's copy closes when the thread ends, as when it exits.
            move || send_fd(&path, helper_end.as_raw_fd()).unwrap()
        });
        let mut stream = listener.receive().await.unwrap();
        sender.join().unwrap();
        use std::io::Write;
        tmux_end.write_all(b"pane bytes").unwrap();
        let mut got = [0u8; 10];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pane bytes");
        drop(tmux_end);
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_connection_without_a_descriptor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hand");
        let listener = HandOffListener::bind(&path).unwrap();
        let mut plain = UnixStream::connect(&path).await.unwrap();
        plain.write_all(&[TAG]).await.unwrap();
        let err = listener.receive().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        drop(plain);
        let closed = UnixStream::connect(&path).await.unwrap();
        drop(closed);
        let err = listener.receive().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_descriptor_that_is_not_a_socket_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hand");
        let listener = HandOffListener::bind(&path).unwrap();
        let file = std::fs::File::create(dir.path().join("file")).unwrap();
        send_fd(&path, file.as_raw_fd()).unwrap();
        let err = listener.receive().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
    }
}
