//! `muxlink pair` (pairing.md §2, §9): register a code, show the v2 payload
//! (with the token only the QR carries), wait on the signaling socket for a
//! `pair_complete` whose confirmation proves the phone read the QR, store the
//! secret, reload the agent. A `pair_complete` that fails the check is refused
//! with one line and the wait goes on.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use signaling_client::{ClientConfig, Identity, Signal, SignalingClient};
use signaling_proto::SignalingMessage;
use signaling_proto::consts::PAIRING_TIMEOUT;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::commands::confirm::confirm;
use crate::config::Config;
use crate::error::CliError;
use crate::http::Http;
use crate::pairing::{self, AcceptedPhone, PairingAttempt};
use crate::pidfile;
use crate::store::{self, PairedDevice, Store};

/// Options of `pair`.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// Replace without asking.
    pub yes: bool,
    /// Script mode: only machine-readable lines on stdout.
    pub payload_only: bool,
    /// How long to wait for the phone.
    pub timeout: Duration,
    /// Where the QR code sends the phone: the web client's URL (default: the
    /// signaling server, which serves the bundled client).
    pub web_url: Option<String>,
}

/// Runs `pair`.
pub async fn pair(cfg: &Config, opts: &PairOptions) -> Result<(), CliError> {
    if let Some(url) = &opts.web_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(CliError::Other(format!(
            "--web-url {url:?} must be an http:// or https:// URL of the web client"
        )));
    }
    let store = Store::new(&cfg.paths.data_dir);
    let key = store.load_identity()?;
    store::secure_dirs(&cfg.paths)?;
    let server = cfg.require_server()?.to_string();
    // Scripts (--payload-only) pair `muxlink-phone` on loopback on purpose.
    if !opts.payload_only
        && let Some(warning) = crate::config::phone_reachability_warning(&server)
    {
        eprintln!("{warning}");
    }
    let host_id = signaling_proto::device_id(&key.verifying_key().to_bytes());
    let old = match store.load_paired() {
        Err(CliError::CorruptRecord { path, reason }) => {
            // Pairing again is the cure for a broken record: replace it.
            confirm(
                &format!("{} is corrupt ({reason}); replace it", path.display()),
                opts.yes,
            )?;
            None
        }
        other => other?,
    };
    if let Some(d) = &old {
        let label = crate::printable::printable(d.name.as_deref().unwrap_or(&d.device_id));
        confirm(
            &format!("already paired with {label}; replace it"),
            opts.yes,
        )?;
    }

    // Key and token of this attempt; zeroized when `attempt` drops.
    let attempt = PairingAttempt::generate();
    let http = Http::new(&server, &cfg.api_version, &cfg.hmac_secret);
    let code = {
        let (key, public, name) = (key.clone(), attempt.public, cfg.host_name.clone());
        tokio::task::spawn_blocking(move || http.pair_initiate(&key, &public, &name))
            .await
            .map_err(|e| CliError::Other(format!("pairing request failed: {e}")))??
    };
    // The server keeps the code this long from now (signaling.md §4).
    let code_expires = tokio::time::Instant::now() + PAIRING_TIMEOUT;

    // Open the signaling socket before showing the code so no pair_complete is missed.
    let (client, driver, mut rx) = SignalingClient::new(ClientConfig {
        hmac_secret: cfg.hmac_secret.clone(),
        api_version: cfg.api_version.clone(),
        ..ClientConfig::new(
            Identity::from_signing_key(key.clone()),
            &server,
            &cfg.host_name,
        )
    });
    let cancel = CancellationToken::new();
    let mut run = tokio::spawn(driver.run(cancel.clone()));
    let guard = cancel.clone().drop_guard();

    wait_connected(&client, &mut run, &server).await?;

    let payload = attempt.payload(&code, &host_id, &server);
    let web_base = opts.web_url.as_deref().unwrap_or(&server);
    show(
        &payload,
        &pairing::web_url(web_base, &payload),
        opts.payload_only,
    );

    let phone = wait_verified(&mut rx, &mut run, opts, code_expires, &attempt, &host_id).await;
    client.close();
    drop(guard);
    drop(attempt);
    let phone = phone?;

    if let Some(d) = &old {
        store.delete_secret(&d.device_id)?;
        store.save_paired(None)?;
    }
    store.store_secret(&phone.device_id, &phone.secret)?;
    let name = (!phone.name.is_empty()).then(|| phone.name.clone());
    let record = PairedDevice::new(&phone.device_id, name);
    store.save_paired(Some(&record))?;
    if pidfile::signal_agent(&cfg.paths.pid_file(), nix::sys::signal::Signal::SIGUSR2).is_some() {
        eprintln!("told the running agent to reload");
    }
    println!("PAIRED {}", phone.device_id);
    if !opts.payload_only {
        println!(
            "paired with {} ({}); start the agent with `muxlink start`",
            crate::printable::printable(record.name.as_deref().unwrap_or("your phone")),
            phone.device_id
        );
    }
    Ok(())
}

type RunHandle = tokio::task::JoinHandle<Result<(), signaling_client::SignalingError>>;

async fn wait_connected(
    client: &SignalingClient,
    run: &mut RunHandle,
    server: &str,
) -> Result<(), CliError> {
    let mut state = client.subscribe_state();
    let connected = async {
        state
            .wait_for(|s| *s == signaling_client::ConnectionState::Connected)
            .await
            .map(|_| ())
    };
    // A slow socket says what it is waiting for on a terminal.
    let progress = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if std::io::stderr().is_terminal() {
            eprintln!("contacting {server} (the signaling socket)…");
        }
        std::future::pending::<std::convert::Infallible>().await
    };
    tokio::select! {
        never = progress => match never {},
        r = connected => r.map_err(|_| CliError::Other("the signaling connection ended".into())),
        r = &mut *run => Err(match r {
            Ok(Err(e)) => CliError::Other(format!("signaling failed: {e}")),
            _ => CliError::Other("the signaling connection ended".into()),
        }),
        _ = tokio::time::sleep(Duration::from_secs(20)) => Err(CliError::Other(
            "could not open the signaling connection within 20 s; check the server URL and, if the server has one, its request-signing secret (MUXLINK_HMAC_SECRET or hmac_secret in config.toml)".into(),
        )),
    }
}

