//! One module per CLI command; `dispatch` maps the parsed CLI to them.
//! `serve` and `web` exist only with the `serve` feature (the bundled
//! signaling server and its embedded web client linked in).

pub mod background;
pub mod completions;
pub mod confirm;
pub mod init;
pub mod pair;
pub mod passthrough;
#[cfg(feature = "serve")]
pub mod serve;
pub mod service;
pub mod status;
pub mod unpair;
#[cfg(feature = "serve")]
pub mod web;

use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::CliError;

/// Runs the parsed command.
pub async fn dispatch(cli: Cli) -> Result<(), CliError> {
    let o = cli.overrides();
    match cli.command {
        Command::Init => init::init(&o),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::serve(args, &o).await,
        #[cfg(feature = "serve")]
        Command::Web(crate::cli::WebCommand::Export { dir }) => web::export(&dir),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man { dir } => completions::man(&dir),
        Command::Service(c) => service::service(c, &o),
        command => {
            let cfg = Config::load(&o)?;
            match command {
                Command::Pair {
                    yes,
                    payload_only,
                    timeout,
                    web_url,
                } => {
                    let opts = pair::PairOptions {
                        yes,
                        payload_only,
                        timeout: Duration::from_secs(timeout),
                        web_url,
                    };
                    pair::pair(&cfg, &opts).await
                }
                Command::Unpair { yes } => unpair::unpair(&cfg, yes),
                Command::Status { json } => status::status(&cfg, json),
                Command::Run => crate::daemon::run(cfg).await,
                Command::Start => background::start(&cfg, &o, false).map(|_| ()),
                Command::Stop => background::stop(&cfg),
                Command::Tmux(args) => passthrough::passthrough(&cfg, &o, &args),
                #[cfg(feature = "serve")]
                Command::Serve(_) | Command::Web(_) => Ok(()),
                Command::Init
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Service(_) => Ok(()),
            }
        }
    }
}
