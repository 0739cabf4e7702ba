//! `muxlink-bench`, run by `cargo xtask bench` (release builds): measures the
//! real agent over loopback — echo (beside ssh + tmux attach's, the issue's
//! reference), throughput against tmux's own pipe, connect (candidates
//! trickled and in the answer), input under flood, idle cost, a slow phone,
//! a lossy path — and writes `target/bench/report.json`
//! plus a table. Never part of CI; asserts nothing. `--only connect,echo,slow,lossy`
//! (any of them) runs just those sections and prints their rows (no report file);
//! `--throughput-only` runs tmux alone and the runs through the agent and
//! prints their row. The phone pings every 10 s throughout (`rig::Keepalive`).

mod connects;
mod echo;
mod generator;
mod lossy;
mod measure;
mod middlebox;
mod pattern;
mod report;
mod rig;
mod screen;
mod ssh;
mod stream;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use connects::{IN_ANSWER_QUIET, Pacer};
use echo::{Keyer, RAW_ECHO, echo_rtts};
use measure::{MEM_MB, clock_ticks, cpu_ticks, ms, rss_bytes};
use middlebox::Middlebox;
use muxlink_e2e::muxlink_beside_me;
use pattern::Kind;
use report::{Idle, Latency, Report, SlowConsumer, Throughput};
use rig::{COLS, Keepalive, ROWS, Rig};
use ssh::SshEcho;
use stream::mib;

/// Keys timed for the echo round trip (and for the spawn-per-key baseline).
const ECHO_SAMPLES: usize = 2000;
/// Keys timed while a sibling pane floods.
const FLOOD_SAMPLES: usize = 1000;
/// Pattern bytes per throughput run (≥ 40 MB).
const BULK_BYTES: u64 = 48_000_000;
/// Throughput runs per path; the best counts (the machine is shared).
const BULK_RUNS: usize = 2;
/// Idle window.
const IDLE: Duration = Duration::from_secs(10);
/// Slow consumer: flood length and the phone's read rate.
const SLOW_FLOOD: Duration = Duration::from_secs(20);
const SLOW_RATE: f64 = 1_000_000.0;
/// The sibling pane's flood, bounded even if the bench dies before killing it.
const FLOOD_COMMAND: &str =
    "exec timeout 300 yes 'muxlink bench flood: a sibling pane printing as fast as it can'";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("gen") => generator::run(&args[1..]),
        _ => bench(&args).await,
    };
    if let Err(e) = result {
        eprintln!("muxlink-bench: {e:#}");
        std::process::exit(1);
    }
}

fn step(text: &str) {
    println!("==> {text}");
}

/// `--out <path>`, else `<target>/bench/report.json` next to this binary's profile dir.
fn report_path(args: &[String]) -> Result<PathBuf> {
    if let Some(i) = args.iter().position(|a| a == "--out") {
        return Ok(PathBuf::from(
            args.get(i + 1).context("--out needs a path")?,
        ));
    }
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(|p| p.parent())
        .context("locating the target dir")?;
    Ok(target.join("bench").join("report.json"))
}

/// The sections named by `--only a,b` (`connect`, `echo`, `slow`, `lossy`), if given.
fn only_sections(args: &[String]) -> Result<Option<Vec<&str>>> {
    let Some(i) = args.iter().position(|a| a == "--only") else {
        return Ok(None);
    };
    let list = args
        .get(i + 1)
        .context("--only needs some of connect, echo, lossy, slow")?;
    let sections: Vec<&str> = list.split(',').map(str::trim).collect();
    if let Some(bad) = sections
        .iter()
        .find(|s| !["connect", "echo", "lossy", "slow"].contains(s))
    {
        anyhow::bail!("unknown section `{bad}` (known: connect, echo, lossy, slow)");
    }
    Ok(Some(sections))
}

/// The rows and JSON of the sections a `--only` run measured.
fn print_sections(report: &Report, sections: &[&str]) -> Result<()> {
    let json = report.to_json();
    let mut rows = Vec::new();
    let mut part = serde_json::Map::new();
    if sections.contains(&"connect") {
        rows.push(report.trickle_row());
        rows.push(report.in_answer_row());
        for key in ["connect_ms", "connect_in_answer_ms"] {
            part.insert(key.into(), json[key].clone());
        }
    }
    if sections.contains(&"echo") {
        rows.push(report.echo_row());
        rows.push(report.ssh_row());
        for key in ["echo_rtt_ms", "ssh_tmux_attach_echo_ms"] {
            part.insert(key.into(), json[key].clone());
        }
    }
    if sections.contains(&"slow") {
        rows.extend(report.slow_rows());
        part.insert("slow_consumer".into(), json["slow_consumer"].clone());
    }
    if sections.contains(&"lossy") {
        rows.extend(lossy::rows(&report.lossy));
        part.insert("lossy".into(), json["lossy"].clone());
    }
    println!("\n{}", serde_json::to_string_pretty(&part)?);
    println!("\n{}", report::table_of(&rows));
    for n in &report.notes {
        println!("  - {n}");
    }
    Ok(())
}

