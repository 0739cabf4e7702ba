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
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    /// Delivered rate through the agent to the phone, MB/s (10^6 bytes), of
    /// the run with the best ratio: pattern bytes the phone received per
    /// second until the generator's end marker arrived (skipped bytes do not
    /// count).
    pub muxlink_mbps: f64,
    /// Through `pipe-pane -O` to a reader of tmux's pipe, MB/s: the better of
    /// the two tmux-alone runs just before and just after that run.
    pub tmux_native_mbps: f64,
    /// Every tmux-alone run, in order; they alternate with the agent's runs
    /// (one more than those), since this machine's tmux rate drifts by a
    /// third within minutes.
    pub native_runs: Vec<f64>,
    /// Pattern bytes in each run.
    pub bytes: u64,
    /// Every run: nothing skipped, the phone got exactly the generator's
    /// bytes (length, order, checksum).
    pub byte_exact: bool,
    /// Every run: each received byte the pattern at its offset, none twice,
    /// missing bytes only at snapshots (implied by `byte_exact`).
    pub verified: bool,
    /// Each run with deflate: (delivered MB/s, pane MB/s, bytes skipped,
    /// snapshots, MB/s while streaming).
    pub runs: Vec<(f64, f64, u64, u64, f64)>,
}

impl Throughput {
    /// The figures of the runs through the agent; `natives` are the tmux-alone
    /// runs around them (`natives[i]` just before `runs[i]`, `natives[i + 1]`
    /// just after). Each run is divided by the better of its two neighbours,
    /// and the run with the best ratio counts.
    pub fn of(runs: &[crate::stream::Transfer], natives: &[f64], bytes: u64) -> Self {
        let rates: Vec<f64> = runs.iter().map(|t| t.mbps()).collect();
        let best = best_against_neighbours(&rates, natives);
        Throughput {
            muxlink_mbps: best.0,
            tmux_native_mbps: best.1,
            native_runs: natives.to_vec(),
            bytes,
            byte_exact: runs.iter().all(|t| t.byte_exact()),
            verified: runs.iter().all(|t| t.verified()),
            runs: runs
                .iter()
                .map(|t| {
                    (
                        t.mbps(),
                        t.pane_mbps(),
                        t.skipped(),
                        t.snapshots(),
                        t.streaming_mbps(),
                    )
                })
                .collect(),
        }
    }

    /// Bytes skipped over all runs.
    pub fn skipped(&self) -> u64 {
        self.runs.iter().map(|r| r.2).sum()
    }

    /// Snapshots over all runs.
    pub fn snapshots(&self) -> u64 {
        self.runs.iter().map(|r| r.3).sum()
    }
}

/// The run through the agent with the best ratio to the better of the
/// tmux-alone runs beside it (`natives[i]` before `rates[i]`, `natives[i + 1]`
/// after): that run's rate and its divisor. Without runs, no rate and the
/// best tmux run.
fn best_against_neighbours(rates: &[f64], natives: &[f64]) -> (f64, f64) {
    let beside = |i: usize| {
        let before = natives.get(i).copied().unwrap_or(0.0);
        before.max(natives.get(i + 1).copied().unwrap_or(0.0))
    };
    rates
        .iter()
        .enumerate()
        .map(|(i, &rate)| (rate, beside(i)))
        .max_by(|a, b| (a.0 / a.1.max(1e-9)).total_cmp(&(b.0 / b.1.max(1e-9))))
        .unwrap_or((0.0, natives.iter().copied().fold(0.0, f64::max)))
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
    /// Pattern bytes the agent skipped for the phone (lag rule).
    pub bytes_skipped: u64,
    /// Snapshots that replaced them.
    pub snapshots: u64,
    /// Every byte the phone got is the pattern at its offset, none twice.
    pub verified: bool,
    /// The phone's last screen equals the pane's (`None`: not compared).
    pub final_screen: Option<bool>,
    /// MB the generator wrote.
    pub written_mb: f64,
    /// MB of it the phone received.
    pub delivered_mb: f64,
}

