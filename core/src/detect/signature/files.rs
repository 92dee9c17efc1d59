//! Signature files and directories: read, loaded, checked (every error of every file).
use std::path::{Path, PathBuf};

use super::build::{load_text, parse, Compile};
use super::{Signature, MAX_FILE};

/// The built-in set, then each extra directory (or file) in order; a later file with the same
/// `protocol` replaces an earlier one. Sorted by protocol. Every error of every file on failure.
pub fn load_dirs(builtin: &Path, extra: &[PathBuf]) -> Result<Vec<Signature>, Vec<String>> {
    let mut errors = Vec::new();
    let mut sigs = Vec::new();
    load_dir(builtin, "builtin", &mut sigs, &mut errors);
    load_extra(extra, sigs, errors)
}

/// The set embedded in the core at build time (detect/builtin.rs), its patterns compiled at
/// their first use (`Compile::Deferred`), then the extra directories.
pub fn load_builtin_and(extra: &[PathBuf]) -> Result<Vec<Signature>, Vec<String>> {
    load_texts_with(crate::detect::builtin::BUILTIN, extra, Compile::Deferred)
}

/// `builtin`: (file name, TOML text) pairs; their source shows as `signatures/<name>`.
pub fn load_texts_and(
    builtin: &[(&str, &str)],
    extra: &[PathBuf],
) -> Result<Vec<Signature>, Vec<String>> {
    load_texts_with(builtin, extra, Compile::Now)
}

fn load_texts_with(
    builtin: &[(&str, &str)],
    extra: &[PathBuf],
    compile: Compile,
) -> Result<Vec<Signature>, Vec<String>> {
    let mut errors = Vec::new();
    let mut sigs = Vec::new();
    for (name, text) in builtin {
        match load_text(text, &format!("signatures/{name}"), "builtin", compile) {
            Ok(s) => sigs.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    load_extra(extra, sigs, errors)
}

fn load_extra(
    extra: &[PathBuf],
    mut sigs: Vec<Signature>,
    mut errors: Vec<String>,
) -> Result<Vec<Signature>, Vec<String>> {
    for d in extra {
        if d.is_dir() || d.is_file() {
            load_dir(d, "user", &mut sigs, &mut errors);
        } else {
            errors.push(format!("{}: no such signature directory", d.display()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut by_protocol: std::collections::BTreeMap<String, Signature> = Default::default();
    for s in sigs {
        by_protocol.insert(s.protocol.clone(), s);
    }
    Ok(by_protocol.into_values().collect())
}

fn load_dir(d: &Path, origin: &str, sigs: &mut Vec<Signature>, errors: &mut Vec<String>) {
    let files = if d.is_file() {
        vec![d.to_path_buf()]
    } else {
        match toml_files(d) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                return;
            }
        }
    };
    for f in files {
        match load_file(&f, origin) {
            Ok(sig) => sigs.push(sig),
            Err(mut e) => errors.append(&mut e),
        }
    }
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Validate files as `portwatch signatures check` does: every error of every file, each one line
/// `file:line: field: problem`. Costly patterns are reported as `...: regex: warning: expensive...`
/// (they load; the caller decides).
pub fn check_files(paths: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        match read(p) {
            Ok(text) => {
                let (res, mut warnings) = parse(&text, &p.display().to_string(), "user");
                if let Err(mut e) = res {
                    out.append(&mut e);
                }
                out.append(&mut warnings);
            }
            Err(e) => out.push(e),
        }
    }
    out
}

pub fn load_file(path: &Path, origin: &str) -> Result<Signature, Vec<String>> {
    let text = read(path).map_err(|e| vec![e])?;
    load_text(&text, &path.display().to_string(), origin, Compile::Now)
}

fn read(path: &Path) -> Result<String, String> {
    let too_big = std::fs::metadata(path)
        .map(|m| m.len() > MAX_FILE)
        .unwrap_or(false);
    if too_big {
        return Err(format!(
            "{}: cannot read: larger than {MAX_FILE} bytes",
            path.display()
        ));
    }
    std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))
}