async fn bench(args: &[String]) -> Result<()> {
    let out = report_path(args)?;
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let muxlink = muxlink_beside_me("cargo xtask bench")?;
    let started = Instant::now();
    let mut rig = Rig::new(&muxlink, &exe).await?;
    // `--throughput-only`: tmux alone, then the runs through the agent on
    // one connection, and nothing else; no report file (for profiling the
    // bulk path).
    let only_bulk = args.iter().any(|a| a == "--throughput-only");
    let only = only_sections(args)?;
    let result = match &only {
        Some(sections) => measure_only(&mut rig, sections).await,
        None => measure_all(&mut rig, only_bulk).await,
    };
    if result.is_err() {
        for line in rig.agent_tail() {
            println!("    agent: {line}");
        }
    }
    step("Cleaning up (agent, tmux server, signaling server, temp dirs)");
    let cleanup = rig.shutdown().await;
    let report = result?;
    cleanup?;
    if only_bulk {
        println!("\n{}", report::table_of(&[report.throughput_row()]));
        return Ok(());
    }
    if let Some(sections) = only {
        print_sections(&report, &sections)?;
        return Ok(());
    }

    let json = serde_json::to_string_pretty(&report.to_json())?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, format!("{json}\n"))
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "\nmuxlink bench (release, loopback, {:.0} s)\n",
        started.elapsed().as_secs_f64()
    );
    print!("{}", report.table());
    println!("\nwrote {}", out.display());
    Ok(())
}

async fn measure_all(rig: &mut Rig, only_bulk: bool) -> Result<Report> {
    let mut r = Report::default();

    step(&format!(
        "tmux alone: {} MB of log lines through pipe-pane -O, tmux's pipe read directly (handed over as the agent gets it), no agent (the random-letter runs alternate with the agent's below)",
        BULK_BYTES / 1_000_000
    ));
    let native_log = rig::blocking(|| stream::native(rig, BULK_BYTES, Kind::Log))?;
    println!(
        "    log lines: {:.1} MB/s (CPU: {})",
        native_log.mbps(),
        native_log.cpu_text()
    );

    if only_bulk {
        step("Starting the agent (`muxlink run`) and connecting");
        rig.start_agent().await?;
        println!("    agent pid {}", rig.agent_pid()?);
        let conn = Arc::new(rig.phone.connect(rig.signaling()?).await?);
        let _keepalive = Keepalive::start(&conn);
        measure_throughput(rig, &conn, &mut r, &native_log).await?;
        conn.close().await;
        return Ok(r);
    }

    step("Starting the agent (`muxlink run`) and timing connects");
    rig.start_agent().await?;
    println!("    agent pid {}", rig.agent_pid()?);
    let mut pacer = Pacer::default();
    let conn = Arc::new(measure_connects(rig, &mut r, &mut pacer).await?);
    let _keepalive = Keepalive::start(&conn);

    let echo_pane = measure_echo(rig, &conn, &mut r).await?;

    step("Baseline: the same echo with one `tmux send-keys` process per key");
    let keyer = Keyer::SpawnSendKeys {
        socket: &rig.tmux.socket,
        pane: &echo_pane,
    };
    r.baseline = Latency::of(&echo_rtts(&conn, &keyer, ECHO_SAMPLES).await?);
    println!(
        "    p50 {:.3} ms, p99 {:.3} ms",
        r.baseline.p50, r.baseline.p99
    );

    step(&format!(
        "Input under flood: {FLOOD_SAMPLES} echoes while a sibling pane runs `yes`"
    ));
    let flood = rig.sibling(&echo_pane, FLOOD_COMMAND)?;
    let flooded = echo_rtts(&conn, &Keyer::Phone, FLOOD_SAMPLES).await;
    rig.kill_pane(&flood);
    r.under_flood = Latency::of(&flooded?);
    println!(
        "    p50 {:.3} ms, p99 {:.3} ms",
        r.under_flood.p50, r.under_flood.p99
    );

    rig.drain_agent();
    measure_throughput(rig, &conn, &mut r, &native_log).await?;

    measure_slow(rig, &conn, &mut r).await?;

    rig.drain_agent();
    step(&format!(
        "Idle: agent CPU and RSS over {} s, attached to a quiet pane",
        IDLE.as_secs()
    ));
    conn.attach(&echo_pane, COLS, ROWS, false, true).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pid = rig.agent_pid()?;
    let ticks = clock_ticks();
    let t0 = cpu_ticks(pid)?;
    let w0 = Instant::now();
    tokio::time::sleep(IDLE).await;
    let t1 = cpu_ticks(pid)?;
    let wall = w0.elapsed().as_secs_f64();
    r.idle = Idle {
        cpu_percent: (t1 - t0) as f64 / ticks / wall * 100.0,
        rss_mb: rss_bytes(pid)? as f64 / MEM_MB,
    };
    println!(
        "    {:.2} % CPU, {:.1} MiB",
        r.idle.cpu_percent, r.idle.rss_mb
    );

    conn.detach().await?;
    conn.close().await;
    r.notes.push(format!(
        "throughput: {BULK_RUNS} runs through the agent, alternating with {} tmux-alone runs (before, between, after); each agent run is divided by the better of the tmux runs beside it, and the best ratio counts; MB = 10^6 bytes for rates, MiB for memory",
        BULK_RUNS + 1
    ));
    r.notes.push(
        "input under flood: one attachment per peer and one paired phone per host, so the flood runs in a sibling pane of the attached one (same window), not through a second peer".into(),
    );
    r.notes.push(
        "baseline: keys sent by spawning `tmux send-keys -H` per key, echo still received by the phone through the agent".into(),
    );
    measure_lossy(rig, &mut r).await?;
    Ok(r)
}

