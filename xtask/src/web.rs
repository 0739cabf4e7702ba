//! `cargo xtask web`: builds the web client (`npm ci`, type check, `vite build`
//! into web/dist), runs its Vitest unit tests, and marks the server's build
//! script stale so the next cargo build embeds the fresh assets.
//!
//! `test`, `e2e` and `demo` call [`web_if_available`] first: it does the same
//! but skips steps whose outputs are newer than their inputs (so an unchanged
//! web client does not force the server and everything above it to rebuild),
//! and skips everything on a machine without npm unless
//! `MUXLINK_REQUIRE_BROWSER` is set (CI sets it).

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::run::{have, project_root, run};

/// Set by CI: the web client and the browser test must run, never be skipped.
const REQUIRE: &str = "MUXLINK_REQUIRE_BROWSER";

/// Files and folders the built web client depends on (relative to web/).
const SOURCES: &[&str] = &[
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
];

/// An npm/npx command run inside web/.
fn npm(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(project_root().join("web"));
    cmd
}

/// `cargo xtask web`: every step, unconditionally.
pub fn web() -> Result<()> {
    if !have("npm", &["--version"]) {
        bail!("npm not found: install Node.js 20+ with npm to build the web client");
    }
    build(true)
}

/// The web client for the test suite and the demo: built when stale. Where
/// npm is missing or the build fails (offline, say) it is skipped with a
/// note, unless `MUXLINK_REQUIRE_BROWSER` is set, which makes both errors.
pub fn web_if_available() -> Result<()> {
    let required = std::env::var_os(REQUIRE).is_some();
    if !have("npm", &["--version"]) {
        if required {
            bail!("npm not found but {REQUIRE} is set: install Node.js 20+ with npm");
        }
        eprintln!("npm not found: the web client is not built and its browser test is skipped");
        return Ok(());
    }
    match build(false) {
        Err(e) if !required => {
            eprintln!("the web client did not build ({e:#}); going on without it");
            Ok(())
        }
        other => other,
    }
}

fn build(always: bool) -> Result<()> {
    let web = project_root().join("web");
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    if always || is_stale(&installed, &[lock.as_path()]) {
        run(npm("npm").args(["ci", "--no-audit", "--no-fund"]))?;
    }
    let sources: Vec<_> = SOURCES.iter().map(|s| web.join(s)).collect();
    let sources: Vec<&Path> = sources.iter().map(|p| p.as_path()).collect();
    if always || is_stale(&web.join("dist/index.html"), &sources) {
        run(npm("npx").args(["tsc", "--noEmit", "-p", "."]))?;
        run(npm("npx").args(["vite", "build"]))?;
        // build.rs watches web/dist only once it exists; touching the script
        // makes cargo rerun it after the first build too.
        let script = project_root().join("crates/signaling-server/build.rs");
        std::fs::File::options()
            .write(true)
            .open(&script)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .with_context(|| format!("cannot touch {}", script.display()))?;
        eprintln!(
            "web client built into web/dist; the next cargo build of signaling-server embeds it"
        );
    } else {
        eprintln!("web/dist is up to date");
    }
    run(npm("npx").args(["vitest", "run"]))
}

/// True when `output` is missing or older than any file under `inputs`.
fn is_stale(output: &Path, inputs: &[&Path]) -> bool {
    let Ok(built) = std::fs::metadata(output).and_then(|m| m.modified()) else {
        return true;
    };
    inputs.iter().any(|p| newest(p).is_some_and(|t| t > built))
}

/// The newest modification time of `path` or anything below it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut best = meta.modified().ok();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            best = best.max(newest(&entry.path()));
        }
    }
    best
}
