//! Asking the user before destructive steps; without a terminal the answer must
//! be given up front with `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::CliError;

/// Ok when `yes` or the user answers y; `NeedsConfirmation` without a TTY.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::NeedsConfirmation(question.to_string()));
    }
    eprint!("{question}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Other(format!("cannot read the answer: {e}")))?;
    match line.trim() {
        "y" | "Y" | "yes" | "YES" | "Yes" => Ok(()),
        _ => Err(CliError::Cancelled),
    }
}
