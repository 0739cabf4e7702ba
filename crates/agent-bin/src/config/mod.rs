//! Agent configuration: `config.toml` under the config dir, overridden by
//! `MUXLINK_*` environment variables and command-line flags (flag > env > file > default).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use signaling_proto::consts::DEFAULT_API_VERSION;

use crate::error::CliError;

mod checks;
pub use checks::{
    phone_reachability_warning, validate_api_version, validate_server_url, validate_stun_url,
};

/// File name of the TOML config inside the config dir.
pub const CONFIG_FILE: &str = "config.toml";
/// Default tmux socket name (`tmux -L muxlink`).
pub const DEFAULT_TMUX_SOCKET: &str = "muxlink";

/// Environment variable: one directory holding both config and data (tests, demo).
pub const ENV_HOME: &str = "MUXLINK_HOME";
/// Environment variable: config directory.
pub const ENV_CONFIG_DIR: &str = "MUXLINK_CONFIG_DIR";
/// Environment variable: data directory (keys, pairing record, pidfile, status).
pub const ENV_DATA_DIR: &str = "MUXLINK_DATA_DIR";
/// Environment variable: the STUN URL used when TURN credentials cannot be
/// fetched (over `stun_url` in `config.toml`).
pub const ENV_STUN_URL: &str = "MUXLINK_STUN_URL";

/// Environment variable: the signaling API version (over `api_version` in
/// `config.toml`; default [`DEFAULT_API_VERSION`]).
pub const ENV_API_VERSION: &str = "MUXLINK_API_VERSION";

/// The `config.toml` contents; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Signaling server base URL without API version, e.g. `https://signal.example.net`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// Request-signing secret shared with the server deployment ("" = unsigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    /// API version path segment the server serves (default `v1`; "" = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Name this host shows to the phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// tmux socket name used with `tmux -L`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmux_socket: Option<String>,
    /// Maximum simultaneous phone connections (1–20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_peers: Option<usize>,
    /// Test setting: loopback-only ICE, no TURN fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loopback_only: Option<bool>,
    /// Diagnostics: relay-only ICE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_only: Option<bool>,
    /// STUN server used when `/turn/credentials` fails (`stun:host[:port]`);
    /// default `stun:<signaling host>:3478`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stun_url: Option<String>,
}

/// Overrides taken from flags and environment (clap fills both).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config-dir` / `MUXLINK_CONFIG_DIR`.
    pub config_dir: Option<PathBuf>,
    /// `--data-dir` / `MUXLINK_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `MUXLINK_HOME`: config and data in one directory.
    pub home: Option<PathBuf>,
    /// `--server` / `MUXLINK_SERVER`.
    pub server_url: Option<String>,
    /// `--hmac-secret` / `MUXLINK_HMAC_SECRET`.
    pub hmac_secret: Option<String>,
    /// `--host-name` / `MUXLINK_HOST_NAME`.
    pub host_name: Option<String>,
    /// `--tmux-socket` / `MUXLINK_TMUX_SOCKET`.
    pub tmux_socket: Option<String>,
    /// `MUXLINK_LOOPBACK_ONLY`.
    pub loopback_only: Option<bool>,
}

/// Where muxlink keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Holds `config.toml`.
    pub config_dir: PathBuf,
    /// Holds keys and the pairing record.
    pub data_dir: PathBuf,
    /// Holds the pidfile and the status file: `$XDG_RUNTIME_DIR/muxlink`, or
    /// the data dir when that is unset or a data dir was given.
    pub runtime_dir: PathBuf,
    /// Holds the background agent's log: `$XDG_STATE_HOME/muxlink` (default
    /// `~/.local/state/muxlink`), or the data dir when a data dir was given.
    pub state_dir: PathBuf,
}

impl Paths {
    /// Resolves the directories: explicit dir > `MUXLINK_HOME` > XDG dirs. An
    /// explicit data dir (or `MUXLINK_HOME`) also holds the runtime and state
    /// files, so such an installation stays in its own directories.
    pub fn resolve(o: &Overrides) -> Result<Paths, CliError> {
        let xdg = || directories::ProjectDirs::from("", "", "muxlink");
        let config_dir = match (&o.config_dir, &o.home) {
            (Some(d), _) => d.clone(),
            (None, Some(h)) => h.clone(),
            (None, None) => xdg()
                .map(|p| p.config_dir().to_path_buf())
                .ok_or(CliError::NoHomeDir)?,
        };
        let data_dir = match (&o.data_dir, &o.home) {
            (Some(d), _) => d.clone(),
            (None, Some(h)) => h.clone(),
            (None, None) => xdg()
                .map(|p| p.data_dir().to_path_buf())
                .ok_or(CliError::NoHomeDir)?,
        };
        let (runtime_dir, state_dir) = if o.data_dir.is_some() || o.home.is_some() {
            (data_dir.clone(), data_dir.clone())
        } else {
            let env_dir = |var: &str| {
                std::env::var_os(var)
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
            };
            let runtime =
                env_dir("XDG_RUNTIME_DIR").map_or_else(|| data_dir.clone(), |d| d.join("muxlink"));
            let state = match env_dir("XDG_STATE_HOME") {
                Some(d) => d.join("muxlink"),
                None => directories::BaseDirs::new()
                    .map(|b| b.home_dir().join(".local/state/muxlink"))
                    .ok_or(CliError::NoHomeDir)?,
            };
            (runtime, state)
        };
        Ok(Paths {
            config_dir,
            data_dir,
            runtime_dir,
            state_dir,
        })
    }

