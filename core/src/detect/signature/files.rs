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

/// A signature file's text: a regular file of at most `MAX_FILE` bytes. Opened without blocking
/// and checked on the open file, as a size from the path said nothing of what is read: a FIFO
/// among a directory's `*.toml` files waited for a writer forever, and a link to /dev/zero (size
/// 0) was read until memory ran out.
fn read(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let fail = |why: String| format!("{}: cannot read: {why}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(fail(format!("larger than {MAX_FILE} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(fail(format!("larger than {MAX_FILE} bytes")));
    }
    String::from_utf8(bytes).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own under the system's temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("pw-sigfiles-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A FIFO and a link to /dev/zero among a directory's signature files: each is refused as
    /// not a regular file, at once (the FIFO waited for a writer forever, /dev/zero was read until
    /// memory ran out), and the directory's other errors are still reported.
    #[test]
    fn only_regular_files_are_read() {
        let dir = Scratch::new("special");
        let fifo = dir.0.join("fifo.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::os::unix::fs::symlink("/dev/zero", dir.0.join("zero.toml")).unwrap();
        let errors = load_extra(std::slice::from_ref(&dir.0), Vec::new(), Vec::new()).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .all(|e| e.ends_with("cannot read: not a regular file")),
            "{errors:?}"
        );
        assert_eq!(check_files(std::slice::from_ref(&fifo)).len(), 1);
    }

    #[test]
    fn a_file_past_the_size_limit_is_refused() {
        let dir = Scratch::new("big");
        let big = dir.0.join("big.toml");
        let limit = usize::try_from(MAX_FILE).unwrap();
        std::fs::write(&big, "#".repeat(limit + 1)).unwrap();
        let errors = check_files(std::slice::from_ref(&big));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with(&format!("larger than {MAX_FILE} bytes")),
            "{errors:?}"
        );
        std::fs::write(&big, "#".repeat(limit)).unwrap();
        assert!(read(&big).is_ok());
    }
}
