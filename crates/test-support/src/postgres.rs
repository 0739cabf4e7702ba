//! [`PrivatePostgres`]: a PostgreSQL cluster of the test's own — `initdb` in a
//! temporary directory, the server on a free loopback port with its socket
//! in that directory, stopped and removed on drop. PostgreSQL refuses to run
//! as root, so as root the cluster belongs to the `postgres` user.
//!
//! Where PostgreSQL is not installed, [`PrivatePostgres::start`] returns
//! `None` and the test skips — unless `MUXLINK_REQUIRE_POSTGRES` is set (CI
//! sets it), which turns that into a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The cluster's superuser (trust authentication on loopback only).
const SUPERUSER: &str = "muxlink";

/// A running private cluster.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    server: Child,
}

/// The directory of `initdb` and `postgres`: `pg_config --bindir`, or the
/// newest `/usr/lib/postgresql/<n>/bin`.
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PrivatePostgres {
    /// Starts a cluster, or `None` when PostgreSQL is not installed (a panic
    /// instead when `MUXLINK_REQUIRE_POSTGRES` is set).
    pub fn start() -> Option<PrivatePostgres> {
        let required = std::env::var_os("MUXLINK_REQUIRE_POSTGRES").is_some();
        let Some(bin) = bindir() else {
            assert!(
                !required,
                "MUXLINK_REQUIRE_POSTGRES is set but initdb was not found"
            );
            eprintln!("skipped: PostgreSQL is not installed (initdb not found)");
            return None;
        };
        match Self::start_in(bin) {
            Ok(pg) => Some(pg),
            Err(e) if !required => {
                eprintln!("skipped: cannot start PostgreSQL: {e:#}");
                None
            }
            Err(e) => panic!("cannot start PostgreSQL: {e:#}"),
        }
    }

    fn start_in(bin: PathBuf) -> Result<PrivatePostgres> {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("muxlink-pg-").tempdir()?;
        if as_postgres {
            let st = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()?;
            if !st.success() {
                bail!("chown of the cluster directory failed");
            }
        }
        let data = dir.path().join("data");
        let out = Self::command(&bin, as_postgres, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", SUPERUSER, "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port()?;
        let server = Self::command(&bin, as_postgres, "postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting postgres")?;
        let pg = PrivatePostgres {
            dir,
            bin,
            port,
            as_postgres,
            server,
        };
        pg.wait_ready()?;
        Ok(pg)
    }

    /// A command from the cluster's bindir, as the `postgres` user when root.
    fn command(bin: &Path, as_postgres: bool, tool: &str) -> Command {
        if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
            c
        } else {
            Command::new(bin.join(tool))
        }
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ok = Self::command(&self.bin, self.as_postgres, "pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("PostgreSQL did not accept connections within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates database `name` and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let out = Self::command(&self.bin, self.as_postgres, "createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
            ])
            .arg(name)
            .output()
            .context("running createdb")?;
        if !out.status.success() {
            bail!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(self.url(name))
    }

    /// The URL of database `name` on this cluster (TCP on loopback).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The cluster's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster (and its socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // `pg_ctl stop -m immediate` ends the postmaster and its children;
        // killing our direct child (runuser) alone could leave them.
        let _ = Self::command(&self.bin, self.as_postgres, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["stop", "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
