//! The `muxlink` command line (clap derive): global options, one subcommand per
//! task, and tmux passthrough for anything else.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

use crate::config::Overrides;

/// Your tmux sessions on your phone, end-to-end encrypted over WebRTC.
///
/// Any command not listed below is passed to tmux on muxlink's own socket
/// (`muxlink new -s work` runs `tmux -L muxlink new -s work`), starting the agent if needed.
#[derive(Debug, Parser)]
#[command(name = "muxlink", version, allow_external_subcommands = true)]
pub struct Cli {
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Config directory (default: XDG config dir, or MUXLINK_HOME).
    #[arg(long, env = "MUXLINK_CONFIG_DIR", global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Data directory for keys, pairing and agent state (default: XDG data dir, or MUXLINK_HOME).
    #[arg(long, env = "MUXLINK_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// One directory for config and data (tests, demos).
    #[arg(
        long,
        env = "MUXLINK_HOME",
        global = true,
        value_name = "DIR",
        hide = true
    )]
    pub home: Option<PathBuf>,
    /// Signaling server URL (overrides config.toml `server_url`).
    #[arg(
        long = "server",
        env = "MUXLINK_SERVER",
        global = true,
        value_name = "URL"
    )]
    pub server: Option<String>,
    /// tmux socket name used with `tmux -L` (default "muxlink").
    #[arg(long, env = "MUXLINK_TMUX_SOCKET", global = true, value_name = "NAME")]
    pub tmux_socket: Option<String>,
    /// Request-signing secret of the server deployment.
    #[arg(
        long,
        env = "MUXLINK_HMAC_SECRET",
        global = true,
        hide_env_values = true,
        hide = true
    )]
    pub hmac_secret: Option<String>,
    /// Name shown to the phone (default: the hostname).
    #[arg(long, env = "MUXLINK_HOST_NAME", global = true, hide = true)]
    pub host_name: Option<String>,
    /// Test setting: loopback-only ICE, no TURN.
    #[arg(long, env = "MUXLINK_LOOPBACK_ONLY", global = true, hide = true)]
    pub loopback_only: Option<bool>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this host's identity and config (safe to run again).
    ///
    /// Generates the Ed25519 identity key once and records the signaling server
    /// URL in config.toml. Running it again keeps the existing identity and only
    /// updates the server when --server is given. Prints where every file went.
    Init,
    /// Pair a phone: show a QR code and wait for the phone to scan it.
    ///
    /// Registers a pairing code with the server and shows a QR code of the web client
    /// URL (`<web client>#<payload>`, opened by a phone camera), the URL, the plain
    /// payload (for muxlink-phone, or to paste) and a `PAIRING_PAYLOAD <payload>` line
    /// on stdout, then waits up to 5 minutes for the phone. The payload carries a
    /// one-time token that never goes to the server: the phone proves it read the
    /// QR code, and a pairing with any other key is refused (one line) while the
    /// wait goes on. On success the shared secret is stored, the phone's name and id
    /// are printed and a running agent reloads. Replacing an existing pairing asks
    /// first unless --yes is given.
    Pair {
        /// Replace an existing pairing without asking.
        #[arg(long, short)]
        yes: bool,
        /// Print only the `PAIRING_PAYLOAD` line and result lines (for scripts).
        #[arg(long)]
        payload_only: bool,
        /// Seconds to wait for the phone.
        #[arg(long, default_value_t = 300, hide = true)]
        timeout: u64,
        /// Web client the QR code opens (default: the one the signaling server
        /// serves). Host the client on an origin you trust (`muxlink web export DIR`)
        /// so the signaling server never serves the code that holds your keys.
        #[arg(long, value_name = "URL")]
        web_url: Option<String>,
    },
    /// Forget the paired phone (also tells the server and the phone).
    ///
    /// Asks first unless --yes is given. The server is told best effort; the local
    /// secret and record are removed in any case and a running agent drops the phone.
    Unpair {
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
    },
    /// Show identity, server, pairing and what the agent is doing.
    ///
    /// Reports the device id, server URL, paired phone, whether the agent runs,
    /// its signaling state, connected phones and attached panes.
    Status {
        /// Machine-readable JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run the agent in the foreground (logs to stderr).
    ///
    /// Connects to the signaling server, accepts the paired phone over WebRTC and
    /// serves it the tmux sessions of the muxlink socket. Logs a line containing
    /// "agent ready" once it is serving. Stops cleanly on Ctrl-C or SIGTERM.
    Run,
    /// Start the agent in the background.
    ///
    /// Logs go to agent.log in the state directory (`~/.local/state/muxlink`),
    /// rotated at 5 MiB. Does nothing if it already runs.
    Start,
    /// Stop the background agent.
    ///
    /// Sends SIGTERM and waits for the agent to close its connections and exit.
    Stop,
    /// Run the bundled signaling server.
    ///
    /// The same server the tests and demo use. Prints `listening on <URL>` once ready.
    /// With --tls-cert and --tls-key it serves https/wss (phone browsers need a
    /// secure origin); without them plain HTTP, e.g. behind a TLS-terminating proxy.
    /// Every other setting (limits, timeouts, trusted proxies, JWT secret file)
    /// comes from the server's TOML file named by MUXLINK_SERVER_CONFIG.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// SQLite database file (default: in memory, lost on exit).
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// PEM certificate chain: serve https/wss (needs --tls-key).
        #[arg(long, env = "MUXLINK_SERVER_TLS_CERT", value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, env = "MUXLINK_SERVER_TLS_KEY", value_name = "FILE")]
        tls_key: Option<PathBuf>,
        /// Origin of a web client hosted elsewhere that may call this server
        /// (CORS); repeat for several. Default: none, same origin only.
        #[arg(
            long = "cors-origin",
            env = "MUXLINK_SERVER_CORS_ORIGINS",
            value_delimiter = ',',
            value_name = "ORIGIN"
        )]
        cors_origins: Vec<String>,
    },
    /// The web client: write it out to host on an origin you trust.
    #[command(subcommand)]
    Web(WebCommand),
    /// Run the agent as a user service that starts at login (systemd or launchd).
    ///
    /// `install` writes a systemd user unit (`~/.config/systemd/user/muxlink.service`)
    /// on Linux, a launchd agent (`~/Library/LaunchAgents/muxlink.agent.plist`)
    /// on macOS, then enables and starts it; `uninstall` stops it and removes the file.
    /// The service runs `muxlink run`, which reads the same config as every command.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print the shell completion script for SHELL to stdout.
    ///
    /// bash: `muxlink completions bash > ~/.local/share/bash-completion/completions/muxlink`;
    /// zsh: `muxlink completions zsh > ~/.zfunc/_muxlink` (a directory on $fpath);
    /// fish: `muxlink completions fish > ~/.config/fish/completions/muxlink.fish`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (muxlink.1 and one per command) into DIR.
    #[command(name = "__man", hide = true)]
    Man {
        /// Directory to write into (created if missing).
        dir: PathBuf,
    },
    /// Anything else goes to `tmux -L muxlink`.
    #[command(external_subcommand)]
    Tmux(Vec<OsString>),
}