/// The bulk runs through the agent: letters with deflate ([`BULK_RUNS`],
/// each between two runs of tmux alone, since this machine's tmux rate
/// drifts by a third within minutes), log lines, letters without deflate.
/// The figure is the delivered rate ([`stream::Transfer::mbps`]): pattern
/// bytes the phone received per second until the generator's end marker
/// arrived. Under the lag rule a phone slower than the pane gets snapshots
/// instead of the bytes it missed, so skipped bytes never count, and the
/// pane's own rate (all bytes over the same time) is printed beside it.
/// Checked: byte-exact when nothing was skipped, else every byte the pattern
/// at its offset.
async fn measure_throughput(
    rig: &mut Rig,
    conn: &mobile_client::PhoneConnection,
    r: &mut Report,
    native_log: &stream::Transfer,
) -> Result<()> {
    step(&format!(
        "Throughput: {} MB of random-letter lines, tmux alone (pipe-pane -O, tmux's pipe read directly, no agent) and through the agent to the phone (deflate on) in turn, {BULK_RUNS} runs through the agent; then log lines, then no deflate",
        BULK_BYTES / 1_000_000
    ));
    let show = |label: &str, t: &stream::Transfer| {
        println!(
            "    {label}{:.1} MB/s delivered (while streaming {:.1} MB/s; pane {:.1} MB/s), {} (CPU: {})",
            t.mbps(),
            t.streaming_mbps(),
            t.pane_mbps(),
            t.check_text(),
            t.cpu_text()
        );
    };
    let mut natives = vec![tmux_alone(rig, r)?];
    let mut runs = Vec::new();
    for _ in 0..BULK_RUNS {
        let t = stream::through_agent(rig, conn, BULK_BYTES, Kind::Letters, true).await?;
        show("agent: ", &t);
        runs.push(t);
        natives.push(tmux_alone(rig, r)?);
    }
    let log = stream::through_agent(rig, conn, BULK_BYTES, Kind::Log, true).await?;
    show("log lines: ", &log);
    r.notes.push(format!(
        "throughput with log-like lines (deflate ~7x): {:.1} MB/s delivered vs tmux {:.1} MB/s = {:.2}, {}",
        log.mbps(),
        native_log.mbps(),
        log.mbps() / native_log.mbps().max(1e-9),
        log.check_text()
    ));
    let plain = stream::through_agent(rig, conn, BULK_BYTES, Kind::Letters, false).await?;
    show("without deflate: ", &plain);
    r.notes.push(format!(
        "throughput without deflate (not the app's setting): {:.1} MB/s delivered, {}",
        plain.mbps(),
        plain.check_text()
    ));
    r.throughput = Throughput::of(&runs, &natives, BULK_BYTES);
    r.notes.push(
        "throughput = delivered rate: pattern bytes the phone received per second, from the start signal until the generator's end marker arrived (the phone asks for the marker again if it was skipped); bytes the agent skipped under the lag rule (a phone more than 1 MiB behind gets a fresh screen instead) do not count. The agent reads the pane at full speed, so when its send path is slower than tmux it falls more than 1 MiB behind by itself and skips, even for a phone that reads at full speed: the delivered rate is then the send path's pace (\"while streaming\": received bytes over the time between consecutive outputs with no snapshot between them, i.e. without the catch-up waits). Checked: byte-exact when nothing was skipped; otherwise every received byte equals the pattern at its offset (found from the line numbers), none twice, gaps only at snapshots, and the skip the protocol reports agrees".into(),
    );
    Ok(())
}