    /// Path of `config.toml`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join(CONFIG_FILE)
    }

    /// Path of the agent pidfile (locked while an agent runs).
    pub fn pid_file(&self) -> PathBuf {
        self.runtime_dir.join("agent.pid")
    }

    /// Path of the agent's JSON status file.
    pub fn status_file(&self) -> PathBuf {
        self.runtime_dir.join("agent-status.json")
    }

    /// Log file of the background agent (`muxlink start`).
    pub fn log_file(&self) -> PathBuf {
        self.state_dir.join("agent.log")
    }
}

/// The effective configuration after merging file, environment and flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Directories.
    pub paths: Paths,
    /// Server URL, validated (`http`/`https`, host present); None when never set.
    pub server_url: Option<String>,
    /// Request-signing secret ("" = none).
    pub hmac_secret: String,
    /// API version of every HTTP call and the WebSocket URL
    /// (`MUXLINK_API_VERSION` > `api_version` > `v1`; "" = no prefix).
    pub api_version: String,
    /// Host display name.
    pub host_name: String,
    /// tmux socket name.
    pub tmux_socket: String,
    /// Maximum peers.
    pub max_peers: usize,
    /// Loopback-only ICE (tests).
    pub loopback_only: bool,
    /// Relay-only ICE (diagnostics).
    pub relay_only: bool,
    /// Fallback STUN URL (`MUXLINK_STUN_URL` > `stun_url`); None = the
    /// peer manager's default, `stun:<signaling host>:3478`.
    pub stun_url: Option<String>,
}

impl Config {
    /// Loads `config.toml` (absent = defaults) and applies the overrides.
    pub fn load(o: &Overrides) -> Result<Config, CliError> {
        let paths = Paths::resolve(o)?;
        let mut file = read_file_config(&paths.config_file())?;
        if let Some(url) = std::env::var(ENV_STUN_URL).ok().filter(|u| !u.is_empty()) {
            file.stun_url = Some(url);
        }
        if let Ok(version) = std::env::var(ENV_API_VERSION) {
            file.api_version = Some(version);
        }
        Self::merge(paths, file, o)
    }

    /// Merges a parsed file with overrides; validates the result.
    pub fn merge(paths: Paths, file: FileConfig, o: &Overrides) -> Result<Config, CliError> {
        let server_url = match o.server_url.clone().or(file.server_url) {
            Some(u) => Some(validate_server_url(&u)?),
            None => None,
        };
        let (host_name, source) = match (o.host_name.clone(), file.host_name) {
            (Some(n), _) => (n, "MUXLINK_HOST_NAME / --host-name"),
            (None, Some(n)) => (n, "host_name in config.toml"),
            (None, None) => (default_host_name(), "the default"),
        };
        if let Err(e) = signaling_proto::validate_name(&host_name) {
            return Err(CliError::BadConfig(format!(
                "host name \"{}\" from {source}: {e}",
                crate::printable::printable(&host_name)
            )));
        }
        let tmux_socket = o
            .tmux_socket
            .clone()
            .or(file.tmux_socket)
            .unwrap_or_else(|| DEFAULT_TMUX_SOCKET.to_string());
        if tmux_socket.is_empty()
            || tmux_socket.contains('/')
            || tmux_socket.chars().any(char::is_control)
        {
            return Err(CliError::BadConfig(format!(
                "tmux socket name {tmux_socket:?} must be a plain name (no '/')"
            )));
        }
        let max_peers = file.max_peers.unwrap_or(1);
        if !(1..=20).contains(&max_peers) {
            return Err(CliError::BadConfig(format!(
                "max_peers = {max_peers} must be between 1 and 20"
            )));
        }
        let stun_url = match file.stun_url {
            Some(url) => Some(validate_stun_url(&url)?),
            None => None,
        };
        let api_version = match file.api_version {
            Some(v) => validate_api_version(&v)?,
            None => DEFAULT_API_VERSION.to_owned(),
        };
        Ok(Config {
            paths,
            stun_url,
            api_version,
            server_url,
            hmac_secret: o
                .hmac_secret
                .clone()
                .or(file.hmac_secret)
                .unwrap_or_default(),
            host_name,
            tmux_socket,
            max_peers,
            loopback_only: o.loopback_only.or(file.loopback_only).unwrap_or(false),
            relay_only: file.relay_only.unwrap_or(false),
        })
    }

