//! `muxlink-demo`, run by `cargo xtask demo`: the whole product on this machine
//! with nothing mocked — the bundled server, a real agent, tmux on a private
//! socket and a Rust phone over WebRTC — then a report and a clean-up.
//!
//! Works without a TTY (CI) and shows the pairing QR code when it has one.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mobile_client::{Event, PhoneConnection};
use muxlink_e2e::pairing::{PAIR_ARGS, blocking, init, pair_phone, phone_config, start_pairing};
use muxlink_e2e::{Home, Stream, Tmux, muxlink_beside_me};

/// How long any one step may take before the demo gives up with a message.
const STEP: Duration = Duration::from_secs(30);
/// Keystrokes timed for the echo round trip.
const ECHO_SAMPLES: usize = 50;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = demo().await {
        eprintln!("demo failed: {e:#}");
        std::process::exit(1);
    }
}

fn step(text: &str) {
    println!("\n==> {text}");
}

async fn demo() -> Result<()> {
    let tty = std::io::stdout().is_terminal();
    let bin = muxlink_beside_me("cargo xtask demo")?;

    step("Starting the bundled signaling server on loopback (in-memory database)");
    let server = signaling_server::Server::start(signaling_server::ServerConfig::default())
        .await
        .context("starting the signaling server")?;
    println!("    server: {}", server.url());
    println!(
        "    web client: {}/ (a browser on this machine can pair with the payload below)",
        server.url()
    );

    step("Starting tmux on a private socket with a session named `demo`");
    let tmux = Tmux::new();
    let pane = tmux.new_session("demo", 100, 30)?;
    tmux.run(&[
        "send-keys",
        "-t",
        &pane,
        "-l",
        "PS1='demo$ '; clear; echo 'This pane lives in tmux on the host.'\r",
    ])?;
    println!("    tmux -L {}: session `demo`, pane {pane}", tmux.socket);

    step("Initialising an agent in a temporary home");
    let mut home = Home::new(&bin.to_string_lossy(), &tmux.socket)?;
    home.server = Some(server.url());
    init(&home, STEP)?;
    println!("    MUXLINK_HOME={}", home.path().display());

    step("Pairing a phone from the QR payload (X25519, secret never leaves the two ends)");
    let pair_args: &[&str] = if tty { &["pair", "--yes"] } else { PAIR_ARGS };
    let (mut pair, payload) = start_pairing(&home, pair_args, STEP)?;
    if tty {
        for (s, l) in &pair.seen {
            if *s == Stream::Stdout && !l.starts_with("PAIRING_PAYLOAD ") {
                println!("    {l}");
            }
        }
    }
    println!("    payload: {payload}");
    let phone_dir = tempfile::tempdir()?;
    let cfg = phone_config(phone_dir.path(), "demo-phone");
    let (phone, record) = pair_phone(cfg, &payload, &mut pair, STEP).await?;
    println!("    paired with host {}", record.host_device_id);

    step("Starting the agent (`muxlink run`)");
    let mut agent = home.spawn(&["run"])?;
    blocking(|| agent.wait_line(STEP, |_, l| l.contains("agent ready")))?;
    let sig = phone.signaling().await.context("phone signaling")?;
    let mut online = sig.online_hosts();
    tokio::time::timeout(
        STEP,
        online.wait_for(|h| h.contains_key(&record.host_device_id)),
    )
    .await
    .context("the host never came online at the server")??;

    step("Connecting over WebRTC and authenticating the channel (both ends prove the pairing key)");
    let started = Instant::now();
    let conn = phone.connect(sig.clone()).await.context("connecting")?;
    let connect_ms = ms(started.elapsed());
    println!("    connected and authenticated in {connect_ms:.1} ms");

    step("Listing sessions");
    for s in conn.list_sessions().await? {
        println!("    session {} `{}`", s.id, s.name);
        for w in &s.windows {
            for p in &w.panes {
                println!(
                    "      window {} pane {} {}x{} running {}",
                    w.index, p.id, p.size.cols, p.size.rows, p.current_command
                );
            }
        }
    }

    step("Attaching (deflate) and typing a command");
    conn.attach(&pane, 100, 30, false, true).await?;
    conn.input(b"echo \"hello from the phone: $((6*7))\"\r")
        .await?;
    let screen = output_until(&conn, "hello from the phone: 42").await?;
    println!("    what came back (escape sequences removed):");
    for l in printable(&screen).lines().filter(|l| !l.trim().is_empty()) {
        println!("    | {l}");
    }

    step("Timing the keystroke echo round trip");
    let mut rtts = Vec::with_capacity(ECHO_SAMPLES);
    for i in 0..ECHO_SAMPLES {
        // Type a letter, then erase it, so the prompt stays clean.
        let key: &[u8] = if i % 2 == 0 { b"x" } else { b"\x7f" };
        let t = Instant::now();
        conn.input(key).await?;
        next_output(&conn).await?;
        rtts.push(ms(t.elapsed()));
    }
    rtts.sort_by(f64::total_cmp);
    let p50 = rtts[rtts.len() / 2];
    let p99 = rtts[(rtts.len() * 99 / 100).min(rtts.len() - 1)];
    let ping = conn.ping().await?;

    step("Cleaning up");
    conn.detach().await?;
    conn.close().await;
    let status = blocking(|| agent.terminate(STEP))?;
    drop(tmux);
    server.shutdown().await;
    println!("    agent exited ({status}), tmux server killed, server stopped, temp dirs removed");

    println!("\nmuxlink demo report");
    println!("  connect (connect_request → channel authenticated): {connect_ms:.1} ms");
    println!(
        "  keystroke echo round trip over {ECHO_SAMPLES} keys: p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    println!("  protocol ping round trip: {:.2} ms", ms(ping));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Waits for the next `output` event, skipping others.
async fn next_output(conn: &PhoneConnection) -> Result<Vec<u8>> {
    tokio::time::timeout(STEP, async {
        loop {
            match conn.next_event().await {
                Some(Event::Output { data, .. }) => return Ok(data),
                Some(_) => {}
                None => bail!("the connection closed"),
            }
        }
    })
    .await
    .context("no output from the pane")?
}

/// Collects output until it contains `needle`.
async fn output_until(conn: &PhoneConnection, needle: &str) -> Result<String> {
    let mut text = String::new();
    while !text.contains(needle) {
        let data = next_output(conn)
            .await
            .with_context(|| format!("waiting for {needle:?}"))?;
        text.push_str(&String::from_utf8_lossy(&data));
    }
    Ok(text)
}

/// Drops ANSI escape sequences and carriage returns, for a plain transcript.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // CSI: parameters then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}
