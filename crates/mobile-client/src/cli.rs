//! The `muxlink-phone` command line: pair with a host, list its sessions, or attach
//! to a pane in the local terminal (raw mode, Ctrl-] quits). A library function so
//! other packages' binaries (the end-to-end tests) can run exactly this code.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::{Event, PhoneClient, PhoneConfig, Request, RtcConfig, Session};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Ctrl-] ends `attach`.
const QUIT_BYTE: u8 = 0x1d;
/// The host closes peers that do not ping within 60 s.
const PING_EVERY: Duration = Duration::from_secs(20);

#[derive(Parser)]
#[command(
    name = "muxlink-phone",
    about = "The muxlink phone client in a terminal"
)]
struct Cli {
    /// Config directory (identity key, pairing record).
    #[arg(long, env = "MUXLINK_PHONE_DIR")]
    config_dir: Option<PathBuf>,
    /// Request-signing secret shared with the signaling server.
    #[arg(long, env = "MUXLINK_HMAC_SECRET", default_value = "")]
    hmac_secret: String,
    /// Device name.
    #[arg(long, default_value = "muxlink-phone")]
    name: String,
    /// Loopback-only WebRTC (host on this machine, no mDNS).
    #[arg(long)]
    loopback: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pair with a host from its QR payload text.
    Pair {
        /// `CODE|hostKey|hostId|serverUrl`.
        payload: String,
    },
    /// List the host's sessions, windows and panes.
    Ls,
    /// Show a pane live; Ctrl-] quits.
    Attach {
        /// Pane id such as `%3`; default: the active pane of the first session.
        pane: Option<String>,
        /// Ask for uncompressed output.
        #[arg(long)]
        no_compress: bool,
    },
}

/// Runs `muxlink-phone` with the process arguments (parses them, exits on `--help`
/// or a usage error like any clap program).
pub fn main_entry() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let dir = match cli.config_dir.clone() {
        Some(d) => d,
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set; pass --config-dir")?;
            PathBuf::from(home).join(".config").join("muxlink-phone")
        }
    };
    let mut config = PhoneConfig::new(dir);
    config.hmac_secret = cli.hmac_secret.clone();
    config.name = cli.name.clone();
    if cli.loopback {
        config.rtc = RtcConfig::loopback();
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(cli.cmd, config))
}

async fn run(cmd: Cmd, config: PhoneConfig) -> Result<()> {
    let client = PhoneClient::open(config)?;
    match cmd {
        Cmd::Pair { payload } => {
            let rec = client.pair(&payload).await?;
            let host = if rec.host_name.is_empty() {
                "host".to_owned()
            } else {
                printable(&rec.host_name)
            };
            println!("paired with {host} ({})", rec.host_device_id);
        }
        Cmd::Ls => {
            let sig = client.signaling().await?;
            let conn = client.connect(sig).await?;
            print_tree(&conn.list_sessions().await?);
            conn.close().await;
        }
        Cmd::Attach { pane, no_compress } => attach(&client, pane, !no_compress).await?,
    }
    Ok(())
}

/// A host name from the server with every control and bidi formatting
/// character written as `\u{…}`, so it cannot drive the terminal.
fn printable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if signaling_proto::is_forbidden_name_char(c) {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn print_tree(sessions: &[Session]) {
    for s in sessions {
        let att = if s.attached { " (attached)" } else { "" };
        println!("{} {}{}", s.id, s.name, att);
        for w in &s.windows {
            println!("  {} {}{}", w.id, w.name, if w.active { " *" } else { "" });
            for p in &w.panes {
                println!(
                    "    {} {}x{} {}{}",
                    p.id,
                    p.size.cols,
                    p.size.rows,
                    p.current_command,
                    if p.active { " *" } else { "" }
                );
            }
        }
    }
}

fn default_pane(sessions: &[Session]) -> Option<String> {
    let s = sessions.first()?;
    let w = s.windows.iter().find(|w| w.active).or(s.windows.first())?;
    let p = w.panes.iter().find(|p| p.active).or(w.panes.first())?;
    Some(p.id.clone())
}

/// Restores the terminal however `attach` ends.
struct RawMode;

impl RawMode {
    fn enable() -> Result<RawMode> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

async fn attach(client: &PhoneClient, pane: Option<String>, compress: bool) -> Result<()> {
    let sig = client.signaling().await?;
    let conn = client.connect(sig).await?;
    let pane = match pane {
        Some(p) => p,
        None => match default_pane(&conn.list_sessions().await?) {
            Some(p) => p,
            None => bail!("the host has no panes"),
        },
    };
    let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
    conn.attach(
        &pane,
        cols.clamp(1, 500),
        rows.clamp(1, 500),
        false,
        compress,
    )
    .await?;
    let raw = RawMode::enable()?;

    // Stdin is read on a plain thread: blocking reads, bounded hand-over.
    let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut out = std::io::stdout();
    let end = loop {
        tokio::select! {
            k = keys.recv() => match k {
                Some(bytes) => {
                    if let Some(i) = bytes.iter().position(|b| *b == QUIT_BYTE) {
                        conn.input(&bytes[..i]).await?;
                        break "detached";
                    }
                    conn.input(&bytes).await?;
                }
                None => break "stdin closed",
            },
            ev = conn.next_event() => match ev {
                Some(Event::Output { data }) => {
                    out.write_all(&data)?;
                    out.flush()?;
                }
                Some(Event::PaneClosed { .. }) => break "pane closed",
                Some(Event::Error { code, message }) => {
                    tracing::warn!(%code, %message, "host error");
                }
                Some(_) => {}
                None => break "connection closed",
            },
            _ = winch.recv() => {
                if let Ok((c, r)) = crossterm::terminal::size() {
                    conn.resize(c.clamp(1, 500), r.clamp(1, 500)).await?;
                }
            }
            _ = ping.tick() => {
                // Fire and forget: waiting for the pong here would stop the
                // event drain above while output floods in.
                let _ = conn.send_request(&Request::Ping).await;
            }
        }
    };
    let _ = conn.detach().await;
    drop(raw);
    conn.close().await;
    println!("\r\n[{end}]");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn host_names_are_printed_escaped() {
        assert_eq!(printable("desk"), "desk");
        assert_eq!(printable("d\u{1b}[2J\u{9b}"), "d\\u{1b}[2J\\u{9b}");
        assert_eq!(printable("evil\u{202e}txt"), "evil\\u{202e}txt");
    }
}
