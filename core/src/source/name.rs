//! A capture's name as shown in records and messages: a file name is text someone else chose.
#![forbid(unsafe_code)]

/// Longest name kept, in characters (the Python reader's `clean_text(..., 255)`).
const NAME_LIMIT: usize = 255;

/// The base name of `path` (after the last '/', as `os.path.basename`), cleaned; "-" for stdin.
pub(crate) fn display_name(path: &str) -> String {
    if path == "-" {
        return "-".to_owned();
    }
    let base = path.rsplit('/').next().unwrap_or(path);
    // The UTF-8 bytes of a str clean exactly as the str would (crate::text).
    crate::text::clean_text(base.as_bytes(), NAME_LIMIT)
}
