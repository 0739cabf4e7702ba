//! The `muxlink` command line (clap derive): global options, one subcommand per
//! task, and tmux passthrough for anything else.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Overrides;

/// Your tmux sessions on your phone, end-to-end encrypted over WebRTC.
#[derive(Debug, Parser)]
#[command(
    name = "muxlink",
    version,
    allow_external_subcommands = true,
    next_help_heading = "Global options",
    after_help = "Any other command goes to tmux on muxlink's own socket, starting the agent \
                  if needed: `muxlink new -s work` runs `tmux -L muxlink new -s work`."
)]
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
    /// Request-signing secret of the server, if it has one (prefer the env var:
    /// flags show in `ps`).
    ///
    /// Needed when the server was started with a request-signing (HMAC) secret;
    /// it refuses unsigned requests with 401 `missing client signature`. Set it
    /// in MUXLINK_HMAC_SECRET or as `hmac_secret` in config.toml rather than with
    /// this flag: a value on the command line is visible to every user of this
    /// machine (`ps`).
    #[cfg_attr(
        feature = "serve",
        doc = "`muxlink serve` uses it as the server's own secret."
    )]
    #[arg(
        long,
        env = "MUXLINK_HMAC_SECRET",
        global = true,
        hide_env_values = true,
        value_name = "SECRET"
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
    #[cfg(feature = "serve")]
    Serve(ServeArgs),
    /// The web client: write it out to host on an origin you trust.
    #[cfg(feature = "serve")]
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

/// What `muxlink serve` takes; every other server setting comes from the
/// standalone server's TOML file (`MUXLINK_SERVER_CONFIG`).
#[cfg(feature = "serve")]
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// SQLite database file (default: in memory, lost on exit).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// PEM certificate chain: serve https/wss (needs --tls-key).
    #[arg(long, env = "MUXLINK_SERVER_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MUXLINK_SERVER_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Origin of a web client hosted elsewhere that may call this server
    /// (CORS); repeat for several. Default: none, same origin only.
    #[arg(
        long = "cors-origin",
        env = "MUXLINK_SERVER_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,
    /// UDP address of the STUN responder that lets phones find their
    /// public address, or "off". Default: 0.0.0.0:3478 when --bind has a
    /// fixed port (a port already taken only logs a warning).
    #[arg(long, env = "MUXLINK_SERVER_STUN_BIND", value_name = "ADDR|off")]
    pub stun_bind: Option<signaling_server::StunBind>,
}

/// `muxlink web …`.
#[cfg(feature = "serve")]
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

/// Global options that do nothing for a subcommand (by arg id): hidden in
/// that subcommand's help and refused on its command line (the environment
/// variables stay harmless). Subcommands not listed take every global option.
const NOT_FOR: &[(&str, &[&str])] = &[
    ("init", &["tmux_socket", "hmac_secret"]),
    ("pair", &["tmux_socket"]),
    ("unpair", &["tmux_socket"]),
    ("status", &["hmac_secret"]),
    ("stop", &["server", "tmux_socket", "hmac_secret"]),
    (
        "serve",
        &["server", "tmux_socket", "config_dir", "data_dir"],
    ),
    ("web", AGENT_OPTIONS),
    ("completions", AGENT_OPTIONS),
];

/// The global options about the agent's config, server and tmux.
const AGENT_OPTIONS: &[&str] = &[
    "server",
    "tmux_socket",
    "hmac_secret",
    "config_dir",
    "data_dir",
];

/// The global options `subcommand` does not use.
fn not_for(subcommand: &str) -> &'static [&'static str] {
    NOT_FOR
        .iter()
        .find(|(name, _)| *name == subcommand)
        .map_or(&[], |(_, ids)| *ids)
}

/// The `muxlink` command as parsed and shown: [`Cli`] with each subcommand's
/// help listing its own options first, then under "Global options" only the
/// global ones it uses.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    for sub in cmd.get_subcommands_mut() {
        for id in not_for(sub.get_name()) {
            // A subcommand that has an arg of the same id gets no copy of the
            // global one: this hidden local stand-in takes its place (and the
            // refusal in `try_parse_from` reports its use).
            if let Some(arg) = globals.iter().find(|a| a.get_id() == *id) {
                let stand_in = arg.clone().global(false).hide(true);
                *sub = std::mem::take(sub).arg(stand_in);
            }
        }
    }
    cmd
}

/// Parses `args` (program name first) with [`command`]; a global option given
/// on the command line to a subcommand that does not use it is an error.
pub fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    if let Some((name, _)) = matches.subcommand() {
        for id in not_for(name) {
            if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                let flag = cmd
                    .get_arguments()
                    .find(|a| a.get_id() == *id)
                    .and_then(|a| a.get_long())
                    .unwrap_or(id);
                let mut sub = cmd.find_subcommand(name).cloned().unwrap_or_default();
                let usage = sub.render_usage();
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("--{flag} does nothing for `muxlink {name}`\n\n{usage}\n"),
                ));
            }
        }
    }
    Cli::from_arg_matches(&matches)
}

/// [`try_parse_from`] on the process arguments; exits with clap's message
/// (and code) on `--help`, `--version` or a usage error.
pub fn parse() -> Cli {
    try_parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
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
        command().debug_assert();
    }

    #[test]
    #[cfg(feature = "serve")]
    fn global_options_show_only_where_they_apply() {
        let mut cmd = command();
        cmd.build();
        let serve = cmd
            .find_subcommand_mut("serve")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            !serve.contains("--server") && !serve.contains("--tmux-socket"),
            "{serve}"
        );
        assert!(serve.contains("--hmac-secret"), "{serve}");
        let own = serve.find("--bind").unwrap();
        let global = serve.find("Global options").unwrap();
        assert!(own < global, "{serve}");
        let run = cmd
            .find_subcommand_mut("run")
            .unwrap()
            .render_help()
            .to_string();
        for flag in ["--server", "--tmux-socket", "--hmac-secret", "--config-dir"] {
            assert!(run.contains(flag), "{flag}: {run}");
        }
    }

    #[test]
    fn a_global_option_that_does_nothing_is_refused() {
        let e = try_parse_from(["muxlink", "stop", "--server", "https://x"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("--server does nothing for `muxlink stop`"),
            "{e}"
        );
        let cli = try_parse_from(["muxlink", "init", "--server", "localhost:8080"]).unwrap();
        assert_eq!(cli.server.as_deref(), Some("localhost:8080"));
        let cli = try_parse_from(["muxlink", "--server", "x", "new", "-s", "w"]).unwrap();
        assert!(matches!(cli.command, Command::Tmux(_)));
    }

    #[test]
    fn serve_and_web_exist_only_with_the_bundled_server() {
        let cmd = command();
        for name in ["serve", "web"] {
            assert_eq!(
                cmd.find_subcommand(name).is_some(),
                cfg!(feature = "serve"),
                "{name}"
            );
        }
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