/// One run of random-letter lines through tmux alone (`pipe-pane`, its
/// pipe read directly, no agent): its rate, MB/s.
fn tmux_alone(rig: &mut Rig, r: &mut Report) -> Result<f64> {
    let t = rig::blocking(|| stream::native(rig, BULK_BYTES, Kind::Letters))?;
    if !t.byte_exact() {
        r.notes
            .push("a tmux-alone pipe-pane run was not byte-exact".into());
    }
    println!(
        "    tmux alone: {:.1} MB/s (CPU: {})",
        t.mbps(),
        t.cpu_text()
    );
    Ok(t.mbps())
}

/// The slow phone: it reads [`SLOW_RATE`] while a pane floods for
/// [`SLOW_FLOOD`]; memory of the agent and of tmux, what the phone got, and
/// whether it ends on the pane's screen.
async fn measure_slow(
    rig: &mut Rig,
    conn: &mobile_client::PhoneConnection,
    r: &mut Report,
) -> Result<()> {
    rig.drain_agent();
    step(&format!(
        "Slow consumer: phone reads {:.0} MB/s while the pane floods for {} s",
        SLOW_RATE / 1e6,
        SLOW_FLOOD.as_secs()
    ));
    let slow = stream::slow_consumer(rig, conn, SLOW_FLOOD, SLOW_RATE).await?;
    let t = &slow.transfer;
    r.slow = SlowConsumer {
        rss_growth_mb: mib(slow.agent_growth),
        tmux_rss_growth_mb: mib(slow.tmux_growth),
        bytes_skipped: t.skipped(),
        snapshots: t.snapshots(),
        verified: t.verified(),
        final_screen: slow.screen.same,
        written_mb: t.written.bytes as f64 / 1e6,
        delivered_mb: t.delivered.received as f64 / 1e6,
    };
    println!(
        "    generator wrote {:.1} MB; phone paced for {:.1} s, all in {:.1} s, got {:.1} MB ({}); agent +{:.1} MiB, tmux +{:.1} MiB; final screen {}",
        t.written.bytes as f64 / 1e6,
        slow.paced_for.as_secs_f64(),
        t.elapsed.as_secs_f64(),
        t.delivered.received as f64 / 1e6,
        t.check_text(),
        mib(slow.agent_growth),
        mib(slow.tmux_growth),
        report::screen_text(slow.screen.same)
    );
    if !slow.screen.detail.is_empty() {
        println!("    screen: {}", slow.screen.detail);
        r.notes.push(format!(
            "slow consumer, final screen: {}",
            slow.screen.detail
        ));
    }
    if let Some(e) = &slow.error {
        println!("    stopped early: {e}");
        for line in rig.agent_tail() {
            println!("    agent: {line}");
        }
        r.notes.push(format!("slow consumer stopped early: {e}"));
    }
    r.notes.push(format!(
        "slow consumer: the generator wrote {:.1} MB in {} s; the phone read {:.0} MB/s (snapshots included) and got {:.1} MB; the agent skipped the rest (lag bound 1 MiB) and sent fresh screens, and once more when the pane went quiet; final screen (read until 500 ms without output after the end marker): the phone's last snapshot and the bytes after it replayed into a fresh pane of the same size, its `capture-pane -p` compared with the real pane's",
        t.written.bytes as f64 / 1e6,
        SLOW_FLOOD.as_secs(),
        SLOW_RATE / 1e6,
        t.delivered.received as f64 / 1e6,
    ));

    Ok(())
}

/// Trickled connects, then connects with the candidates in the answer;
/// returns a fresh trickled connection for the phases after it.
async fn measure_connects(
    rig: &mut Rig,
    r: &mut Report,
    pacer: &mut Pacer,
) -> Result<mobile_client::PhoneConnection> {
    let sig = rig.signaling()?;
    let (trickled, conn) = connects::time_connects(&rig.phone, &sig, pacer).await?;
    r.connect = trickled;
    println!("    trickled candidates: p50 {:.1} ms", r.connect.p50);
    conn.close().await;
    let phone = connects::in_answer_phone(&rig.phone)?;
    let (in_answer, conn) = connects::time_connects(&phone, &sig, pacer).await?;
    conn.close().await;
    r.connect_in_answer = in_answer;
    r.in_answer_quiet_ms = ms(IN_ANSWER_QUIET);
    println!(
        "    candidates in the answer (until gathering completes, {:.0} ms quiet fallback): p50 {:.1} ms",
        r.in_answer_quiet_ms, r.connect_in_answer.p50
    );
    // The phases after this one use a trickling phone, like the apps.
    pacer.next().await;
    rig.phone.connect(sig).await.context("connecting")
}

