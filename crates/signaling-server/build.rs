//! Embeds the built web client (`web/dist`, from `cargo xtask web`) into the
//! server binary; without it the server serves a page saying how to build it.
//! This script never runs npm: a machine without node still builds the workspace.
//!
//! Text files (HTML, JS, CSS, JSON, SVG) are also embedded gzip- and
//! brotli-compressed, made here once, so the server picks one per request by
//! `Accept-Encoding` without spending CPU on compression at run time.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let web = manifest.join("../../web");
    let dist = web.join("dist");
    // Rebuilt assets change files under dist/ (watched recursively). The first
    // build after a checkout without dist/ is picked up because `cargo xtask web`
    // touches this build script; watching a missing path would rerun it on every build.
    println!("cargo:rerun-if-changed=build.rs");
    if dist.join("index.html").is_file() {
        println!("cargo:rerun-if-changed={}", dist.display());
    }

    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
    }
    files.sort();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let mut out = String::from(
        "/// Embedded web client files: (URL path, content type, bytes, gzip, brotli).\n\
         pub(crate) static ASSETS: &[Asset] = &[\n",
    );
    for (i, (url, path)) in files.iter().enumerate() {
        let ct = content_type(url);
        let (gz, br) = match std::fs::read(path) {
            Ok(bytes) if compressible(ct) => (
                compressed(&out_dir, &format!("{i}.gz"), gzip(&bytes), bytes.len()),
                compressed(&out_dir, &format!("{i}.br"), brotli(&bytes), bytes.len()),
            ),
            _ => ("None".to_owned(), "None".to_owned()),
        };
        let _ = writeln!(
            out,
            "    ({url:?}, {ct:?}, include_bytes!({:?}), {gz}, {br}),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    if let Err(e) = std::fs::write(out_dir.join("web_assets.rs"), out) {
        println!("cargo:warning=cannot write web_assets.rs: {e}");
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
            let abs = path.canonicalize().unwrap_or(path);
            files.push((url, abs));
        }
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg")
}

/// `Some(include_bytes!(…))` of `data` written to `out_dir/name`, or `None`
/// when compression does not pay (or failed).
fn compressed(out_dir: &Path, name: &str, data: Option<Vec<u8>>, plain: usize) -> String {
    let Some(data) = data.filter(|d| d.len() < plain) else {
        return "None".to_owned();
    };
    let path = out_dir.join(name);
    if let Err(e) = std::fs::write(&path, &data) {
        println!("cargo:warning=cannot write {}: {e}", path.display());
        return "None".to_owned();
    }
    format!("Some(include_bytes!({:?}))", path.display().to_string())
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

fn brotli(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    {
        // Quality 9: close to 11 in size at a fraction of the time in a
        // debug-built build script.
        let mut enc = brotli::CompressorWriter::new(&mut out, 4096, 9, 22);
        enc.write_all(data).ok()?;
    }
    Some(out)
}

fn content_type(url: &str) -> &'static str {
    match url.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "webmanifest" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
