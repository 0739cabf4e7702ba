//! [`PrivateTmux`]: the one tmux wrapper of the test suites, a tmux server on
//! a private socket (`tmux -L <unique name>`) that is killed, and its socket
//! file removed, on drop, even when the test fails.
//!
//! Every command runs with `-f /dev/null` (the user's `~/.tmux.conf` never
//! shapes a test's server) and without `TMUX` in the environment (a test run
//! from inside tmux talks to the private server, not the surrounding one).

use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

use crate::unique_name;

/// A tmux server on a private socket, owned by one test (or demo run); the
/// server starts with the first session and is killed on drop.
#[derive(Debug)]
pub struct PrivateTmux {
    /// The socket name (`tmux -L <socket>`), for the code under test.
    pub socket: String,
}

impl PrivateTmux {
    /// A fresh socket name (`mxl-tmux-…`); no server runs yet.
    pub fn new() -> Self {
        Self::tagged("tmux")
    }

    /// A fresh socket name with `tag` in it (`mxl-<tag>-…`), to tell the
    /// servers of different tests apart in `ps`; no server runs yet.
    pub fn tagged(tag: &str) -> Self {
        PrivateTmux {
            socket: unique_name(&format!("mxl-{tag}")),
        }
    }

    /// `tmux -L <socket> -f /dev/null` without `TMUX`, for the caller to add
    /// arguments to (e.g. a control-mode client: `.args(["-C", "attach"])`).
    pub fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        c.env_remove("TMUX")
            .args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    /// Runs `tmux … args` and returns its output whatever the exit status.
    pub fn output(&self, args: &[&str]) -> std::io::Result<Output> {
        self.command().args(args).output()
    }

    /// Runs `tmux … args`; stdout without its trailing newlines, or the error
    /// with tmux's stderr when it cannot run or exits non-zero.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .output(args)
            .with_context(|| format!("cannot run tmux {args:?}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            bail!(
                "tmux {args:?} failed ({}): {}",
                out.status,
                stderr.trim_end()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_owned())
    }

    /// [`run`](Self::run) for tests: panics with tmux's message on failure.
    pub fn tmux(&self, args: &[&str]) -> String {
        self.run(args).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// `display -p -t target format` for tests (panics on failure).
    pub fn display(&self, target: &str, format: &str) -> String {
        self.tmux(&["display", "-p", "-t", target, format])
    }

    /// Creates a detached session `name` of `cols`×`rows` running `sh`;
    /// returns its first pane id.
    pub fn new_session(&self, name: &str, cols: u16, rows: u16) -> Result<String> {
        self.new_session_running(name, cols, rows, Some("sh"))
    }

    /// Creates a detached session `name` of `cols`×`rows` running the shell
    /// command `cmd` (tmux's default shell when None); returns its first pane id.
    pub fn new_session_running(
        &self,
        name: &str,
        cols: u16,
        rows: u16,
        cmd: Option<&str>,
    ) -> Result<String> {
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let mut args = vec![
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_id}",
            "-s",
            name,
            "-x",
            &cols,
            "-y",
            &rows,
        ];
        args.extend(cmd);
        self.run(&args)
    }

    /// `#{pane_width}x#{pane_height}` of a pane.
    pub fn pane_size(&self, pane: &str) -> Result<String> {
        self.run(&[
            "display-message",
            "-p",
            "-t",
            pane,
            "#{pane_width}x#{pane_height}",
        ])
    }
}

impl Default for PrivateTmux {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PrivateTmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        // tmux leaves its socket file behind: $TMUX_TMPDIR/tmux-<uid>/<socket>.
        let base = std::env::var_os("TMUX_TMPDIR").unwrap_or_else(|| "/tmp".into());
        if let Ok(me) = std::fs::metadata("/proc/self") {
            let uid = std::os::unix::fs::MetadataExt::uid(&me);
            let path = std::path::Path::new(&base)
                .join(format!("tmux-{uid}"))
                .join(&self.socket);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_runs_on_the_private_socket_until_drop() {
        let tmux = PrivateTmux::tagged("self-test");
        assert!(tmux.socket.starts_with("mxl-self-test-"), "{}", tmux.socket);
        assert!(tmux.run(&["has-session"]).is_err(), "no server yet");
        let pane = tmux.new_session("one", 90, 20).unwrap();
        assert!(pane.starts_with('%'), "{pane}");
        assert_eq!(tmux.pane_size(&pane).unwrap(), "90x20");
        assert_eq!(tmux.display("one", "#{session_name}"), "one");
        let e = tmux.run(&["has-session", "-t", "nope"]).unwrap_err();
        assert!(e.to_string().contains("has-session"), "{e}");
        let socket = tmux.socket.clone();
        drop(tmux);
        let again = PrivateTmux {
            socket: socket.clone(),
        };
        assert!(
            again.run(&["has-session"]).is_err(),
            "server killed on drop"
        );
    }

    #[test]
    fn sockets_are_private() {
        assert_ne!(PrivateTmux::new().socket, PrivateTmux::new().socket);
    }
}
