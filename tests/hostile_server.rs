//! The hostile-server suite: a relay task between both ends and the real
//! bundled signaling server attacks the pairing and the DataChannel, and the
//! real `muxlink` binary, the real agent and the Rust phone must refuse
//! (README trust model; pairing.md §9; terminal-protocol.md §12). A control
//! case first shows that the honest relay changes nothing, so every refusal
//! below is the attack's doing.
//!
//! - key substitution: `muxlink pair` refuses a `pair_complete` whose key or
//!   confirmation does not match its QR code, stores nothing, keeps waiting,
//!   and then accepts the genuine one;
//! - man in the middle (own DTLS peers on both sides): the host closes, the
//!   phone's connect fails with `ClientError::Intercepted`, no terminal byte
//!   passes either way;
//! - fake host: the phone refuses a wrong or missing `auth_ok` and sends
//!   nothing after its `auth_response`;
//! - fingerprint listing (genuine and own `a=fingerprint` lines): refused too;
//! - the web client in headless Chromium (`web/e2e/mitm.mjs`) behind the man
//!   in the middle says the computer could not prove the pairing key (skipped
//!   without node, Chromium and the embedded page unless
//!   `MUXLINK_REQUIRE_BROWSER` is set).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mobile_client::{ClientError, PairingRecord, PhoneClient, PhoneConfig, PhoneConnection};
use muxlink_e2e::attacks::{
    Confirmation, FakeAuthOk, FakeHost, Fingerprints, Flow, KeySubstitution, Mitm, MitmOptions,
    Recording,
};
use muxlink_e2e::faults::{output_until, spawn_captured};
use muxlink_e2e::pairing::{PAIR_ARGS, blocking, init, pair_phone, phone_config, start_pairing};
use muxlink_e2e::relay::{Dir, Role, SignalingRelay, pass_through};
use muxlink_e2e::{Home, Running, Tmux};
use signaling_server::{RateLimits, RunningServer, Server, ServerConfig};
use terminal_protocol::{Attach, Event, Request};

const BIN: &str = env!("CARGO_BIN_EXE_muxlink-e2e-agent");
/// Bound of one step (a wait, a command, a connect).
const T: Duration = Duration::from_secs(30);
/// The phone waits this long for `auth_ok` (spec §12 step 5), plus slack.
const AUTH_OK_WAIT: Duration = Duration::from_secs(25);
/// The host's refusal line (pairing.md §9.6).
const REFUSED: &str = "a pairing attempt with a key that does not match this QR code was refused; \
     the signaling server may be tampering";

/// The request-signing secret of every stage: the relay must forward each
/// signed request and WebSocket upgrade exactly once (the server keeps a
/// replay cache of the nonces).
const HMAC_SECRET: &str = "hostile-server-e2e-signing";

/// Everything on this machine, with the relay in the server's place: the host
/// and (through the QR payload) the phone know only the relay's URL.
struct Stage {
    tmux: Tmux,
    pane: String,
    server: RunningServer,
    relay: SignalingRelay,
    home: Home,
    phone_dir: tempfile::TempDir,
}

impl Stage {
    async fn start() -> Stage {
        let tmux = Tmux::new();
        let pane = tmux.new_session("work", 100, 30).unwrap();
        let server = Server::start(ServerConfig {
            rate_limits: RateLimits::disabled(),
            hmac_secret: HMAC_SECRET.into(),
            ..ServerConfig::default()
        })
        .await
        .unwrap();
        let relay = SignalingRelay::start(&server.url()).await.unwrap();
        let mut home = Home::new(BIN, &tmux.socket).unwrap();
        home.server = Some(relay.url());
        std::fs::write(
            home.path().join("config.toml"),
            format!("hmac_secret = {HMAC_SECRET:?}\n"),
        )
        .unwrap();
        init(&home, T).unwrap();
        Stage {
            tmux,
            pane,
            server,
            relay,
            home,
            phone_dir: tempfile::tempdir().unwrap(),
        }
    }

    fn phone_config(&self) -> PhoneConfig {
        let mut cfg = phone_config(self.phone_dir.path(), "hostile-phone");
        cfg.hmac_secret = HMAC_SECRET.into();
        cfg
    }

    fn phone(&self) -> PhoneClient {
        PhoneClient::open(self.phone_config()).unwrap()
    }

