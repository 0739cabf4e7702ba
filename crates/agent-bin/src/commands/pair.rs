//! `muxlink pair` (pairing.md §2): register a code, show it, wait on the
//! signaling socket for `pair_complete`, derive and store the secret, reload the agent.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use signaling_client::{Identity, SignalingClient};
use signaling_proto::SignalingMessage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::commands::confirm::confirm;
use crate::config::Config;
use crate::error::CliError;
use crate::http::Http;
use crate::pairing::{self, PairingKey};
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
}

/// Runs `pair`.
pub async fn pair(cfg: &Config, opts: &PairOptions) -> Result<(), CliError> {
    let store = Store::new(&cfg.paths.data_dir);
    let key = store.load_identity()?;
    let server = cfg.require_server()?.to_string();
    let host_id = store::device_id(&key.verifying_key().to_bytes());
    let old = store.load_paired()?;
    if let Some(d) = &old {
        let label = d.name.clone().unwrap_or_else(|| d.device_id.clone());
        confirm(
            &format!("already paired with {label}; replace it"),
            opts.yes,
        )?;
    }

    let pkey = PairingKey::generate();
    let http = Http::new(&server, &cfg.hmac_secret);
    let code = {
        let (key, public, name) = (key.clone(), pkey.public, cfg.host_name.clone());
        tokio::task::spawn_blocking(move || http.pair_initiate(&key, &public, &name))
            .await
            .map_err(|e| CliError::Other(format!("pairing request failed: {e}")))??
    };

    // Open the signaling socket before showing the code so no pair_complete is missed.
    let (tx, mut rx) = mpsc::channel::<SignalingMessage>(8);
    let handler: Arc<dyn Fn(SignalingMessage) + Send + Sync> = Arc::new(move |m| {
        if m.kind == "pair_complete" {
            let _ = tx.try_send(m);
        }
    });
    let client = SignalingClient::new(
        Identity::from_signing_key(key.clone()),
        &server,
        &cfg.host_name,
        handler,
        &cfg.hmac_secret,
    );
    let cancel = CancellationToken::new();
    let mut run = tokio::spawn({
        let client = client.clone();
        let cancel = cancel.clone();
        async move { client.run(cancel).await }
    });
    let guard = cancel.clone().drop_guard();

    wait_connected(&client, &mut run).await?;

    let payload = pairing::qr_payload(&code, &pkey.public, &host_id, &server);
    show(
        &payload,
        &pairing::web_url(&server, &payload),
        &code,
        opts.payload_only,
    );

    let msg = wait_complete(&mut rx, &mut run, opts).await;
    client.close();
    drop(guard);
    let msg = msg?;

    let mobile_id = msg.mobile_device_id.clone();
    if !store::valid_device_id(&mobile_id) {
        return Err(CliError::Other(format!(
            "the server sent an invalid phone id {mobile_id:?}; pair again"
        )));
    }
    let mobile_public = pairing::decode_public(&msg.mobile_x25519_public_key).ok_or_else(|| {
        CliError::Other("the phone's pairing key is not 32 bytes of base64; pair again".into())
    })?;
    let secret = pkey.derive(&mobile_public)?;
    if let Some(d) = &old {
        store.delete_secret(&d.device_id)?;
        store.save_paired(None)?;
    }
    store.store_secret(&mobile_id, &secret)?;
    let name: Option<String> = Some(msg.mobile_name.chars().take(64).collect());
    let record = PairedDevice::new(&mobile_id, name);
    store.save_paired(Some(&record))?;
    if pidfile::signal_agent(&cfg.paths.pid_file(), nix::sys::signal::Signal::SIGUSR2).is_some() {
        eprintln!("told the running agent to reload");
    }
    println!("PAIRED {mobile_id}");
    if !opts.payload_only {
        println!(
            "paired with {}; start the agent with `muxlink start`",
            record.name.as_deref().unwrap_or("your phone")
        );
    }
    Ok(())
}

type RunHandle = tokio::task::JoinHandle<Result<(), signaling_client::SignalingError>>;

async fn wait_connected(client: &SignalingClient, run: &mut RunHandle) -> Result<(), CliError> {
    let mut state = client.subscribe_state();
    let connected = async {
        state
            .wait_for(|s| *s == signaling_client::ConnectionState::Connected)
            .await
            .map(|_| ())
    };
    tokio::select! {
        r = connected => r.map_err(|_| CliError::Other("the signaling connection ended".into())),
        r = &mut *run => Err(match r {
            Ok(Err(e)) => CliError::Other(format!("signaling failed: {e}")),
            _ => CliError::Other("the signaling connection ended".into()),
        }),
        _ = tokio::time::sleep(Duration::from_secs(20)) => Err(CliError::Other(
            "could not open the signaling connection within 20 s; check the server and its HMAC secret".into(),
        )),
    }
}

/// The QR holds the web client URL (payload in the fragment) so a phone camera opens
/// it directly; the plain payload and code stay printed for `muxlink-phone` and typing.
fn show(payload: &str, url: &str, code: &str, payload_only: bool) {
    let mut out = std::io::stdout().lock();
    if !payload_only {
        if let Some(qr) = crate::qr::render(url) {
            let _ = writeln!(out, "{qr}");
        }
        let _ = writeln!(
            out,
            "Scan this code with the phone camera to open the web client, or enter the code {code}"
        );
        let _ = writeln!(out, "web client: {url}");
        let _ = writeln!(out, "payload: {payload}");
    }
    let _ = writeln!(out, "PAIRING_PAYLOAD {payload}");
    let _ = out.flush();
}

async fn wait_complete(
    rx: &mut mpsc::Receiver<SignalingMessage>,
    run: &mut RunHandle,
    opts: &PairOptions,
) -> Result<SignalingMessage, CliError> {
    let tty = std::io::stderr().is_terminal() && !opts.payload_only;
    let start = tokio::time::Instant::now();
    let deadline = start + opts.timeout;
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
                Some(m) => break Ok(m),
                None => break Err(CliError::Other("the signaling connection ended".into())),
            },
            r = &mut *run => {
                break Err(match r {
                    Ok(Err(e)) => CliError::Other(format!("signaling failed: {e}")),
                    _ => CliError::Other("the signaling connection ended".into()),
                });
            }
            _ = tokio::time::sleep_until(deadline) => break Err(CliError::PairingTimeout),
            _ = tokio::time::sleep_until(next_tick) => {}
            _ = tokio::signal::ctrl_c() => break Err(CliError::Cancelled),
        }
    };
    if tty {
        eprintln!();
    }
    result
}
