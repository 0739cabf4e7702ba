//! The bench's results: `report.json` with exactly the agreed keys, and the
//! readable table printed at the end (targets next to measured numbers).

use serde_json::json;

use crate::lossy::LossyRun;

/// p50/p99 over some samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Number of samples.
    pub samples: usize,
}

impl Latency {
    /// Summarises samples (milliseconds).
    pub fn of(samples: &[f64]) -> Self {
        Latency {
            p50: crate::measure::percentile(samples, 0.50),
            p99: crate::measure::percentile(samples, 0.99),
            samples: samples.len(),
        }
    }
}

/// Bulk output through muxlink against tmux's own pipe.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throughput {
    /// Through the agent to the phone, MB/s (10^6 bytes).
    pub muxlink_mbps: f64,
    /// Through `pipe-pane -O 'cat > FIFO'` to a reader, MB/s.
    pub tmux_native_mbps: f64,
    /// Pattern bytes in each run.
    pub bytes: u64,
    /// Phone got exactly the generator's bytes (length, order, checksum).
    pub byte_exact: bool,
}

/// Agent at rest with a peer attached.
#[derive(Debug, Clone, Copy, Default)]
pub struct Idle {
    /// CPU over the window, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory at the end of the window, MiB.
    pub rss_mb: f64,
}

/// A phone reading slower than the pane writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlowConsumer {
    /// Agent peak RSS minus its RSS before the flood, MiB.
    pub rss_growth_mb: f64,
    /// The tmux server's (the bench's private socket) peak RSS minus before, MiB.
    pub tmux_rss_growth_mb: f64,
    /// Generator bytes that did not arrive in order.
    pub bytes_lost: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Keystroke echo through the phone.
    pub echo: Latency,
    /// Bulk output.
    pub throughput: Throughput,
    /// `connect_request` → key possession proven, candidates trickled.
    pub connect: Latency,
    /// The same with the phone's candidates inside its answer (non-trickle).
    pub connect_in_answer: Latency,
    /// The quiet time that ends the phone's gathering wait in `connect_in_answer`, ms.
    pub in_answer_quiet_ms: f64,
    /// The lossy path, one run per loss rate (empty when not measured).
    pub lossy: Vec<LossyRun>,
    /// Echo while another pane floods.
    pub under_flood: Latency,
    /// Idle agent.
    pub idle: Idle,
    /// Slow phone.
    pub slow: SlowConsumer,
    /// Echo with one `tmux send-keys` process per key.
    pub baseline: Latency,
    /// Lines printed under the table: how each number was taken and side facts.
    pub notes: Vec<String>,
}

pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl Report {
    /// ratio = muxlink / native (0 when native is unknown).
    pub fn ratio(&self) -> f64 {
        if self.throughput.tmux_native_mbps > 0.0 {
            self.throughput.muxlink_mbps / self.throughput.tmux_native_mbps
        } else {
            0.0
        }
    }

    /// The agreed JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        let t = &self.throughput;
        json!({
            "echo_rtt_ms": {
                "p50": round(self.echo.p50, 3),
                "p99": round(self.echo.p99, 3),
                "samples": self.echo.samples,
            },
            "throughput": {
                "muxlink_mbps": round(t.muxlink_mbps, 2),
                "tmux_native_mbps": round(t.tmux_native_mbps, 2),
                "ratio": round(self.ratio(), 3),
                "bytes": t.bytes,
                "byte_exact": t.byte_exact,
            },
            "connect_ms": {
                "p50": round(self.connect.p50, 2),
                "p99": round(self.connect.p99, 2),
                "samples": self.connect.samples,
            },
            "input_under_flood_ms": { "p99": round(self.under_flood.p99, 3) },
            "idle": {
                "cpu_percent": round(self.idle.cpu_percent, 3),
                "rss_mb": round(self.idle.rss_mb, 2),
            },
            "connect_in_answer_ms": {
                "p50": round(self.connect_in_answer.p50, 2),
                "p99": round(self.connect_in_answer.p99, 2),
                "samples": self.connect_in_answer.samples,
                "gathering_quiet_ms": round(self.in_answer_quiet_ms, 1),
            },
            "lossy": crate::lossy::json(&self.lossy),
            "slow_consumer": {
                "rss_growth_mb": round(self.slow.rss_growth_mb, 2),
                "tmux_rss_growth_mb": round(self.slow.tmux_rss_growth_mb, 2),
                "bytes_lost": self.slow.bytes_lost,
            },
            "baseline_spawn_per_key_ms": {
                "p50": round(self.baseline.p50, 3),
                "p99": round(self.baseline.p99, 3),
            },
        })
    }

    /// The readable table: one row per figure, measured against its target.
    pub fn table(&self) -> String {
        let t = &self.throughput;
        let ok = |pass: bool| if pass { "ok" } else { "MISSED" };
        let mut rows: Vec<Row> = vec![
            (
                "echo round trip p50 / p99".into(),
                format!("{:.3} / {:.3} ms", self.echo.p50, self.echo.p99),
                "≤ 1 / ≤ 5 ms".into(),
                ok(self.echo.p50 <= 1.0 && self.echo.p99 <= 5.0),
            ),
            (
                format!(
                    "throughput ({} MB, byte-exact {})",
                    t.bytes / 1_000_000,
                    t.byte_exact
                ),
                format!(
                    "{:.1} MB/s vs tmux {:.1} MB/s = {:.2}",
                    t.muxlink_mbps,
                    t.tmux_native_mbps,
                    self.ratio()
                ),
                "ratio ≥ 0.6".into(),
                ok(self.ratio() >= 0.6 && t.byte_exact),
            ),
            self.trickle_row(),
            self.in_answer_row(),
            (
                "echo p99 while a sibling pane floods".into(),
                format!("{:.3} ms", self.under_flood.p99),
                "≤ 20 ms".into(),
                ok(self.under_flood.p99 <= 20.0),
            ),
            (
                "idle agent CPU / RSS".into(),
                format!(
                    "{:.2} % / {:.1} MiB",
                    self.idle.cpu_percent, self.idle.rss_mb
                ),
                "≤ 0.5 % / ≤ 30 MiB".into(),
                ok(self.idle.cpu_percent <= 0.5 && self.idle.rss_mb <= 30.0),
            ),
            (
                "slow consumer: agent RSS growth / bytes lost".into(),
                format!(
                    "{:.1} MiB / {}",
                    self.slow.rss_growth_mb, self.slow.bytes_lost
                ),
                "≤ 16 MiB / 0".into(),
                ok(self.slow.rss_growth_mb <= 16.0 && self.slow.bytes_lost == 0),
            ),
            (
                "slow consumer: tmux server RSS growth".into(),
                format!("{:.1} MiB", self.slow.tmux_rss_growth_mb),
                "(comparison)".into(),
                "",
            ),
            (
                "baseline: tmux send-keys per key p50 / p99".into(),
                format!("{:.3} / {:.3} ms", self.baseline.p50, self.baseline.p99),
                "(comparison)".into(),
                "",
            ),
        ];
        rows.extend(crate::lossy::rows(&self.lossy));
        let mut out = table_of(&rows);
        for n in &self.notes {
            out.push_str(&format!("  - {n}\n"));
        }
        out
    }

    /// The row of connects with the candidates in the answer.
    pub fn in_answer_row(&self) -> Row {
        let c = &self.connect_in_answer;
        (
            format!(
                "connect p50 / p99, candidates in the answer ({} connects, {:.0} ms gathering quiet)",
                c.samples, self.in_answer_quiet_ms
            ),
            format!("{:.1} / {:.1} ms", c.p50, c.p99),
            "(comparison)".into(),
            "",
        )
    }

    /// The row of trickled connects.
    pub fn trickle_row(&self) -> Row {
        (
            format!("connect p50 / p99 ({} connects)", self.connect.samples),
            format!("{:.1} / {:.1} ms", self.connect.p50, self.connect.p99),
            "p50 ≤ 150 ms".into(),
            if self.connect.p50 <= 150.0 {
                "ok"
            } else {
                "MISSED"
            },
        )
    }
}

/// One table row: figure, measured, target, verdict.
pub type Row = (String, String, String, &'static str);

/// Rows as an aligned text table.
pub fn table_of(rows: &[Row]) -> String {
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (a, b, c, d) in rows {
        out.push_str(&format!("| {a:<w0$} | {b:<w1$} | {c:<w2$} | {d:<6} |\n"));
    }
    out
}
