//! Target `signature`: arbitrary text through the signature parser and validator
//! (`detect::signature::parse`, what `load_file` and `check_files` run on a file's text).
//!
//! Input: the file's bytes, read as UTF-8 with U+FFFD for invalid sequences (as Python's
//! `errors="replace"` in fuzz/targets.py). Checked, beyond "no panic":
//! - a failure carries at least one error; every error and warning is one line and names the
//!   file first (`fuzz.toml:...`), as `portwatch signatures check` prints them;
//! - a loaded signature serialises (`to_json`), and parsing is deterministic.
use _core::detect::signature::{parse, Signature};

const PATH: &str = "fuzz.toml";

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (res, warnings) = parse(&text, PATH, "user");
    let lines: Vec<&String> = match &res {
        Ok(sig) => {
            let _ = sig.to_json();
            warnings.iter().collect()
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "failed without an error");
            errors.iter().chain(warnings.iter()).collect()
        }
    };
    for l in lines {
        assert!(!l.contains('\n'), "message of several lines: {l:?}");
        assert!(l.starts_with(PATH), "message not naming the file: {l:?}");
    }
    let (again, warnings_again) = parse(&text, PATH, "user");
    let view = |r: &Result<Signature, Vec<String>>| {
        r.as_ref().map(Signature::to_json).map_err(|e| (*e).clone())
    };
    assert!(
        view(&res) == view(&again) && warnings == warnings_again,
        "parse is not deterministic"
    );
}