    /// The server URL, or the error telling the user to set one.
    pub fn require_server(&self) -> Result<&str, CliError> {
        self.server_url.as_deref().ok_or(CliError::NoServer)
    }
}

/// Reads and parses `config.toml`; a missing file is an empty config.
pub fn read_file_config(path: &Path) -> Result<FileConfig, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => {
            return Err(CliError::ConfigUnreadable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    toml::from_str(&text).map_err(|e| CliError::ConfigUnreadable {
        path: path.to_path_buf(),
        reason: toml_error_line(&text, &e),
    })
}

/// A TOML error as one line that keeps its place: `line 3, column 14: <message>`.
fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

/// A display name per signaling.md §2 ([`signaling_proto::validate_name`]):
/// 1–64 chars, no control or bidi formatting characters.
pub fn valid_name(name: &str) -> bool {
    signaling_proto::validate_name(name).is_ok()
}

fn default_host_name() -> String {
    // Linux exposes the hostname here; elsewhere fall back to $HOSTNAME.
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| valid_name(h));
    name.unwrap_or_else(|| "muxlink host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        Paths {
            config_dir: "/c".into(),
            data_dir: "/d".into(),
            runtime_dir: "/d".into(),
            state_dir: "/d".into(),
        }
    }

    #[test]
    fn flags_override_file() {
        let file = FileConfig {
            server_url: Some("http://a:1".into()),
            tmux_socket: Some("file".into()),
            ..Default::default()
        };
        let o = Overrides {
            server_url: Some("http://b:2/".into()),
            ..Default::default()
        };
        let c = Config::merge(paths(), file, &o).unwrap();
        assert_eq!(c.server_url.as_deref(), Some("http://b:2"));
        assert_eq!(c.tmux_socket, "file");
        assert_eq!(c.max_peers, 1);
    }

    #[test]
    fn toml_errors_keep_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "# c\nserver_url = \"http://x\"\nmax_peers = [\n").unwrap();
        let err = read_file_config(&f).unwrap_err().to_string();
        assert!(err.contains("line 3, column"), "{err}");
        assert!(!err.contains('\n'), "{err:?}");
    }

    #[test]
    fn home_puts_everything_in_one_dir() {
        let o = Overrides {
            home: Some("/h".into()),
            data_dir: Some("/x".into()),
            ..Default::default()
        };
        let p = Paths::resolve(&o).unwrap();
        assert_eq!(p.config_dir, PathBuf::from("/h"));
        assert_eq!(p.data_dir, PathBuf::from("/x"));
        // An explicit data dir keeps the agent's runtime and state files too.
        assert_eq!(p.pid_file(), PathBuf::from("/x/agent.pid"));
        assert_eq!(p.status_file(), PathBuf::from("/x/agent-status.json"));
        assert_eq!(p.log_file(), PathBuf::from("/x/agent.log"));
    }

    #[test]
    fn host_name_with_controls_or_bidi_is_one_readable_line() {
        for (bad, shown) in [
            ("desk\u{1b}[31m", "desk\\u{1b}[31m"),
            ("desk\u{9b}", "desk\\u{9b}"),
            ("evil\u{202e}kcus", "evil\\u{202e}kcus"),
        ] {
            let o = Overrides {
                host_name: Some(bad.into()),
                ..Default::default()
            };
            let err = Config::merge(paths(), FileConfig::default(), &o)
                .unwrap_err()
                .to_string();
            assert!(err.contains(shown), "{err}");
            assert!(err.contains("MUXLINK_HOST_NAME"), "{err}");
            assert!(
                !err.contains('\n') && !err.chars().any(|c| c.is_control()),
                "{err:?}"
            );
            assert!(!err.contains('\u{202e}'), "{err:?}");
            let file = FileConfig {
                host_name: Some(bad.into()),
                ..Default::default()
            };
            let err = Config::merge(paths(), file, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("config.toml") && err.contains(shown), "{err}");
        }
    }

    #[test]
    fn stun_url_is_checked() {
        let file = |u: &str| FileConfig {
            stun_url: Some(u.into()),
            ..Default::default()
        };
        let c = Config::merge(
            paths(),
            file("stun:stun.example.net:3478"),
            &Overrides::default(),
        );
        assert_eq!(
            c.unwrap().stun_url.as_deref(),
            Some("stun:stun.example.net:3478")
        );
        let c = Config::merge(paths(), FileConfig::default(), &Overrides::default());
        assert_eq!(c.unwrap().stun_url, None);
        for bad in ["http://x", "stun:", "x:3478", "stun://x"] {
            let e = Config::merge(paths(), file(bad), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("stun:host"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.toml");
        std::fs::write(&f, "sever_url = 'http://x'\n").unwrap();
        let err = read_file_config(&f).unwrap_err().to_string();
        assert!(err.contains("config.toml"), "{err}");
    }
}
