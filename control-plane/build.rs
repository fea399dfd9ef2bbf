//! Embeds the admin console's built assets (`ui/dist`, committed; `./dev ui` rebuilds them) in the
//! binary: it writes `OUT_DIR/console_assets.rs`, a list of `(path, include_bytes!(...))` that
//! `src/console.rs` serves under `/ui/`. No npm at `cargo build` time.

use std::fs;
use std::path::{Path, PathBuf};

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>();
            out.push((rel.join("/"), path.canonicalize().unwrap_or(path.clone())));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let dist = manifest.join("ui").join("dist");
    // A directory: cargo reruns this when any file under it changes, is added or is removed.
    println!("cargo:rerun-if-changed=ui/dist");
    let mut files = Vec::new();
    walk(&dist, &dist, &mut files);
    files.sort();
    let mut src = String::from("&[\n");
    for (rel, abs) in files {
        src.push_str(&format!("    ({rel:?}, include_bytes!({:?}) as &[u8]),\n", abs.to_string_lossy()));
    }
    src.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("console_assets.rs");
    if let Err(e) = fs::write(&out, src) {
        panic!("cannot write {}: {e}", out.display());
    }
}