    /// Pairs honestly through the relay and starts the agent.
    async fn paired() -> (Stage, PhoneClient, PairingRecord, Running) {
        let stage = Stage::start().await;
        let (mut pair, payload) = start_pairing(&stage.home, PAIR_ARGS, T).unwrap();
        let cfg = stage.phone_config();
        let (phone, record) = pair_phone(cfg, &payload, &mut pair, T).await.unwrap();
        assert!(blocking(|| pair.child.wait()).unwrap().success());
        let mut agent = stage.home.spawn(&["run"]).unwrap();
        blocking(|| agent.wait_line(T, |_, l| l.contains("agent ready"))).unwrap();
        (stage, phone, record, agent)
    }

    fn pane_text(&self) -> String {
        self.tmux
            .run(&["capture-pane", "-p", "-J", "-S", "-", "-t", &self.pane])
            .unwrap()
    }

    fn status(&self) -> serde_json::Value {
        let o = blocking(|| self.home.output(&["status", "--json"], T)).unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    async fn shutdown(self, mut agent: Running) {
        let st = blocking(|| agent.terminate(T)).unwrap();
        assert!(st.success(), "agent exit {st:?}:\n{}", agent.transcript());
        drop(self.relay);
        self.server.shutdown().await;
    }
}

/// A phone signaling session (through the relay) that has seen the host online.
async fn signaling(
    phone: &PhoneClient,
    record: &PairingRecord,
) -> std::sync::Arc<mobile_client::Signaling> {
    let sig = phone.signaling().await.unwrap();
    let mut online = sig.online_hosts();
    tokio::time::timeout(
        T,
        online.wait_for(|h| h.contains_key(&record.host_device_id)),
    )
    .await
    .expect("the host never came online")
    .unwrap();
    sig
}

/// Connects through the relay; the result within `bound`.
async fn connect(
    phone: &PhoneClient,
    record: &PairingRecord,
    bound: Duration,
) -> Result<PhoneConnection, ClientError> {
    let sig = signaling(phone, record).await;
    tokio::time::timeout(bound, phone.connect(sig))
        .await
        .expect("connect did not finish in time")
}

/// The decoded `type`s of what the host sent through the relay.
fn host_sent(rec: &Recording) -> Vec<String> {
    rec.types(Flow::HostToPhone)
}

/// No `output` event among the host → phone messages.
fn assert_no_output(rec: &Recording) {
    for (flow, m) in &rec.messages {
        if *flow == Flow::HostToPhone {
            assert!(
                !matches!(Event::decode(m), Ok(Event::Output { .. })),
                "terminal output passed the relay: {:?}",
                rec.notes
            );
        }
    }
}

/// The messages an attacker would type after the host's `auth_ok`.
fn attacker_script(pane: &str, marker: &str) -> Vec<Vec<u8>> {
    vec![
        Request::Attach(Attach {
            pane_id: pane.to_owned(),
            cols: 100,
            rows: 30,
            reattach: false,
            compression: None,
            offsets: false,
            resume_from: None,
        })
        .encode(),
        Request::Input {
            data: format!("echo {marker}-$((6*7))\r").into_bytes(),
            offset: None,
        }
        .encode(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_relay_pairs_connects_and_carries_the_terminal() {
    let (stage, phone, record, agent) = Stage::paired().await;
    stage.relay.set_hook(pass_through());

    let conn = connect(&phone, &record, T).await.unwrap();
    conn.attach(&stage.pane, 100, 30, false, true)
        .await
        .unwrap();
    conn.input(b"echo relayed-$((6*7))\r").await.unwrap();
    output_until(&conn, "relayed-42", T).await.unwrap();
    conn.close().await;

    // The relay knew both ends by their tokens.
    let frames = stage.relay.handle().frames();
    let host_id = record.host_device_id.clone();
    let phone_id = phone.identity().device_id().to_owned();
    assert!(
        frames
            .iter()
            .any(|f| f.role == Role::Host && f.device_id == host_id && f.kind() == "sdp_offer")
    );
    assert!(
        frames
            .iter()
            .any(|f| f.role == Role::Phone && f.device_id == phone_id && f.kind() == "sdp_answer")
    );
    stage.shutdown(agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substituted_pairing_key_is_refused_and_the_genuine_one_pairs() {
    let stage = Stage::start().await;
    let relay = stage.relay.handle();
    let attack = KeySubstitution::install(&relay, Confirmation::Keep);
    let (mut pair, payload) = start_pairing(&stage.home, PAIR_ARGS, T).unwrap();
    let phone = stage.phone();
    // The phone's side of pairing is honest: the server confirms it.
    phone.pair(&payload).await.unwrap();
    let phone_id = phone.identity().device_id().to_owned();

    // The host got the relay's key with the phone's confirmation: refused.
    let line =
        blocking(|| pair.wait_line(T, |_, l| l.contains(REFUSED) || l.starts_with("PAIRED ")))
            .unwrap();
    assert!(
        line.contains(REFUSED),
        "the substituted key was accepted: {line:?}"
    );
    let genuine = attack.originals();
    assert_eq!(genuine.len(), 1, "{genuine:?}");

    // More forgeries on the same wait: a forged and a missing confirmation with
    // the relay's key, and the phone's key with a forged confirmation (the
    // forgery is the spec's §9.1 vector `C`: well-formed, made for other keys).
    let mut forged: serde_json::Value = serde_json::from_str(&genuine[0]).unwrap();
    forged["mobileX25519PublicKey"] = attack.relay_public.clone().into();
    forged["mobileConfirmation"] = "QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo=".into();
    let mut missing = forged.clone();
    missing
        .as_object_mut()
        .unwrap()
        .remove("mobileConfirmation");
    let mut wrong_mac: serde_json::Value = serde_json::from_str(&genuine[0]).unwrap();
    wrong_mac["mobileConfirmation"] = "QsO8l31s/WKvrPA9L+6RFga8NJQEAgAbIunhzjZVMUo=".into();
    for (what, msg) in [
        ("forged confirmation", forged),
        ("no confirmation", missing),
        ("phone's key, forged confirmation", wrong_mac),
    ] {
        assert_eq!(relay.inject(Role::Host, Dir::Down, &msg.to_string()), 1);
        let line =
            blocking(|| pair.wait_line(T, |_, l| l.contains(REFUSED) || l.starts_with("PAIRED ")))
                .unwrap();
        assert!(line.contains(REFUSED), "{what} was accepted: {line:?}");
    }

    // Nothing stored, and still waiting.
    let v = stage.status();
    assert!(v["pairedDevice"].is_null(), "{v:#}");
    let record =
        std::fs::read_to_string(stage.home.path().join("paired_devices.json")).unwrap_or_default();
    assert!(
        !record.contains(&phone_id) && !record.contains("deviceId"),
        "{record}"
    );
    assert!(
        pair.child.try_wait().unwrap().is_none(),
        "muxlink pair gave up"
    );

    // The genuine message, forwarded late, pairs the phone.
    assert_eq!(relay.inject(Role::Host, Dir::Down, &genuine[0]), 1);
    let line = blocking(|| pair.wait_line(T, |_, l| l.starts_with("PAIRED "))).unwrap();
    assert_eq!(line, format!("PAIRED {phone_id}"));
    assert!(blocking(|| pair.child.wait()).unwrap().success());
    let v = stage.status();
    assert_eq!(v["pairedDevice"]["deviceId"], phone_id.as_str(), "{v:#}");
    drop(stage.relay);
    stage.server.shutdown().await;
}

/// The man in the middle with `fingerprints`; returns the phone's error and
/// what the relay saw.
async fn man_in_the_middle(fingerprints: Fingerprints) -> (ClientError, Recording) {
    let (stage, phone, record, agent) = Stage::paired().await;
    let mitm = Mitm::install(
        &stage.relay.handle(),
        MitmOptions {
            fingerprints,
            after_host_auth_ok: attacker_script(&stage.pane, "MITM"),
        },
    );
    let err = match connect(&phone, &record, T).await {
        Ok(conn) => {
            // Only reachable if the phone accepted the channel: the marker must
            // then still never reach the pane (checked below).
            let _ = conn.input(b"echo PHONE-$((6*7))\r").await;
            panic!(
                "the phone accepted a channel through the relay; relay saw {:?}",
                mitm.recorder.snapshot().notes
            );
        }
        Err(e) => e,
    };
    // Give late messages a moment, then look at everything the relay saw.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rec = mitm.recorder.snapshot();
    eprintln!(
        "{fingerprints:?}: phone error: {err}\nrelay notes: {:?}",
        rec.notes
    );
    assert_no_output(&rec);
    assert!(
        !host_sent(&rec).iter().any(|t| t == "auth_ok"),
        "the host authenticated the relay: {rec:?}"
    );
    let text = stage.pane_text();
    assert!(
        !text.contains("MITM-42") && !text.contains("PHONE-42"),
        "input reached the pane:\n{text}"
    );
    if fingerprints != Fingerprints::GenuineFirst {
        // The host itself ended the channel after the relayed proof. (Not read
        // from `muxlink status`: the agent may still list the closed peer there
        // until its next change, see the report of this suite.)
        assert!(
            rec.notes.iter().any(|n| n == "host channel closed"),
            "the host kept the relay's channel: {rec:?}"
        );
    }
    stage.shutdown(agent).await;
    (err, rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn man_in_the_middle_is_refused_by_host_and_phone() {
    let (err, rec) = man_in_the_middle(Fingerprints::Own).await;
    assert!(
        matches!(err, ClientError::Intercepted(_)),
        "expected Intercepted, got {err:?}; relay saw {:?}",
        rec.notes
    );
    assert!(
        err.to_string().contains("could not prove the pairing key"),
        "{err}"
    );
    // The relay did get a channel with the host (which closed it after the
    // forwarded `auth_response`, checked in `man_in_the_middle`).
    assert!(
        rec.notes.iter().any(|n| n == "host channel open"),
        "{rec:?}"
    );
    assert_eq!(host_sent(&rec), ["auth_challenge"], "{rec:?}");
    assert_eq!(rec.types(Flow::PhoneToHost), ["auth_response"], "{rec:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_the_genuine_fingerprint_first_is_refused() {
    let (err, rec) = man_in_the_middle(Fingerprints::GenuineFirst).await;
    // webrtc-rs checks the certificate against the first line only, so DTLS
    // itself fails on both legs: no channel opens, no handshake message passes.
    assert!(
        matches!(
            err,
            ClientError::Timeout(_) | ClientError::Intercepted(_) | ClientError::Rtc(_)
        ),
        "{err:?}"
    );
    assert!(
        !rec.notes.iter().any(|n| n.ends_with("channel open")),
        "{rec:?}"
    );
    assert!(rec.messages.is_empty(), "{rec:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_its_own_fingerprint_first_is_refused() {
    let (err, rec) = man_in_the_middle(Fingerprints::OwnFirst).await;
    assert!(
        matches!(err, ClientError::Intercepted(_)),
        "expected Intercepted, got {err:?}; relay saw {:?}",
        rec.notes
    );
    assert_eq!(rec.types(Flow::PhoneToHost), ["auth_response"], "{rec:?}");
}

/// The fake host answering `auth_response` with `reply`.
async fn fake_host(reply: FakeAuthOk) {
    let (stage, phone, record, agent) = Stage::paired().await;
    let fake = FakeHost::install(&stage.relay.handle(), reply);
    let err = connect(&phone, &record, AUTH_OK_WAIT)
        .await
        .expect_err("the phone accepted the fake host");
    assert!(
        matches!(err, ClientError::Intercepted(_)),
        "expected Intercepted, got {err:?}; relay saw {:?}",
        fake.recorder.snapshot().notes
    );
    // Anything the phone sent late would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rec = fake.recorder.snapshot();
    assert_eq!(
        rec.types(Flow::PhoneToHost),
        ["auth_response"],
        "the phone sent more than its auth_response: {rec:?}"
    );
    // The real host never heard of it.
    assert!(
        !stage
            .relay
            .handle()
            .frames()
            .iter()
            .any(|f| f.role == Role::Host && f.dir == Dir::Down && f.kind() == "connect_request"),
        "a connect_request reached the host"
    );
    stage.shutdown(agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_host_with_a_wrong_auth_ok_is_refused() {
    fake_host(FakeAuthOk::WrongMac).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_host_without_auth_ok_is_refused() {
    fake_host(FakeAuthOk::Missing).await;
}

/// The repository root (this package is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What the Chromium case lacks, if anything; the page must be embedded in
/// this build of the server (the relay serves it unchanged from there).
fn browser_missing(relay_url: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node (Node.js 20+)".to_owned());
    }
    if !root().join("web/node_modules/playwright-core").is_dir() {
        missing.push("web/node_modules (run `cargo xtask web`)".to_owned());
    }
    if !chromium().is_file() {
        missing.push(format!("{} (apt install chromium)", chromium().display()));
    }
    let page = blocking(|| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10", &format!("{relay_url}/")])
            .output()
    });
    match page {
        Ok(o) if o.status.success() => {
            if String::from_utf8_lossy(&o.stdout).contains("was not built into this server") {
                missing.push("web/dist in the server (run `cargo xtask web`, then rebuild)".into());
            }
        }
        _ => missing.push("curl, to ask the relay for the page".into()),
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_refuses_a_man_in_the_middle_in_chromium() {
    browser_behind_mitm(Fingerprints::Own).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_refuses_listed_fingerprints_in_chromium() {
    browser_behind_mitm(Fingerprints::GenuineFirst).await;
}

/// Chromium pairs through the relay, which then plays man in the middle with
/// `fingerprints`; the page must refuse. Chromium refuses a description with
/// two fingerprint lines outright ("Can't have multiple fingerprint
/// attributes"), so there no channel ever opens.
async fn browser_behind_mitm(fingerprints: Fingerprints) {
    let expect = match fingerprints {
        Fingerprints::Own => "unverified",
        Fingerprints::GenuineFirst | Fingerprints::OwnFirst => "no-channel",
    };
    let stage = Stage::start().await;
    let missing = browser_missing(&stage.relay.url());
    if !missing.is_empty() {
        let text = format!("the Chromium MITM case needs: {}", missing.join(", "));
        assert!(
            std::env::var_os("MUXLINK_REQUIRE_BROWSER").is_none(),
            "{text}"
        );
        eprintln!("skipped: {text}");
        return;
    }
    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("web-e2e");
    let (mut pair, payload) = start_pairing(&stage.home, PAIR_ARGS, T).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg("e2e/mitm.mjs")
        .current_dir(root().join("web"))
        .env("RELAY_URL", stage.relay.url())
        .env("PAYLOAD", &payload)
        .env("HMAC_SECRET", HMAC_SECRET)
        .env("EXPECT", expect)
        .env("CHROMIUM", chromium())
        .env("SHOTS", &shots);
    let mut browser = spawn_captured(cmd).unwrap();

    // The page pairs through the relay (honest so far).
    let paired = blocking(|| pair.wait_line(T, |_, l| l.starts_with("PAIRED ")));
    assert!(
        paired.is_ok(),
        "the page did not pair: {paired:?}\nbrowser:\n{}",
        browser.transcript()
    );
    assert!(blocking(|| pair.child.wait()).unwrap().success());

    // Then the relay turns hostile, and the agent comes online.
    let mitm = Mitm::install(
        &stage.relay.handle(),
        MitmOptions {
            fingerprints,
            after_host_auth_ok: attacker_script(&stage.pane, "WEBMITM"),
        },
    );
    let mut agent = stage.home.spawn(&["run"]).unwrap();
    blocking(|| agent.wait_line(T, |_, l| l.contains("agent ready"))).unwrap();

    let verdict = blocking(|| {
        browser.wait_line(Duration::from_secs(90), |_, l| {
            l.starts_with("MITM_REFUSED") || l.starts_with("MITM_FAILED")
        })
    })
    .unwrap();
    let rec = mitm.recorder.snapshot();
    eprintln!("{fingerprints:?}: {verdict}\nrelay notes: {:?}", rec.notes);
    assert!(
        verdict.starts_with("MITM_REFUSED"),
        "{verdict}\nrelay notes: {:?}\nbrowser:\n{}",
        rec.notes,
        browser.transcript()
    );
    assert_no_output(&rec);
    if expect == "unverified" {
        // The page really went through the relay's peers and proved nothing to it.
        assert!(
            rec.notes.iter().any(|n| n == "phone channel open"),
            "{rec:?}"
        );
        assert_eq!(host_sent(&rec), ["auth_challenge"], "{rec:?}");
        assert_eq!(rec.types(Flow::PhoneToHost), ["auth_response"], "{rec:?}");
        assert!(
            rec.notes.iter().any(|n| n == "host channel closed"),
            "the host kept the relay's channel: {rec:?}"
        );
    } else {
        // Chromium refused the description: not even a channel.
        assert!(rec.messages.is_empty(), "{rec:?}");
    }
    assert!(!stage.pane_text().contains("WEBMITM-42"));
    let st = blocking(|| browser.terminate(T)).unwrap();
    assert!(
        st.success() || st.code().is_none(),
        "node: {st:?}\n{}",
        browser.transcript()
    );
    stage.shutdown(agent).await;
}
