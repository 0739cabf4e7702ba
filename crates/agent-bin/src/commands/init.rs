//! `muxlink init`: create the identity once and record the server URL.

use std::io::Write;

use crate::config::{self, Config, FileConfig, Overrides, Paths};
use crate::error::CliError;
use crate::store::{self, Store};

/// Runs `init`; nothing existing is overwritten except `server_url` when a new one is given.
pub fn init(o: &Overrides) -> Result<(), CliError> {
    let paths = Paths::resolve(o)?;
    let config_path = paths.config_file();
    // Refuse before writing anything if the config or key is broken.
    let mut file = config::read_file_config(&config_path)?;
    let store = Store::new(&paths.data_dir);
    let existing = if store.has_identity() {
        Some(store.load_identity()?)
    } else {
        None
    };
    let mut changed = false;
    let mut scheme_added = None;
    if let Some(given) = &o.server_url {
        let url = config::validate_server_url(given)?;
        if !given.contains("://") {
            scheme_added = Some(url.split("://").next().unwrap_or("https").to_owned());
        }
        if file.server_url.as_deref() != Some(url.as_str()) {
            file.server_url = Some(url);
            changed = true;
        }
    }
    // Validate the merged result before persisting.
    let cfg = Config::merge(paths.clone(), file.clone(), o)?;
    // Both dirs are made private (and our files 0600) even when nothing new is written.
    store::secure_dirs(&paths)?;
    if changed || !config_path.exists() {
        write_config(&paths, &file)?;
    }
    let (key, created) = match existing {
        Some(k) => (k, false),
        None => (store.create_identity()?, true),
    };
    let id = signaling_proto::device_id(&key.verifying_key().to_bytes());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "identity: {} ({})",
        paths.data_dir.join(store::PRIVATE_KEY_FILE).display(),
        if created { "created" } else { "kept" }
    );
    let _ = writeln!(out, "device id: {id}");
    let _ = writeln!(out, "config: {}", config_path.display());
    match &cfg.server_url {
        Some(url) => {
            match &scheme_added {
                Some(scheme) => {
                    let why = if scheme == "http" {
                        "a loopback host"
                    } else {
                        "any host but loopback"
                    };
                    let _ = writeln!(
                        out,
                        "server: {url} (stored with {scheme}://, the default for {why})"
                    );
                }
                None => {
                    let _ = writeln!(out, "server: {url}");
                }
            }
            if let Some(warning) = config::phone_reachability_warning(url) {
                eprintln!("{warning}");
            }
            let _ = writeln!(
                out,
                "next: run `muxlink pair` and scan the code with your phone"
            );
        }
        None => {
            let _ = writeln!(
                out,
                "server: not set; run `muxlink init --server URL` before pairing"
            );
        }
    }
    Ok(())
}

fn write_config(paths: &Paths, file: &FileConfig) -> Result<(), CliError> {
    store::ensure_private_dir(&paths.config_dir)?;
    let body = toml::to_string(file)
        .map_err(|e| CliError::Other(format!("cannot encode config.toml: {e}")))?;
    let text = format!(
        "# muxlink configuration (keys: server_url, hmac_secret, host_name, tmux_socket,\n\
         # max_peers, loopback_only, relay_only). MUXLINK_* variables and flags override it.\n{body}"
    );
    store::write_private(&paths.config_file(), text.as_bytes())
}
