//! The `muxlink-phone` command line: pair with a host, list its sessions, or attach
//! to a pane in the local terminal (raw mode, Ctrl-] quits; a lost connection
//! is replaced and, with stream v2, the pane's byte stream resumed). A library function so
//! other packages' binaries (the end-to-end tests) can run exactly this code.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::{
    ClientError, Event, PhoneClient, PhoneConfig, PhoneConnection, Request, RtcConfig, Session,
};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Ctrl-] ends `attach`.
const QUIT_BYTE: u8 = 0x1d;
/// The host closes peers that do not ping within 60 s.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Waits before each connect tried after the connection went away (the
/// first at once); then the viewer gives up.
const RECONNECT_BACKOFF: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(8),
];

#[derive(Parser)]
#[command(
    name = "muxlink-phone",
    version,
    about = "The muxlink phone client in a terminal"
)]
struct Cli {
    /// Config directory (identity key, pairing record) [default: the XDG config
    /// dir, e.g. ~/.config/muxlink-phone].
    #[arg(long, env = "MUXLINK_PHONE_DIR", value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Request-signing secret of the signaling server, if it has one (prefer
    /// the env var: flags show in `ps`).
    #[arg(
        long,
        env = "MUXLINK_HMAC_SECRET",
        default_value = "",
        hide_default_value = true,
        hide_env_values = true,
        value_name = "SECRET"
    )]
    hmac_secret: String,
    /// API version the signaling server serves (empty: no prefix).
    #[arg(
        long,
        env = "MUXLINK_API_VERSION",
        default_value = signaling_proto::consts::DEFAULT_API_VERSION,
        value_name = "VERSION"
    )]
    api_version: String,
    /// Device name.
    #[arg(long, default_value = "muxlink-phone")]
    name: String,
    /// Loopback-only WebRTC (host on this machine, no mDNS).
    #[arg(long)]
    loopback: bool,
    /// Speak the terminal protocol without stream v2 (no fast channel, no
    /// offsets; a lost connection is re-attached with a fresh screen instead
    /// of resumed).
    #[arg(long)]
    no_stream_v2: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Pair with a host from its QR payload text.
    Pair {
        /// The `payload:` line `muxlink pair` prints.
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
/// or a usage error like any clap program). A failure is printed as one line,
/// `muxlink-phone: <what went wrong>`, and the process exits with status 1, so
/// this returns only on success.
pub fn main_entry() -> Result<()> {
    if main() != ExitCode::SUCCESS {
        std::process::exit(1);
    }
    Ok(())
}

/// [`main_entry`] for a `main` that returns the exit code.
pub fn main() -> ExitCode {
    match run_cli() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("muxlink-phone: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes as one line, each cause added only when the
/// message so far does not already say it.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The config directory: `--config-dir` / `MUXLINK_PHONE_DIR`, else the XDG
/// config directory (`$XDG_CONFIG_HOME/muxlink-phone`, `~/.config/muxlink-phone`).
fn config_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    directories::ProjectDirs::from("", "", "muxlink-phone")
        .map(|p| p.config_dir().to_path_buf())
        .context("cannot find a home directory; pass --config-dir or set MUXLINK_PHONE_DIR")
}

fn run_cli() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let dir = config_dir(cli.config_dir.clone())?;
    let mut config = PhoneConfig::new(dir);
    config.hmac_secret = cli.hmac_secret.clone();
    config.api_version = cli.api_version.clone();
    config.name = cli.name.clone();
    if cli.loopback {
        config.rtc = RtcConfig::loopback();
    }
    config.stream_v2 = !cli.no_stream_v2;
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

/// The terminal size to ask for, within the protocol's bounds.
fn term_size() -> (u16, u16) {
    let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
    (cols.clamp(1, 500), rows.clamp(1, 500))
}

async fn attach(client: &PhoneClient, pane: Option<String>, compress: bool) -> Result<()> {
    let sig = client.signaling().await?;
    let mut conn = client.connect(sig).await?;
    let pane = match pane {
        Some(p) => p,
        None => match default_pane(&conn.list_sessions().await?) {
            Some(p) => p,
            None => bail!("the host has no panes"),
        },
    };
    let (cols, rows) = term_size();
    conn.attach(&pane, cols, rows, false, compress).await?;
    let raw = RawMode::enable()?;

    // Stdin is read on a plain thread: blocking reads, bounded hand-over.
    let (keys_tx, keys) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
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
    let mut view = View {
        keys,
        winch: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?,
        ping: tokio::time::interval(PING_EVERY),
        out: std::io::stdout(),
    };
    let end = loop {
        match view.run(&conn).await? {
            Ended::Done(why) => break why,
            Ended::Lost => match reconnect(client, &conn, &pane, compress).await {
                Ok(next) => conn = next,
                Err(e) => {
                    tracing::warn!(error = %e, "reconnect failed");
                    break "connection closed";
                }
            },
        }
    };
    let _ = conn.detach().await;
    drop(raw);
    conn.close().await;
    println!("\r\n[{end}]");
    Ok(())
}

/// How one connection's part of `attach` ended.
enum Ended {
    /// For good, with the reason shown.
    Done(&'static str),
    /// The connection went away: reconnect and continue.
    Lost,
}

/// The viewer's inputs and output, kept across connections.
struct View {
    keys: tokio::sync::mpsc::Receiver<Vec<u8>>,
    winch: tokio::signal::unix::Signal,
    ping: tokio::time::Interval,
    out: std::io::Stdout,
}

impl View {
    /// Keys to the host, output to the terminal, until the user quits or
    /// the connection goes away (its events drained to the end).
    async fn run(&mut self, conn: &PhoneConnection) -> Result<Ended> {
        let mut lost = false;
        loop {
            tokio::select! {
                k = self.keys.recv(), if !lost => match k {
                    Some(bytes) => {
                        let (keys, quit) = match bytes.iter().position(|b| *b == QUIT_BYTE) {
                            Some(i) => (&bytes[..i], true),
                            None => (&bytes[..], false),
                        };
                        match conn.input(keys).await {
                            Ok(()) => {}
                            Err(ClientError::Closed) => lost = true,
                            Err(e) => return Err(e.into()),
                        }
                        if quit {
                            return Ok(Ended::Done("detached"));
                        }
                    }
                    None => return Ok(Ended::Done("stdin closed")),
                },
                ev = conn.next_event() => match ev {
                    Some(Event::Output { data, .. }) => {
                        self.out.write_all(&data)?;
                        self.out.flush()?;
                    }
                    Some(Event::PaneClosed { .. }) => return Ok(Ended::Done("pane closed")),
                    Some(Event::Error { code, message }) => {
                        tracing::warn!(%code, %message, "host error");
                    }
                    Some(_) => {}
                    None => return Ok(Ended::Lost),
                },
                _ = self.winch.recv(), if !lost => {
                    let (c, r) = term_size();
                    if let Err(e) = conn.resize(c, r).await {
                        tracing::debug!(error = %e, "resize not sent");
                    }
                }
                _ = self.ping.tick(), if !lost => {
                    // Fire and forget: waiting for the pong here would stop the
                    // event drain above while output floods in.
                    let _ = conn.send_request(&Request::Ping).await;
                }
            }
        }
    }
}

/// A new connection attached to `pane` again after `old` went away: with
/// stream v2 it resumes `old`'s byte stream where the terminal stopped
/// (exactly, or after a snapshot when the host no longer holds the bytes);
/// without, a re-attach with a snapshot. Four tries over about 12 s, then
/// the error.
async fn reconnect(
    client: &PhoneClient,
    old: &PhoneConnection,
    pane: &str,
    compress: bool,
) -> Result<PhoneConnection> {
    old.close().await;
    let point = old.resume_point();
    let mut last = None;
    for wait in RECONNECT_BACKOFF {
        tokio::time::sleep(wait).await;
        let attempt = async {
            let conn = client.connect(client.signaling().await?).await?;
            let (cols, rows) = term_size();
            match &point {
                Some(p) => conn.resume(p, cols, rows, compress).await.map(|_| ())?,
                None => conn.attach(pane, cols, rows, true, compress).await?,
            }
            Ok::<_, ClientError>(conn)
        };
        match attempt.await {
            Ok(conn) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no reconnect tried"), Into::into))
}

#[cfg(test)]
mod tests {
    use super::{Cli, config_dir, error_line, printable};
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_consistent_and_has_a_version() {
        Cli::command().debug_assert();
        assert!(Cli::command().get_version().is_some());
    }

    #[test]
    fn an_error_is_one_line_without_repeats() {
        let e = anyhow::anyhow!("cannot reach http://x: connection refused")
            .context("cannot reach http://x: connection refused")
            .context("pairing failed");
        assert_eq!(
            error_line(&e),
            "pairing failed: cannot reach http://x: connection refused"
        );
        let e = anyhow::anyhow!("two\nlines");
        assert_eq!(error_line(&e), "two lines");
    }

    #[test]
    fn the_config_dir_flag_wins() {
        let d = config_dir(Some("/tmp/x".into())).unwrap();
        assert_eq!(d, std::path::PathBuf::from("/tmp/x"));
    }

    #[test]
    fn host_names_are_printed_escaped() {
        assert_eq!(printable("desk"), "desk");
        assert_eq!(printable("d\u{1b}[2J\u{9b}"), "d\\u{1b}[2J\\u{9b}");
        assert_eq!(printable("evil\u{202e}txt"), "evil\\u{202e}txt");
    }
}
