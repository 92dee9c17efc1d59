//! A capture's name as shown in records and messages: a file name is text someone else chose.
#![forbid(unsafe_code)]

/// Longest name kept, in characters (the Python reader's `clean_text(..., 255)`).
const NAME_LIMIT: usize = 255;

fn unsafe_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// portwatch.sanitize.clean_text on a `str`: escape control and bidi characters, cut to `limit`
/// characters with an ellipsis.
pub(crate) fn clean_text(value: &str, limit: usize) -> String {
    let keep = limit * 4 + 4;
    let mut truncated = false;
    let mut text = String::new();
    for (i, c) in value.chars().enumerate() {
        if i >= keep {
            truncated = true;
            break;
        }
        if unsafe_char(c) {
            let code = u32::from(c);
            if code < 0x100 {
                text.push_str(&format!("\\x{code:02x}"));
            } else {
                text.push_str(&format!("\\u{code:04x}"));
            }
        } else {
            text.push(c);
        }
    }
    if truncated || text.chars().count() > limit {
        let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
        cut.push('\u{2026}');
        return cut;
    }
    text
}

/// The base name of `path` (after the last '/', as `os.path.basename`), cleaned; "-" for stdin.
pub(crate) fn display_name(path: &str) -> String {
    if path == "-" {
        return "-".to_owned();
    }
    let base = path.rsplit('/').next().unwrap_or(path);
    clean_text(base, NAME_LIMIT)
}
