//! `muxlink unpair` (pairing.md §5): tell the server (best effort), delete the
//! secret, write an empty record, and make a running agent drop the phone.

use crate::commands::confirm::confirm;
use crate::config::Config;
use crate::error::CliError;
use crate::http::Http;
use crate::pidfile;
use crate::store::Store;

/// Runs `unpair`.
pub fn unpair(cfg: &Config, yes: bool) -> Result<(), CliError> {
    let store = Store::new(&cfg.paths.data_dir);
    let key = store.load_identity()?;
    crate::store::secure_dirs(&cfg.paths)?;
    let Some(device) = store.load_paired()? else {
        println!("no phone is paired; nothing to do");
        return Ok(());
    };
    let label = crate::printable::printable(device.name.as_deref().unwrap_or(&device.device_id));
    confirm(&format!("unpair {label}"), yes)?;
    match cfg.require_server() {
        Ok(url) => match Http::new(url, &cfg.api_version, &cfg.hmac_secret).delete_pairing(&key) {
            Ok(_) => {}
            Err(e) => eprintln!("warning: the server was not told ({e}); unpairing locally"),
        },
        Err(e) => eprintln!("warning: {e}; unpairing locally"),
    }
    store.delete_secret(&device.device_id)?;
    store.save_paired(None)?;
    if let Some(pid) =
        pidfile::signal_agent(&cfg.paths.pid_file(), nix::sys::signal::Signal::SIGUSR2)
    {
        tracing::debug!(pid, "told the agent to reload");
    }
    println!("unpaired {label}");
    Ok(())
}