/// The QR holds the web client URL (payload in the fragment) so a phone camera opens
/// it directly; the plain payload stays printed for `muxlink-phone` and for pasting.
/// The code alone cannot pair in v2 (the token is in the payload), so it is not
/// offered for typing. The text comes first and the code last, so that on a
/// short terminal the lines scrolling away are the text, never the code; a
/// terminal too short for the half-block code gets the denser sextant one.
fn show(payload: &str, url: &str, payload_only: bool) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "PAIRING_PAYLOAD {payload}");
    if !payload_only {
        let _ = writeln!(out, "web client: {url}");
        let _ = writeln!(out, "payload: {payload}");
        let _ = writeln!(
            out,
            "Scan this code with the phone camera to open the web client, or paste the payload line above into the phone."
        );
        let terminal = std::io::stdout().is_terminal();
        let rows = crossterm::terminal::size()
            .map(|(_, rows)| usize::from(rows))
            .unwrap_or(usize::MAX);
        // Below the code: the countdown line and the cursor.
        let qr = if terminal {
            crate::qr::render_for_height(url, true, rows, 2)
        } else {
            crate::qr::render(url, false)
        };
        if let Some(qr) = qr {
            let _ = write!(out, "{qr}");
        }
    }
    let _ = out.flush();
}

/// Waits for a `pair_complete` that passes [`PairingAttempt::accept`] (every
/// other signal is skipped); each refused one prints one line and the wait
/// goes on until the deadline: the earlier of `--timeout` and `code_expires`,
/// when the server forgets the code (then the countdown stops and the error
/// says the code expired).
async fn wait_verified(
    rx: &mut mpsc::Receiver<Signal>,
    run: &mut RunHandle,
    opts: &PairOptions,
    code_expires: tokio::time::Instant,
    attempt: &PairingAttempt,
    host_id: &str,
) -> Result<AcceptedPhone, CliError> {
    let tty = std::io::stderr().is_terminal() && !opts.payload_only;
    let start = tokio::time::Instant::now();
    let deadline = (start + opts.timeout).min(code_expires);
    let deadline_error = || {
        if deadline >= code_expires {
            CliError::PairingCodeExpired {
                secs: PAIRING_TIMEOUT.as_secs(),
            }
        } else {
            CliError::PairingTimeout
        }
    };
    let tick = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(30)
    };
    let mut next_tick = start;
    let result = loop {
        let now = tokio::time::Instant::now();
        if now >= next_tick {
            let left = deadline.saturating_duration_since(now).as_secs();
            let text = format!(
                "waiting for the phone... {}:{:02} left",
                left / 60,
                left % 60
            );
            if tty {
                eprint!("\r{text} ");
            } else {
                eprintln!("{text}");
            }
            next_tick += tick;
        }
        tokio::select! {
            m = rx.recv() => match m {
                Some(signal @ Signal::PairComplete { .. }) => {
                    let m = SignalingMessage::from(signal);
                    match attempt.accept(&m, host_id) {
                        Ok(phone) => break Ok(phone),
                        Err(why) => {
                            if tty {
                                eprintln!();
                            }
                            tracing::warn!(mobile = %crate::printable::printable(&m.mobile_device_id), "pair_complete refused: {why:?}");
                            eprintln!("{why}");
                        }
                    }
                }
                Some(other) => tracing::debug!(kind = other.kind(), "signaling message ignored while pairing"),
                None => break Err(CliError::Other("the signaling connection ended".into())),
            },
            r = &mut *run => {
                break Err(match r {
                    Ok(Err(e)) => CliError::Other(format!("signaling failed: {e}")),
                    _ => CliError::Other("the signaling connection ended".into()),
                });
            }
            _ = tokio::time::sleep_until(deadline) => break Err(deadline_error()),
            _ = tokio::time::sleep_until(next_tick) => {}
            _ = tokio::signal::ctrl_c() => break Err(CliError::Cancelled),
        }
    };
    if tty {
        eprintln!();
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn wait_until_deadline(timeout: Duration, code_life: Duration) -> CliError {
        let (_tx, mut rx) = mpsc::channel(1);
        let mut run: RunHandle = tokio::spawn(std::future::pending());
        let opts = PairOptions {
            yes: true,
            payload_only: true,
            timeout,
            web_url: None,
        };
        let expires = tokio::time::Instant::now() + code_life;
        let attempt = PairingAttempt::generate();
        let err = wait_verified(&mut rx, &mut run, &opts, expires, &attempt, "host")
            .await
            .map(|_| ())
            .unwrap_err();
        run.abort();
        err
    }

    #[tokio::test]
    async fn the_code_lifetime_ends_the_wait_with_its_own_message() {
        let start = tokio::time::Instant::now();
        let err = wait_until_deadline(Duration::from_secs(30), Duration::from_millis(300)).await;
        assert!(
            matches!(err, CliError::PairingCodeExpired { secs: 300 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the pairing code expired (300 s passed without a phone pairing); run `muxlink pair` again"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        // A --timeout shorter than the code's life is a plain timeout.
        let err = wait_until_deadline(Duration::from_millis(300), Duration::from_secs(30)).await;
        assert!(matches!(err, CliError::PairingTimeout), "{err:?}");
    }
}