/// The echo baseline: the same echo typed through `ssh` + `tmux
/// attach` to a private sshd ([`ssh`]); skipped with a note when the
/// machine cannot run it.
async fn measure_ssh(rig: &mut Rig, r: &mut Report) -> Result<()> {
    step("Baseline: the same echo through ssh + tmux attach");
    match ssh::echo_rtts(rig, ECHO_SAMPLES).await? {
        SshEcho::Measured(rtts) => {
            let l = Latency::of(&rtts);
            println!("    p50 {:.3} ms, p99 {:.3} ms", l.p50, l.p99);
            r.ssh_echo = Some(l);
            r.notes.push(
                "ssh + tmux attach baseline: a private sshd on 127.0.0.1 (fresh ed25519 keys, the bench's own user), `ssh -tt` running `tmux attach` to a fresh session of the same size running the same raw-echo program (status line off); each key written to ssh's stdin and timed until its byte appears in ssh's stdout".into(),
            );
        }
        SshEcho::Skipped(why) => {
            println!("    skipped: {why}");
            r.notes
                .push(format!("ssh + tmux attach baseline skipped: {why}"));
        }
    }
    Ok(())
}

/// The lossy path: a middlebox between phone and agent, one run per loss rate.
async fn measure_lossy(rig: &mut Rig, r: &mut Report) -> Result<()> {
    let server = rig.server.as_ref().context("no signaling server")?.url();
    let mb = Middlebox::start(&server).await?;
    let file = lossy::create_file(rig)?;
    r.lossy = lossy::measure(rig, &mb, &file).await?;
    r.notes.push(format!(
        "lossy: each loss rate on a fresh connection through a UDP relay ({} ms each way, loss each way), signaling through a relay that shows the phone only the relay's address; echo and cat bounded ({} s for the cat: a longer one reports timeout); TCP model: each lost segment costs 2 x RTT",
        lossy::ONE_WAY.as_millis(),
        lossy::CAT_LIMIT.as_secs()
    ));
    Ok(())
}

/// The phone's echo into a fresh raw-echo pane (left attached; its id is
/// returned for the baselines), then the same echo through ssh.
async fn measure_echo(
    rig: &mut Rig,
    conn: &mobile_client::PhoneConnection,
    r: &mut Report,
) -> Result<String> {
    step(&format!(
        "Echo: {ECHO_SAMPLES} single bytes into `{RAW_ECHO}` from the phone"
    ));
    let echo_pane = rig.pane(RAW_ECHO)?;
    conn.attach(&echo_pane, COLS, ROWS, false, true).await?;
    r.echo = Latency::of(&echo_rtts(conn, &Keyer::Phone, ECHO_SAMPLES).await?);
    println!("    p50 {:.3} ms, p99 {:.3} ms", r.echo.p50, r.echo.p99);
    measure_ssh(rig, r).await?;
    Ok(echo_pane)
}

/// `--only <section,...>`: just the named sections (`connect`, `echo`, `slow`, `lossy`),
/// their rows and their part of the report printed, no report file.
async fn measure_only(rig: &mut Rig, sections: &[&str]) -> Result<Report> {
    let mut r = Report::default();
    rig.start_agent().await?;
    println!("    agent pid {}", rig.agent_pid()?);
    if sections.contains(&"connect") {
        step("Timing connects: candidates trickled, then in the answer");
        let mut pacer = Pacer::default();
        measure_connects(rig, &mut r, &mut pacer)
            .await?
            .close()
            .await;
    }
    if sections.contains(&"echo") {
        let conn = Arc::new(rig.phone.connect(rig.signaling()?).await?);
        let _keepalive = Keepalive::start(&conn);
        measure_echo(rig, &conn, &mut r).await?;
        conn.close().await;
    }
    if sections.contains(&"slow") {
        let conn = Arc::new(rig.phone.connect(rig.signaling()?).await?);
        let _keepalive = Keepalive::start(&conn);
        measure_slow(rig, &conn, &mut r).await?;
        conn.close().await;
    }
    if sections.contains(&"lossy") {
        measure_lossy(rig, &mut r).await?;
    }
    Ok(r)
}
