//! Errors a user sees from the CLI: each one is a single line that says what
//! went wrong and what to do about it.

use std::path::PathBuf;

/// A CLI failure; `Display` is the one line printed before exiting non-zero.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No home directory to put XDG dirs under.
    #[error("cannot find a home directory: set MUXLINK_HOME to a directory muxlink may use")]
    NoHomeDir,
    /// `config.toml` exists but cannot be read or parsed.
    #[error("cannot read config {}: {reason} (fix or remove the file)", path.display())]
    ConfigUnreadable {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A config value is out of range.
    #[error("invalid configuration: {0} (fix config.toml or the MUXLINK_* variable)")]
    BadConfig(String),
    /// The server URL does not parse or is not http(s).
    #[error(
        "invalid server URL {url:?}: {reason} (use e.g. `muxlink init --server https://signal.example.net`)"
    )]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// No server URL anywhere.
    #[error(
        "no signaling server configured: run `muxlink init --server URL` (or set MUXLINK_SERVER)"
    )]
    NoServer,
    /// No identity key yet.
    #[error("muxlink is not initialised in {}: run `muxlink init --server URL` first", dir.display())]
    NotInitialised {
        /// The data dir that lacks the key.
        dir: PathBuf,
    },
    /// The identity key file has the wrong content.
    #[error("{} is corrupt ({reason}): move it away and run `muxlink init` to create a new identity, then pair again", path.display())]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The pairing record is unreadable; the identity is fine.
    #[error("{} is corrupt ({reason}): run `muxlink pair` to pair the phone again (it replaces the record; the identity is kept)", path.display())]
    CorruptRecord {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {}: {reason}", path.display())]
    Io {
        /// "read", "write", "create", ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// OS error text.
        reason: String,
    },
    /// The server could not be reached at all.
    #[error(
        "cannot reach the signaling server at {url}: {reason} (is it running? check `server_url` / MUXLINK_SERVER)"
    )]
    Unreachable {
        /// Server URL.
        url: String,
        /// Transport error.
        reason: String,
    },
    /// The server accepted the connection but sent no answer in time.
    #[error(
        "the signaling server at {url} did not answer {what} within {secs} s (it accepts connections but does not respond: is it overloaded, or not a muxlink server?)"
    )]
    NoAnswer {
        /// Server URL.
        url: String,
        /// Which request, e.g. "the token request".
        what: &'static str,
        /// The timeout.
        secs: u64,
    },
    /// The server checks request signatures and this host sends none.
    #[error(
        "the server requires a request-signing secret ({error}): set MUXLINK_HMAC_SECRET or hmac_secret in config.toml to the server's secret"
    )]
    SigningSecretMissing {
        /// The server's error text.
        error: String,
    },
    /// The server refused this host's request signature.
    #[error(
        "the server refused this host's request signature ({error}): MUXLINK_HMAC_SECRET or hmac_secret in config.toml must be the server's request-signing secret"
    )]
    SigningSecretWrong {
        /// The server's error text.
        error: String,
    },
    /// The server answered with an error.
    #[error("the signaling server refused {what}: {status} {error}")]
    Server {
        /// Which request.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// Server's error text.
        error: String,
    },
    /// Not paired when pairing is needed.
    #[error("no phone is paired: run `muxlink pair`")]
    NotPaired,
    /// Interactive confirmation impossible.
    #[error("{0}: rerun with --yes to confirm")]
    NeedsConfirmation(String),
    /// User said no.
    #[error("cancelled")]
    Cancelled,
    /// `pair --timeout` passed before a phone paired (the code is still valid).
    #[error("pairing timed out: no phone scanned the code in time; run `muxlink pair` again")]
    PairingTimeout,
    /// The pairing code's lifetime on the server passed before a phone paired.
    #[error(
        "the pairing code expired ({secs} s passed without a phone pairing); run `muxlink pair` again"
    )]
    PairingCodeExpired {
        /// The code's lifetime.
        secs: u64,
    },
    /// The agent is already running.
    #[error("the muxlink agent is already running (pid {0}); `muxlink stop` stops it")]
    AlreadyRunning(i32),
    /// Something else, already phrased for the user.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// Shorthand for an I/O error on a path.
    pub fn io(action: &'static str, path: &std::path::Path, e: &std::io::Error) -> CliError {
        CliError::Io {
            action,
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }
}
