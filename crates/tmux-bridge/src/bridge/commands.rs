//! The tmux commands of [`TmuxBridge`]: the session tree, input as
//! `send-keys -H`, forcing and releasing pane sizes, and killing and
//! creating sessions (the latter starting a server when none runs).

use std::process::Stdio;
use std::sync::atomic::Ordering;

use terminal_protocol::Session;

use super::{
    Forced, INPUT_BYTES_PER_COMMAND, TmuxBridge, first_line, lock, map_pane_error, ok_block,
};
use crate::control::{Expect, tmux_command};
use crate::error::{BridgeError, Result};
use crate::quote::quote;
use crate::tree::{list_format, parse_tree};

impl TmuxBridge {
    /// The whole session tree from one `list-panes -a` call. No server → empty.
    pub async fn list_sessions(&self) -> Result<Vec<Session>> {
        let line = format!("list-panes -a -F {}", quote(&list_format()));
        match self.call(line).await {
            Ok((block, session)) => Ok(parse_tree(&block.lines, session.as_deref())),
            Err(BridgeError::NoServer) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Delivers `data` to the pane literally and in order (every byte value,
    /// NUL included) as `send-keys -H` commands over the control client.
    pub async fn send_input(&self, pane_id: &str, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let target = quote(pane_id);
        let lines: Vec<(String, Expect)> = data
            .chunks(INPUT_BYTES_PER_COMMAND)
            .map(|chunk| {
                let mut line = String::with_capacity(24 + chunk.len() * 3);
                line.push_str("send-keys -H -t ");
                line.push_str(&target);
                for b in chunk {
                    line.push_str(&format!(" {b:02x}"));
                }
                (line, Expect::One)
            })
            .collect();
        let replies = self
            .request(lines)
            .await
            .map_err(|e| map_pane_error(pane_id, e))?;
        for reply in replies {
            for block in reply.blocks {
                ok_block(block).map_err(|e| map_pane_error(pane_id, e))?;
            }
        }
        Ok(())
    }

    /// True when the pane exists (false also when no server runs).
    pub async fn pane_exists(&self, pane_id: &str) -> Result<bool> {
        let line = format!("display -p -t {} '#{{pane_id}}'", quote(pane_id));
        match self.call(line).await {
            Ok((block, _)) => Ok(first_line(&block)? == pane_id),
            Err(BridgeError::Tmux(_)) | Err(BridgeError::NoServer) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Forces the pane to `cols`×`rows`: `resize-window` when it is alone in
    /// its window (tmux pins `window-size` to manual), else `resize-pane`
    /// after remembering the window layout for [`TmuxBridge::release_size`].
    pub async fn force_size(&self, pane_id: &str, cols: u16, rows: u16) -> Result<()> {
        let line = format!(
            "display -p -t {} {}",
            quote(pane_id),
            quote("#{window_id}\u{1f}#{window_panes}\u{1f}#{window_layout}")
        );
        let (block, _) = self
            .call(line)
            .await
            .map_err(|e| map_pane_error(pane_id, e))?;
        let info = first_line(&block)?;
        let mut f = info.split('\u{1f}');
        let (Some(window_id), Some(panes), Some(layout)) = (f.next(), f.next(), f.next()) else {
            return Err(BridgeError::Protocol(format!("window info {info:?}")));
        };
        let alone = panes.trim() == "1";
        {
            let mut forced = lock(&self.inner.forced);
            let keep = forced
                .get(pane_id)
                .is_some_and(|old| old.window_id == window_id);
            if !keep {
                forced.insert(
                    pane_id.to_owned(),
                    Forced {
                        window_id: window_id.to_owned(),
                        layout: (!alone).then(|| layout.to_owned()),
                    },
                );
            }
        }
        let line = if alone {
            format!("resize-window -t {} -x {cols} -y {rows}", quote(window_id))
        } else {
            format!("resize-pane -t {} -x {cols} -y {rows}", quote(pane_id))
        };
        self.call(line)
            .await
            .map_err(|e| map_pane_error(pane_id, e))?;
        Ok(())
    }

    /// Undoes [`TmuxBridge::force_size`]: restores the remembered layout of a
    /// multi-pane window (ignored if panes came or went since), then unsets
    /// the window's `window-size` so tmux refits it to the desktop client.
    pub async fn release_size(&self, pane_id: &str) -> Result<()> {
        let forced = lock(&self.inner.forced).remove(pane_id);
        let window_id = match &forced {
            Some(f) => f.window_id.clone(),
            None => {
                let line = format!("display -p -t {} '#{{window_id}}'", quote(pane_id));
                let (block, _) = self
                    .call(line)
                    .await
                    .map_err(|e| map_pane_error(pane_id, e))?;
                first_line(&block)?
            }
        };
        if let Some(layout) = forced.and_then(|f| f.layout) {
            let line = format!("select-layout -t {} {}", quote(&window_id), quote(&layout));
            if let Err(e) = self.call(line).await {
                tracing::debug!(error = %e, "window layout not restored");
            }
        }
        let line = format!("set-option -w -t {} -u window-size", quote(&window_id));
        self.call(line)
            .await
            .map_err(|e| map_pane_error(pane_id, e))?;
        Ok(())
    }

    /// Kills a session. `target` is a session id (`$3`) or an exact name
    /// (tmux's prefix matching is turned off with `=`).
    pub async fn kill_session(&self, target: &str) -> Result<()> {
        let t = if target.starts_with(['$', '@', '%', '=']) {
            target.to_owned()
        } else {
            format!("={target}")
        };
        self.call(format!("kill-session -t {}", quote(&t))).await?;
        Ok(())
    }

    /// Creates a detached session with tmux's default name and shell and
    /// returns it as found in a fresh tree. Starts the server if none runs.
    pub async fn create_session(&self) -> Result<Session> {
        let line = "new-session -d -P -F '#{session_id}'".to_owned();
        let id = match self.call(line).await {
            Ok((block, _)) => first_line(&block)?,
            Err(BridgeError::NoServer) => self.new_session_process().await?,
            Err(e) => return Err(e),
        };
        let id = id.trim().to_owned();
        self.list_sessions()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| BridgeError::Protocol(format!("created session {id} not in the tree")))
    }

    /// `tmux new-session -d` as its own process: the only way to start a
    /// server, as a control client needs a session to exist.
    async fn new_session_process(&self) -> Result<String> {
        match self.new_session_process_once().await {
            // A server that was just exiting (its last session closed) can
            // refuse the first client; a second try starts a fresh one.
            Err(BridgeError::Tmux(_)) => self.new_session_process_once().await,
            other => other,
        }
    }

    async fn new_session_process_once(&self) -> Result<String> {
        let mut cmd = tmux_command(&self.spawn_args());
        cmd.args(["new-session", "-d", "-P", "-F", "#{session_id}"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        self.inner.spawned.fetch_add(1, Ordering::SeqCst);
        let timeout = self.inner.cfg.timeout;
        let out = tokio::time::timeout(timeout, cmd.output())
            .await
            .map_err(|_| BridgeError::Timeout(timeout))??;
        if !out.status.success() {
            return Err(BridgeError::Tmux(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}
