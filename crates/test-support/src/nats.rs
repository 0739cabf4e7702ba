//! [`PrivateNats`]: a `nats-server` of the test's own on a free loopback
//! port, killed on drop. Tests that run several signaling instances route
//! between them through it (`--bus nats://…`); [`PrivateNats::kill`] and
//! [`PrivateNats::restart`] let a test take the bus away and bring it back
//! on the same port.
//!
//! Where `nats-server` is not installed, [`PrivateNats::start`] returns `None`
//! and the test skips — unless `MUXLINK_REQUIRE_NATS` is set (CI sets it),
//! which turns that into a failure.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running private NATS server.
#[derive(Debug)]
pub struct PrivateNats {
    bin: PathBuf,
    port: u16,
    server: Option<Child>,
}

/// `nats-server` on PATH or in /usr/sbin (Debian's package puts it there).
fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("nats-server"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file())
}

impl PrivateNats {
    /// Starts a server, or `None` when `nats-server` is not installed (a
    /// panic instead when `MUXLINK_REQUIRE_NATS` is set).
    pub fn start() -> Option<PrivateNats> {
        let required = std::env::var_os("MUXLINK_REQUIRE_NATS").is_some();
        let Some(bin) = binary() else {
            assert!(
                !required,
                "MUXLINK_REQUIRE_NATS is set but nats-server was not found"
            );
            eprintln!("skipped: nats-server is not installed");
            return None;
        };
        let started = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(anyhow::Error::from)
            .and_then(|addr| {
                let mut nats = PrivateNats {
                    bin,
                    port: addr.port(),
                    server: None,
                };
                nats.restart().map(|()| nats)
            });
        match started {
            Ok(nats) => Some(nats),
            Err(e) if !required => {
                eprintln!("skipped: cannot start nats-server: {e:#}");
                None
            }
            Err(e) => panic!("cannot start nats-server: {e:#}"),
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL): the bus is gone until [`Self::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`Self::kill`]); a
    /// no-op when it runs.
    pub fn restart(&mut self) -> Result<()> {
        if self.server.is_some() {
            return Ok(());
        }
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nats-server")?;
        self.server = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                self.kill();
                bail!("nats-server did not accept connections within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}
