//! `muxlink-e2e-phone`: a paired phone in its own process for the fault tests,
//! so a test can SIGKILL it mid-session (no detach, no close, nothing sent).
//! Usage: `muxlink-e2e-phone <config-dir> <pane> <cols> <rows>`; prints `ATTACHED`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mobile_client::PhoneClient;

/// The process never outlives a forgotten test by more than this.
const LIFETIME: Duration = Duration::from_secs(120);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, pane, cols, rows] = args.as_slice() else {
        bail!("usage: muxlink-e2e-phone <config-dir> <pane> <cols> <rows>");
    };
    let cols: u16 = cols.parse().context("cols")?;
    let rows: u16 = rows.parse().context("rows")?;
    let phone = PhoneClient::open(muxlink_e2e::faults::phone_config(dir.into()))?;
    let host = phone.pairing()?.context("not paired")?.host_device_id;
    let sig = phone.signaling().await?;
    // The agent may still be connecting to the server: wait until it is online.
    let mut online = sig.online_hosts();
    tokio::time::timeout(LIFETIME, online.wait_for(|h| h.contains_key(&host)))
        .await
        .context("the host never came online")??;
    let conn = phone.connect(sig).await?;
    conn.attach(pane, cols, rows, false, false).await?;
    println!("ATTACHED");
    std::io::stdout().flush()?;
    // Keep draining events (a full queue would pause the channel) until killed.
    let _ = tokio::time::timeout(LIFETIME, async {
        while conn.next_event().await.is_some() {}
    })
    .await;
    Ok(())
}
