//! `cargo xtask stress <test-name> [runs]`: one end-to-end test run many times
//! in a row, without retries, to tell a fixed flake from a lucky run.
//!
//! nextest builds once and runs the test `runs` times (default 50) as a stress
//! run that does not stop at a failure; its report goes to the terminal and to
//! `target/stress/<test-name>.log` (a failed run's output included), and the
//! last line counts passes and failures. The retries configured in `.config/nextest.toml` do not apply.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use anyhow::{Context, Result, bail};

use crate::run::{cargo, target_dir};

const DEFAULT_RUNS: u32 = 50;

pub fn stress(args: &[String]) -> Result<()> {
    let (name, runs) = match args {
        [name] => (name.as_str(), DEFAULT_RUNS),
        [name, runs] => (
            name.as_str(),
            runs.parse::<u32>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("runs must be a positive number, not `{runs}`"))?,
        ),
        _ => bail!("usage: cargo xtask stress <test-name> [runs={DEFAULT_RUNS}]"),
    };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ')') {
        bail!("`{name}` is not a test name");
    }
    let dir = target_dir().join("stress");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log_path = dir.join(format!("{name}.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("create {}", log_path.display()))?;

    let mut cmd = cargo();
    cmd.args(["nextest", "run", "-p", "muxlink-e2e", "--no-fail-fast"])
        .args(["--retries", "0", "--stress-count", &runs.to_string()])
        .args(["--failure-output", "final", "--color", "never"])
        .args(["-E", &format!("test(={name})")])
        // nextest reports on stderr; the tests' own output stays on stdout.
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    eprintln!("$ cargo nextest run -p muxlink-e2e --stress-count {runs} -E 'test(={name})'");
    let mut child = cmd.spawn().context("could not start cargo nextest")?;
    let out = child.stderr.take().context("nextest output not captured")?;
    let (mut passed, mut failed) = (0u32, 0u32);
    for line in BufReader::new(out).lines() {
        let line = line.context("read nextest output")?;
        eprintln!("{line}");
        writeln!(log, "{line}").context("write the stress log")?;
        if let Some(verdict) = iteration_verdict(&line) {
            if verdict {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    let status = child.wait().context("wait for cargo nextest")?;
    println!(
        "stress {name}: {runs} runs, {passed} passed, {failed} failed (log: {})",
        log_path.display()
    );
    if passed + failed == 0 {
        bail!("no run of `{name}` was reported: is it a test of the muxlink-e2e package?");
    }
    if failed > 0 || passed != runs || !status.success() {
        bail!("`{name}` failed {failed} of {runs} runs");
    }
    Ok(())
}

/// Reads one iteration's summary line of a nextest stress run
/// (`Stress test [ 1.2s] iteration 3/50: 1 test run: 1 passed, 12 skipped`):
/// `Some(true)` when its test passed, `Some(false)` when it did not.
fn iteration_verdict(line: &str) -> Option<bool> {
    let rest = line.trim_start().strip_prefix("Stress test")?;
    let (iteration, counts) = rest.split_once(" iteration ")?.1.split_once(':')?;
    if !iteration.chars().all(|c| c.is_ascii_digit() || c == '/') {
        return None;
    }
    let bad = ["failed", "timed out", "exec fail", "aborted", "cancelled"];
    if bad.iter().any(|w| counts.contains(w)) {
        Some(false)
    } else {
        Some(counts.contains("1 passed"))
    }
}

#[cfg(test)]
mod tests {
    use super::iteration_verdict;

    #[test]
    fn iteration_lines_are_read_and_others_ignored() {
        let pass = " Stress test [   0.014s] iteration 1/3: 1 test run: 1 passed, 22 skipped";
        let fail =
            " Stress test [  61.2s] iteration 2/3: 1 test run: 0 passed, 1 failed, 4 skipped";
        let timeout = " Stress test [  90.0s] iteration 3/3: 1 test run: 0 passed, 1 timed out";
        assert_eq!(iteration_verdict(pass), Some(true));
        assert_eq!(iteration_verdict(fail), Some(false));
        assert_eq!(iteration_verdict(timeout), Some(false));
        let header = " Stress test iteration 2/3 (00:00:00 elapsed so far, 2 iterations remaining)";
        assert_eq!(iteration_verdict(header), None);
        assert_eq!(
            iteration_verdict("        PASS [   0.014s] [1/3] (1/1) x"),
            None
        );
        assert_eq!(
            iteration_verdict("     Summary [   3.058s] 3/3 stress run iterations: 3 passed"),
            None
        );
    }
}
