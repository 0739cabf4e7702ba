//! The slow phone's last screen against the pane's true one (issue 16: the
//! phone must end on the pane's final screen). The phone side has no
//! terminal model, so tmux is the model: the last snapshot the phone got
//! and every byte after it ([`LastScreen`]) are replayed into a fresh pane
//! of the same size, and `capture-pane -p` of that pane is compared with
//! `capture-pane -p` of the real one.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::rig::Rig;

/// Set as the replay pane's title after the replayed bytes: once tmux shows
/// it, every byte before it has been drawn.
const REPLAYED: &str = "muxlink-bench-replayed";
/// Longest wait for the replay to be drawn.
const REPLAY_WAIT: Duration = Duration::from_secs(20);

/// Most bytes kept after the last snapshot for the screen check.
const SCREEN_CAP: usize = 64 * 1024 * 1024;

/// The last snapshot and the bytes after it: replayed into a terminal they
/// give the screen the phone shows.
#[derive(Debug, Default)]
pub struct LastScreen {
    /// The bytes (empty until the first snapshot).
    pub bytes: Vec<u8>,
    /// A snapshot arrived at all.
    pub seen_snapshot: bool,
    /// More than `SCREEN_CAP` bytes followed the last snapshot (not kept).
    pub overflow: bool,
    in_snapshot: bool,
}

impl LastScreen {
    pub fn push(&mut self, data: &[u8], snapshot: bool) {
        // A snapshot's parts arrive back to back; the first part starts afresh.
        if snapshot && !self.in_snapshot {
            self.bytes.clear();
            self.overflow = false;
            self.seen_snapshot = true;
        }
        self.in_snapshot = snapshot;
        if self.overflow || !self.seen_snapshot {
            return;
        }
        if self.bytes.len() + data.len() > SCREEN_CAP {
            self.overflow = true;
            self.bytes = Vec::new();
            return;
        }
        self.bytes.extend_from_slice(data);
    }
}

/// The outcome of the comparison.
#[derive(Debug, Clone, Default)]
pub struct ScreenCheck {
    /// `Some(true)`: the same text; `None`: not compared (see `detail`).
    pub same: Option<bool>,
    /// Why not compared, or the first differing line.
    pub detail: String,
}

/// Replays `screen` into a fresh pane and compares its text with `pane`'s.
pub fn compare(rig: &mut Rig, pane: &str, screen: &LastScreen) -> Result<ScreenCheck> {
    if !screen.seen_snapshot || screen.overflow {
        let why = if screen.overflow {
            "too many bytes after the last snapshot to keep"
        } else {
            "no snapshot reached the phone"
        };
        return Ok(ScreenCheck {
            same: None,
            detail: why.into(),
        });
    }
    let truth = rig.tmux.run(&["capture-pane", "-p", "-t", pane])?;
    let file = rig.scratch_file("replay.bin");
    let mut bytes = screen.bytes.clone();
    bytes.extend_from_slice(format!("\x1b]2;{REPLAYED}\x1b\\").as_bytes());
    std::fs::write(&file, &bytes).context("writing the replay file")?;
    let cmd = format!(
        "stty raw -echo; cat '{}'; exec cat >/dev/null",
        file.display()
    );
    let replay = rig.pane(&cmd)?;
    let result = (|| {
        let deadline = Instant::now() + REPLAY_WAIT;
        while rig
            .tmux
            .run(&["display-message", "-p", "-t", &replay, "#{pane_title}"])?
            != REPLAYED
        {
            if Instant::now() >= deadline {
                anyhow::bail!("the replay was not drawn within {REPLAY_WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        rig.tmux.run(&["capture-pane", "-p", "-t", &replay])
    })();
    rig.kill_pane(&replay);
    let _ = std::fs::remove_file(&file);
    let phone = result?;
    if phone == truth {
        return Ok(ScreenCheck {
            same: Some(true),
            detail: String::new(),
        });
    }
    let (t, p): (Vec<&str>, Vec<&str>) = (truth.lines().collect(), phone.lines().collect());
    let row = (0..t.len().max(p.len()))
        .find(|&i| t.get(i) != p.get(i))
        .unwrap_or(0);
    Ok(ScreenCheck {
        same: Some(false),
        detail: format!(
            "row {row}: pane {:?}, phone {:?}",
            t.get(row).copied().unwrap_or(""),
            p.get(row).copied().unwrap_or("")
        ),
    })
}