/// `muxlink web …`.
#[derive(Debug, Subcommand)]
pub enum WebCommand {
    /// Write the web client built into this binary to DIR.
    ///
    /// Code served by the signaling server's origin can do anything the page can,
    /// so a hostile server could serve a client that leaks your keys. Host these
    /// static files on an origin you trust, start the server with
    /// `--cors-origin <that origin>`, and pair with `muxlink pair --web-url <URL>`.
    Export {
        /// Directory to write into (created if missing; existing files are replaced).
        dir: PathBuf,
    },
}

/// `muxlink service …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum ServiceCommand {
    /// Write the user service, enable it and start it now.
    ///
    /// Needs an initialised and paired host (the service would only fail and
    /// restart otherwise) and no agent started with `muxlink start`.
    /// Without systemctl (or launchctl) the commands to run are printed instead.
    Install,
    /// Stop and disable the user service and remove its file.
    Uninstall,
}

impl Cli {
    /// The config overrides given by flags and environment.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_dir: self.config_dir.clone(),
            data_dir: self.data_dir.clone(),
            home: self.home.clone(),
            server_url: self.server.clone(),
            hmac_secret: self.hmac_secret.clone(),
            host_name: self.host_name.clone(),
            tmux_socket: self.tmux_socket.clone(),
            loopback_only: self.loopback_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_commands_pass_through() {
        let cli = Cli::try_parse_from(["muxlink", "new", "-s", "work"]).unwrap();
        match cli.command {
            Command::Tmux(args) => assert_eq!(args, ["new", "-s", "work"]),
            other => panic!("{other:?}"),
        }
    }
}
