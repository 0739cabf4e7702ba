//! The start-up handshake between `muxlink start` and the agent it launches.
//! The parent hands the child the write end of a pipe (named, with its own
//! pid, in `MUXLINK_READY_FD`); the agent writes one byte once it is ready and
//! closes it. The parent blocks on the read end with a deadline: it wakes on
//! the byte, or on end-of-file when the agent exits before getting ready. No
//! status-file polling.

use std::io::Read as _;
use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, IntoRawFd as _, OwnedFd};
use std::process::Command;
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::SFlag;

/// `<fd>:<parent pid>`: the descriptor to write to and who expects it.
pub const READY_FD_ENV: &str = "MUXLINK_READY_FD";

/// What the parent saw while waiting.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The agent reported that it is ready.
    Ready,
    /// The pipe closed without the byte: the agent exited first.
    Exited,
    /// The deadline passed first.
    TimedOut,
}

/// The parent's side of the handshake.
#[derive(Debug)]
pub struct ReadyPipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl ReadyPipe {
    /// A pipe whose write end (only) survives `exec` in the child. Any child
    /// spawned while it exists inherits that end, so create it right before
    /// the one spawn it is for (as `muxlink start` does).
    pub fn new() -> std::io::Result<ReadyPipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        fcntl(&write, FcntlArg::F_SETFD(FdFlag::empty()))?;
        Ok(ReadyPipe { read, write })
    }

    /// Tells the child where to report.
    pub fn pass_to(&self, cmd: &mut Command) {
        let value = format!("{}:{}", self.write.as_raw_fd(), std::process::id());
        cmd.env(READY_FD_ENV, value);
    }

    /// Call after spawning: drops our copy of the write end (so the child's
    /// exit reads as end-of-file) and waits up to `timeout`.
    pub fn wait(self, timeout: Duration) -> std::io::Result<Readiness> {
        let ReadyPipe { read, write } = self;
        drop(write);
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
        let ready = loop {
            match poll(&mut fds, PollTimeout::from(millis)) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        if ready == 0 {
            return Ok(Readiness::TimedOut);
        }
        let mut byte = [0u8; 1];
        let n = std::fs::File::from(read).read(&mut byte)?;
        Ok(if n == 1 {
            Readiness::Ready
        } else {
            Readiness::Exited
        })
    }
}

/// The agent's side: the descriptor a waiting `muxlink start` reads.
#[derive(Debug)]
pub struct ReadyNotifier {
    pipe: std::fs::File,
}

impl ReadyNotifier {
    /// Takes the descriptor named by [`READY_FD_ENV`] and marks it
    /// close-on-exec, so no child of the agent (the tmux control client)
    /// inherits it and a crash before readiness reads as end-of-file at once.
    /// `None` when the agent was not started by `muxlink start`, or the
    /// variable was inherited from elsewhere (it must name our parent). Call
    /// once, before the agent spawns anything.
    pub fn from_env() -> Option<ReadyNotifier> {
        let value = std::env::var(READY_FD_ENV).ok()?;
        let (fd, parent) = value.split_once(':')?;
        let (fd, parent) = (fd.parse::<i32>().ok()?, parent.parse::<u32>().ok()?);
        if fd < 3 || std::os::unix::process::parent_id() != parent {
            return None;
        }
        // SAFETY: our parent (checked above by pid) created this descriptor
        // for this handshake alone and passed it across exec; nothing else in
        // this process owns it, and `from_env` runs once, so it is taken once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let is_pipe = nix::sys::stat::fstat(&owned).is_ok_and(|st| {
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO
        });
        if !is_pipe || fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_err() {
            // Not the pipe we expect: leave the descriptor as it was.
            let _ = owned.into_raw_fd();
            return None;
        }
        Some(ReadyNotifier {
            pipe: std::fs::File::from(owned),
        })
    }

    /// Reports readiness and closes the pipe.
    pub fn ready(mut self) {
        let _ = std::io::Write::write_all(&mut self.pipe, b"R");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `sh -c <script>` (`$FD` is the passed descriptor) as a started
    /// agent would be, and returns what the parent saw within `timeout`.
    fn wait_for(script: &str, timeout: Duration) -> Readiness {
        // One at a time: a child spawned by a parallel test would inherit
        // this pipe's write end and hold off its end-of-file.
        static ONE_PIPE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = ONE_PIPE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let pipe = ReadyPipe::new().unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .env("FD", pipe.write.as_raw_fd().to_string());
        pipe.pass_to(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let seen = pipe.wait(timeout).unwrap();
        let _ = child.kill();
        child.wait().unwrap();
        seen
    }

    #[test]
    fn a_child_that_exits_first_reads_as_exited() {
        assert_eq!(wait_for("true", Duration::from_secs(10)), Readiness::Exited);
    }

    #[test]
    fn a_byte_on_the_passed_descriptor_reads_as_ready() {
        assert_eq!(
            wait_for("printf R >&$FD; sleep 5", Duration::from_secs(10)),
            Readiness::Ready
        );
    }

    #[test]
    fn silence_times_out() {
        assert_eq!(
            wait_for("sleep 5", Duration::from_millis(50)),
            Readiness::TimedOut
        );
    }
}
