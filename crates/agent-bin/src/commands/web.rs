//! `muxlink web export DIR`: writes the web client built into this binary to a
//! directory, so it can be hosted on a static origin the user trusts instead of
//! being served by the signaling server (which could serve other code).

use std::path::Path;

use crate::error::CliError;

/// Writes every file of the embedded web client under `dir` and says what to
/// do next; fails with one line when the client was not built in.
pub fn export(dir: &Path) -> Result<(), CliError> {
    let files = signaling_server::web_client_files();
    if !files.iter().any(|(path, _)| *path == "index.html") {
        return Err(CliError::Other(
            "this muxlink was built without the web client: run `cargo xtask web` and rebuild, or host web/dist yourself".into(),
        ));
    }
    for (path, bytes) in &files {
        // Paths come from our own build (`index.html`, `assets/<hash>.js`, …);
        // refuse anything that would leave `dir` all the same.
        let rel = Path::new(path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(CliError::Other(format!(
                "refusing web client path {path:?}"
            )));
        }
        let target = dir.join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::Other(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&target, bytes)
            .map_err(|e| CliError::Other(format!("cannot write {}: {e}", target.display())))?;
    }
    println!(
        "wrote the web client ({} files) to {}",
        files.len(),
        dir.display()
    );
    println!(
        "host it on an origin you trust, start the server with --cors-origin <that origin>, and pair with `muxlink pair --web-url <its URL>`"
    );
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn export_writes_the_embedded_client_or_says_how_to_build_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("site");
        match super::export(&out) {
            Ok(()) => {
                let index = std::fs::read_to_string(out.join("index.html")).unwrap();
                assert!(index.contains("<script"), "{index}");
                assert!(!index.contains("<script>"), "no inline script: {index}");
            }
            Err(e) => assert!(e.to_string().contains("cargo xtask web"), "{e}"),
        }
    }
}
