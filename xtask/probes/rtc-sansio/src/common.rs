//! What both probes share: their knobs from the environment, CPU time, and
//! the two peers on their own threads, each with a current-thread runtime,
//! exchanging descriptions in-process.

use std::future::Future;
use std::time::Instant;

use anyhow::{Result, anyhow};
use tokio::sync::mpsc;

pub const MESSAGE: usize = 16 * 1024;
pub const AHEAD: usize = 1024 * 1024;
pub const PING: usize = 64;

pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU seconds of this thread (`RUSAGE_THREAD`) or of the whole
/// process (`RUSAGE_SELF`).
pub fn cpu(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Runs the host (`true`) and the phone (`false`) side of `run`, each on its
/// own thread, handing each the other's descriptions; returns when the phone
/// side ends (the host has no end of its own and goes with the process).
pub fn host_and_phone<D, F, Fut>(run: F) -> Result<()>
where
    D: Send + 'static,
    F: Fn(bool, mpsc::Sender<D>, mpsc::Receiver<D>, Instant) -> Fut + Send + Copy + 'static,
    Fut: Future<Output = Result<()>>,
{
    let (to_phone, phone_inbox) = mpsc::channel(1);
    let (to_host, host_inbox) = mpsc::channel(1);
    let started = Instant::now();
    let side = move |host: bool, out: mpsc::Sender<D>, inbox: mpsc::Receiver<D>| {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(run(host, out, inbox, started))
        })
    };
    let _host = side(true, to_phone, host_inbox);
    side(false, to_host, phone_inbox)
        .join()
        .map_err(|_| anyhow!("the phone thread panicked"))?
}
