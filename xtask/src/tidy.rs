//! Tidy checks that run as tests of xtask: every Rust file opens with a `//!`
//! paragraph saying what it is for.

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::run::project_root;

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "target" || name.starts_with('.') || name == "node_modules" {
                continue;
            }
            if path.is_dir() {
                rust_files(&path, out);
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_rust_file_opens_with_a_module_doc() {
        let root = project_root();
        let mut files = Vec::new();
        for dir in ["crates", "xtask", "tests", "fuzz/fuzz_targets"] {
            rust_files(&root.join(dir), &mut files);
        }
        let missing: Vec<_> = files
            .iter()
            .filter(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                !text.trim_start().starts_with("//!")
            })
            .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
            .collect();
        assert!(
            missing.is_empty(),
            "files without a leading `//!` doc: {missing:#?}"
        );
    }
}
