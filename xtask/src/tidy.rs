//! Tidy checks that run as tests of xtask: every Rust file opens with a `//!`
//! paragraph saying what it is for, no non-test source file is over
//! 600 lines, and every declared dependency is used.

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use crate::run::project_root;

    /// The most lines a non-test source file may have; a longer one is split
    /// by responsibility into sibling modules.
    const MAX_SOURCE_LINES: usize = 600;

    /// Every `.rs` file below `dir`, skipping build output, hidden dirs and
    /// `node_modules`.
    pub(crate) fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
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

    /// Test code is exempt: a file named `tests.rs` or `*_tests.rs`, or one
    /// under a `tests/` directory.
    pub(crate) fn is_test_file(path: &Path) -> bool {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name == "tests.rs"
            || name.ends_with("_tests.rs")
            || path.components().any(|c| c.as_os_str() == "tests")
    }

    #[test]
    fn no_source_file_over_600_lines() {
        let root = project_root();
        let mut files = Vec::new();
        let crates = std::fs::read_dir(root.join("crates")).expect("crates/ is readable");
        for krate in crates.flatten() {
            rust_files(&krate.path().join("src"), &mut files);
        }
        rust_files(&root.join("xtask/src"), &mut files);
        let mut too_long: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap_or(p))
            .filter(|p| !is_test_file(p))
            .filter_map(|p| {
                let text = std::fs::read_to_string(root.join(p)).unwrap_or_default();
                let lines = text.lines().count();
                (lines > MAX_SOURCE_LINES).then(|| format!("{}: {lines}", p.display()))
            })
            .collect();
        too_long.sort();
        assert!(
            too_long.is_empty(),
            "source files over {} lines (split them by responsibility): {too_long:#?}",
            MAX_SOURCE_LINES
        );
    }
}

/// The unused-dependency check (`cargo machete`'s job, done here so CI needs
/// no extra tool): every dependency a package declares must be named in its
/// Rust sources as `name::` or `use name` (with `-` read as `_`), unless the
/// package lists it under `[package.metadata.cargo-machete] ignored`.
#[cfg(test)]
mod unused_dependencies {
    use std::path::{Path, PathBuf};

    use crate::run::project_root;

    /// The text of every Rust file below `dir`.
    fn sources(dir: &Path) -> String {
        let mut files = Vec::new();
        super::tests::rust_files(dir, &mut files);
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap_or_default() + "\n")
            .collect()
    }

    fn manifests(root: &Path) -> Vec<PathBuf> {
        let mut out = vec![root.join("xtask/Cargo.toml"), root.join("tests/Cargo.toml")];
        if let Ok(entries) = std::fs::read_dir(root.join("crates")) {
            for e in entries.flatten() {
                let m = e.path().join("Cargo.toml");
                if m.exists() {
                    out.push(m);
                }
            }
        }
        out.sort();
        out
    }

    /// Dependency names of the `[dependencies]`, `[dev-dependencies]` and
    /// `[build-dependencies]` tables.
    fn declared(manifest: &toml::Table) -> Vec<String> {
        ["dependencies", "dev-dependencies", "build-dependencies"]
            .iter()
            .filter_map(|t| manifest.get(*t).and_then(|v| v.as_table()))
            .flat_map(|t| t.keys().cloned())
            .collect()
    }

    fn ignored(manifest: &toml::Table) -> Vec<String> {
        manifest
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("cargo-machete"))
            .and_then(|m| m.get("ignored"))
            .and_then(|i| i.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn named(text: &str, ident: &str) -> bool {
        text.contains(&format!("{ident}::"))
            || text.contains(&format!("use {ident}"))
            || text.contains(&format!("extern crate {ident}"))
    }

    #[test]
    fn every_declared_dependency_is_used() {
        let root = project_root();
        let mut unused = Vec::new();
        for manifest_path in manifests(&root) {
            let text = std::fs::read_to_string(&manifest_path).unwrap_or_default();
            let Ok(manifest) = text.parse::<toml::Table>() else {
                unused.push(format!("{}: not valid TOML", manifest_path.display()));
                continue;
            };
            let dir = manifest_path.parent().unwrap_or(&root);
            let code = sources(dir);
            let skip = ignored(&manifest);
            for dep in declared(&manifest) {
                let ident = dep.replace('-', "_");
                if !skip.contains(&dep) && !named(&code, &ident) {
                    let rel = manifest_path.strip_prefix(&root).unwrap_or(&manifest_path);
                    unused.push(format!("{}: {dep}", rel.display()));
                }
            }
        }
        assert!(
            unused.is_empty(),
            "dependencies no source names (remove them, or list them under [package.metadata.cargo-machete] ignored with a comment why): {unused:#?}"
        );
    }
}
