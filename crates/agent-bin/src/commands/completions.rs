//! `muxlink completions <shell>` and the hidden `muxlink __man <dir>`: the
//! shell completion script and the man pages, both generated from the clap
//! definitions in `cli`, so they never drift from the real command line.
//! `cargo xtask man` runs the built binary's `__man` (xtask keeps no
//! dependency on this crate).

use std::io::Write;
use std::path::Path;

use clap_complete::Shell;

use crate::error::CliError;

/// Prints the completion script for `shell` to stdout.
pub fn completions(shell: Shell) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    write_completions(shell, &mut out);
    out.flush()
        .map_err(|e| CliError::Other(format!("cannot write the completion script: {e}")))
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: Shell, out: &mut dyn Write) {
    let mut cmd = visible(&crate::cli::command());
    clap_complete::generate(shell, &mut cmd, "muxlink", out);
}

/// `cmd` without its hidden top-level options and commands (some shells'
/// generators would offer them): a copy with the visible ones.
fn visible(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new("muxlink").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    out.args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned())
}

/// Writes `muxlink.1` and one page per visible command (`muxlink-pair.1`, …)
/// into `dir`, creating it when missing; prints each file written.
pub fn man(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io("create", dir, &e))?;
    clap_mangen::generate_to(crate::cli::command(), dir)
        .map_err(|e| CliError::io("write the man pages into", dir, &e))?;
    let mut pages: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| CliError::io("read", dir, &e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("muxlink") && n.ends_with(".1"))
        .collect();
    pages.sort();
    for page in pages {
        println!("{}", dir.join(page).display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_our_commands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            write_completions(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["muxlink", "pair", "service", "completions"] {
                assert!(text.contains(word), "{shell}: {word} missing");
            }
            assert!(
                !text.contains("__man"),
                "{shell}: the hidden command leaked"
            );
        }
    }

    #[test]
    fn man_pages_for_the_tool_and_each_command() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("man");
        man(&out).unwrap();
        let main = std::fs::read_to_string(out.join("muxlink.1")).unwrap();
        assert!(
            main.starts_with(".ie") || main.contains(".TH muxlink 1"),
            "{main}"
        );
        assert!(main.contains("pair") && main.contains("service"), "{main}");
        for page in [
            "muxlink-pair.1",
            "muxlink-service.1",
            "muxlink-service-install.1",
        ] {
            assert!(out.join(page).is_file(), "{page}");
        }
        assert!(!out.join("muxlink-__man.1").exists());
    }
}