/// "same", "DIFFERS" or "not compared".
pub fn screen_text(same: Option<bool>) -> &'static str {
    match same {
        Some(true) => "same as the pane's",
        Some(false) => "DIFFERS from the pane's",
        None => "not compared",
    }
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
    /// The same echo through `ssh` + `tmux attach` (`None`: skipped).
    pub ssh_echo: Option<Latency>,
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
                "tmux_native_runs_mbps": t.native_runs.iter().map(|&m| round(m, 2)).collect::<Vec<_>>(),
                "ratio": round(self.ratio(), 3),
                "bytes": t.bytes,
                "byte_exact": t.byte_exact,
                "verified": t.verified,
                "bytes_skipped": t.skipped(),
                "snapshots": t.snapshots(),
                "runs": t.runs.iter().map(|&(mbps, pane, skipped, snapshots, streaming)| json!({
                    "delivered_mbps": round(mbps, 2),
                    "streaming_mbps": round(streaming, 2),
                    "pane_mbps": round(pane, 2),
                    "bytes_skipped": skipped,
                    "snapshots": snapshots,
                })).collect::<Vec<_>>(),
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
                "bytes_skipped": self.slow.bytes_skipped,
                "snapshots": self.slow.snapshots,
                "verified": self.slow.verified,
                "final_screen_matches": self.slow.final_screen,
                "written_mb": round(self.slow.written_mb, 1),
                "delivered_mb": round(self.slow.delivered_mb, 1),
            },
            "baseline_spawn_per_key_ms": {
                "p50": round(self.baseline.p50, 3),
                "p99": round(self.baseline.p99, 3),
            },
            "ssh_tmux_attach_echo_ms": self.ssh_echo.map(|l| json!({
                "p50": round(l.p50, 3),
                "p99": round(l.p99, 3),
                "samples": l.samples,
            })),
        })
    }

    /// The echo round trip against its target: the is a p50 at or
    /// below ssh + tmux attach's; the absolute 1 ms stands in when that
    /// baseline was skipped.
    pub fn echo_row(&self) -> Row {
        let (target, p50_ok) = match &self.ssh_echo {
            Some(ssh) => ("≤ ssh's / ≤ 5 ms", self.echo.p50 <= ssh.p50),
            None => ("≤ 1 / ≤ 5 ms", self.echo.p50 <= 1.0),
        };
        let pass = p50_ok && self.echo.p99 <= 5.0;
        (
            "echo round trip p50 / p99".into(),
            format!("{:.3} / {:.3} ms", self.echo.p50, self.echo.p99),
            target.into(),
            if pass { "ok" } else { "MISSED" },
        )
    }

    /// The ssh + tmux attach echo, the echo target's reference.
    pub fn ssh_row(&self) -> Row {
        (
            "baseline: ssh + tmux attach echo p50 / p99".into(),
            match &self.ssh_echo {
                Some(l) => format!("{:.3} / {:.3} ms", l.p50, l.p99),
                None => "skipped".into(),
            },
            "(comparison)".into(),
            "",
        )
    }

    /// The readable table: one row per figure, measured against its target.
    pub fn table(&self) -> String {
        let ok = |pass: bool| if pass { "ok" } else { "MISSED" };
        let mut rows: Vec<Row> = vec![
            self.echo_row(),
            self.throughput_row(),
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
                "baseline: tmux send-keys per key p50 / p99".into(),
                format!("{:.3} / {:.3} ms", self.baseline.p50, self.baseline.p99),
                "(comparison)".into(),
                "",
            ),
            self.ssh_row(),
        ];
        rows.splice(6..6, self.slow_rows());
        rows.extend(crate::lossy::rows(&self.lossy));
        let mut out = table_of(&rows);
        for n in &self.notes {
            out.push_str(&format!("  - {n}\n"));
        }
        out
    }

    /// The slow phone's rows: memory, then what it got and its last screen.
    pub fn slow_rows(&self) -> Vec<Row> {
        let ok = |pass: bool| if pass { "ok" } else { "MISSED" };
        vec![
            (
                "slow phone (1 MB/s, 20 s flood): agent / tmux server RSS growth".into(),
                format!(
                    "{:.1} / {:.1} MiB",
                    self.slow.rss_growth_mb, self.slow.tmux_rss_growth_mb
                ),
                "each ≤ 16 MiB".into(),
                ok(self.slow.rss_growth_mb <= 16.0 && self.slow.tmux_rss_growth_mb <= 16.0),
            ),
            (
                format!(
                    "slow phone: skipped / snapshots / final screen (got {:.0} of {:.0} MB{})",
                    self.slow.delivered_mb,
                    self.slow.written_mb,
                    if self.slow.verified {
                        ", verified"
                    } else {
                        ", NOT verified"
                    }
                ),
                format!(
                    "{:.1} MB / {} / {}",
                    self.slow.bytes_skipped as f64 / 1e6,
                    self.slow.snapshots,
                    screen_text(self.slow.final_screen)
                ),
                "ends on the pane's screen".into(),
                ok(self.slow.final_screen == Some(true) && self.slow.verified),
            ),
        ]
    }

    /// The throughput row: delivered rate against tmux's own pipe.
    pub fn throughput_row(&self) -> Row {
        let t = &self.throughput;
        let check = if t.byte_exact {
            "byte-exact".to_owned()
        } else {
            format!(
                "{:.1} MB skipped at {} snapshots, {}",
                t.skipped() as f64 / 1e6,
                t.snapshots(),
                if t.verified {
                    "rest verified"
                } else {
                    "NOT verified"
                }
            )
        };
        (
            format!(
                "throughput delivered ({} MB x {}, {check})",
                t.bytes / 1_000_000,
                t.runs.len()
            ),
            format!(
                "{:.1} MB/s vs tmux {:.1} MB/s = {:.2}",
                t.muxlink_mbps,
                t.tmux_native_mbps,
                self.ratio()
            ),
            "ratio ≥ 0.8".into(),
            if self.ratio() >= 0.8 && t.verified {
                "ok"
            } else {
                "MISSED"
            },
        )
    }

    /// The row of connects with the candidates in the answer.
    pub fn in_answer_row(&self) -> Row {
        let c = &self.connect_in_answer;
        (
            format!(
                "connect p50 / p99, candidates in the answer ({} connects, answer at gathering end, {:.0} ms quiet fallback)",
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

#[cfg(test)]
mod tests {
    use super::best_against_neighbours;

    #[test]
    fn each_run_is_divided_by_the_better_tmux_run_beside_it() {
        // tmux drifts from 20 to 30 MB/s; the agent's first run (18 of 20.5)
        // is the better one, although 24 is the faster rate.
        let (rate, divisor) = best_against_neighbours(&[18.0, 24.0], &[20.0, 20.5, 30.0]);
        assert_eq!((rate, divisor), (18.0, 20.5));
    }

    #[test]
    fn without_runs_the_best_tmux_run_is_the_divisor() {
        assert_eq!(best_against_neighbours(&[], &[20.0, 25.0]), (0.0, 25.0));
        assert_eq!(best_against_neighbours(&[], &[]), (0.0, 0.0));
    }

    #[test]
    fn a_missing_tmux_run_after_the_last_one_counts_as_none() {
        assert_eq!(best_against_neighbours(&[10.0], &[20.0]), (10.0, 20.0));
    }
}
