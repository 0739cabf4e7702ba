//! Tidy check: no two modules of a crate import each other in a loop. For
//! every pair of sibling modules (children of one parent), `a` depends on `b`
//! when any file of `a` names `crate::…::b`, `super::b` and the like; a cycle
//! among siblings fails the test with its members. A module and its own
//! descendants may refer to each other (a parent re-exports, a child uses the
//! parent's types): that is nesting, not a loop. Test files are exempt.

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use crate::run::project_root;

    type ModPath = Vec<String>;

    /// The module path of a source file below `src`: `lib.rs` → [],
    /// `a.rs` / `a/mod.rs` → [a], `a/b.rs` → [a, b].
    fn module_of(src: &Path, file: &Path) -> Option<ModPath> {
        let rel = file.strip_prefix(src).ok()?;
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let last = parts.pop()?;
        let stem = last.strip_suffix(".rs")?;
        if stem != "mod" && !(parts.is_empty() && (stem == "lib" || stem == "main")) {
            parts.push(stem.to_owned());
        }
        Some(parts)
    }

    fn ident_at(text: &str) -> Option<&str> {
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        (end > 0).then(|| &text[..end])
    }

    /// The module paths a file names: `crate::a::b` gives
    /// [a, b] from the root; `super::x` is taken from the parent; a brace
    /// group (`crate::{a, b::c}`) gives each first segment.
    fn references(text: &str, me: &ModPath) -> Vec<ModPath> {
        let mut out = Vec::new();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (anchor, mut rest) in code
            .match_indices("crate::")
            .map(|(i, m)| ("crate", &code[i + m.len()..]))
            .chain(
                code.match_indices("super::")
                    .map(|(i, m)| ("super", &code[i + m.len()..])),
            )
        {
            let mut base: ModPath = if anchor == "crate" {
                Vec::new()
            } else {
                // `super` of module [a, b] (`a/b.rs`) is [a]; of [a]
                // (`a.rs` or `a/mod.rs`) it is the crate root.
                let mut p = me.clone();
                p.pop();
                p
            };
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let segs: Vec<String> = item
                        .trim()
                        .split("::")
                        .map_while(ident_at)
                        .map(str::to_owned)
                        .collect();
                    if !segs.is_empty() {
                        out.push(base.iter().cloned().chain(segs).collect());
                    }
                }
                continue;
            }
            let mut path = base;
            let mut r = rest;
            while let Some(id) = ident_at(r) {
                path.push(id.to_owned());
                match r[id.len()..].strip_prefix("::") {
                    Some(next) => r = next,
                    None => break,
                }
            }
            out.push(path);
        }
        out
    }

    /// The longest prefix of `path` that is a module of the crate.
    fn resolve(path: &ModPath, modules: &BTreeSet<ModPath>) -> Option<ModPath> {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p))
    }

    /// Sibling edges (parent, from, to) of one crate.
    fn sibling_edges(src: &Path) -> BTreeSet<(ModPath, String, String)> {
        let mut files = Vec::new();
        crate::tidy::tests::rust_files(src, &mut files);
        let files: Vec<(PathBuf, ModPath)> = files
            .into_iter()
            .filter(|f| !crate::tidy::tests::is_test_file(f))
            .filter_map(|f| module_of(src, &f).map(|m| (f, m)))
            .collect();
        let modules: BTreeSet<ModPath> = files.iter().map(|(_, m)| m.clone()).collect();
        let mut edges = BTreeSet::new();
        for (file, me) in &files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for r in references(&text, me) {
                let Some(target) = resolve(&r, &modules) else {
                    continue;
                };
                let common = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
                // One is an ancestor of the other: nesting, not a sibling edge.
                if common == me.len() || common == target.len() {
                    continue;
                }
                edges.insert((
                    me[..common].to_vec(),
                    me[common].clone(),
                    target[common].clone(),
                ));
            }
        }
        edges
    }

    /// Cycles among the siblings of each parent (strongly connected
    /// components of more than one module).
    fn cycles(edges: &BTreeSet<(ModPath, String, String)>) -> Vec<String> {
        let mut by_parent: BTreeMap<&ModPath, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
        for (parent, from, to) in edges {
            by_parent
                .entry(parent)
                .or_default()
                .entry(from)
                .or_default()
                .push(to);
        }
        let mut found = Vec::new();
        for (parent, graph) in by_parent {
            let nodes: BTreeSet<&str> = graph
                .iter()
                .flat_map(|(f, ts)| std::iter::once(*f).chain(ts.iter().copied()))
                .collect();
            let reaches = |from: &str, to: &str| {
                let mut seen = BTreeSet::new();
                let mut stack = vec![from];
                while let Some(n) = stack.pop() {
                    for &next in graph.get(n).into_iter().flatten() {
                        if next == to {
                            return true;
                        }
                        if seen.insert(next) {
                            stack.push(next);
                        }
                    }
                }
                false
            };
            let mut done = BTreeSet::new();
            for &n in &nodes {
                if done.contains(n) {
                    continue;
                }
                let scc: Vec<&str> = nodes
                    .iter()
                    .copied()
                    .filter(|&m| m == n || (reaches(n, m) && reaches(m, n)))
                    .collect();
                done.extend(scc.iter().copied());
                if scc.len() > 1 {
                    let at = if parent.is_empty() {
                        "crate root".to_owned()
                    } else {
                        parent.join("::")
                    };
                    found.push(format!("{at}: {}", scc.join(" <-> ")));
                }
            }
        }
        found
    }

    #[test]
    fn references_are_read_from_paths_and_groups() {
        let me = vec!["a".to_owned(), "b".to_owned()];
        let refs = references(
            "use super::c::X;\nuse crate::{d, e::F};\nlet x = crate::g::h();\n// crate::ignored",
            &me,
        );
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(refs.contains(&s(&["a", "c", "X"])));
        assert!(refs.contains(&s(&["d"])));
        assert!(refs.contains(&s(&["e", "F"])));
        assert!(refs.contains(&s(&["g", "h"])));
        assert!(!refs.iter().any(|r| r.contains(&"ignored".to_owned())));
    }

    #[test]
    fn no_two_modules_of_a_crate_import_each_other_in_a_loop() {
        let root = project_root();
        let mut found = Vec::new();
        let crates = std::fs::read_dir(root.join("crates")).expect("crates/ is readable");
        let mut dirs: Vec<PathBuf> = crates.flatten().map(|c| c.path().join("src")).collect();
        dirs.push(root.join("xtask/src"));
        dirs.sort();
        for src in dirs {
            let name = src
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for c in cycles(&sibling_edges(&src)) {
                found.push(format!("{name}: {c}"));
            }
        }
        assert!(
            found.is_empty(),
            "modules that import each other in a loop (move what they share into one of them, or a module of its own): {found:#?}"
        );
    }
}
