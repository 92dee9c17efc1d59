//! Compact JSON text, byte for byte as serde_json (and orjson) write it, for the writers that
//! run once per record: most texts need no escape, and serde_json's escape scan costs several
//! instructions a byte (on a record line with findings, a third of the line's work).
#![forbid(unsafe_code)]

use serde_json::Value;

/// Whether any byte of `bytes` must be escaped in a JSON string: `"`, `\` or a control
/// character below 0x20. Every byte is looked at, without an early exit, so that the loop is
/// vectorized.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// `s` as a JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing to a Vec cannot fail, nor can a str's serialization.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// The members of a JSON object being written into `out`, after its first: `,"name":value` each,
/// values as serde_json (and orjson) write them.
pub struct Members<'o>(pub &'o mut Vec<u8>);

impl Members<'_> {
    /// `,"name":`, the value to follow.
    #[inline]
    pub fn key(&mut self, name: &str) {
        self.0.extend_from_slice(b",\"");
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    #[inline]
    pub fn text(&mut self, name: &str, value: &str) {
        self.key(name);
        push_str(self.0, value);
    }

    #[inline]
    pub fn int(&mut self, name: &str, value: u64) {
        self.key(name);
        self.0
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// serde_json's shortest text, null where not finite (as `py::line` writes a float).
    #[inline]
    pub fn float(&mut self, name: &str, value: f64) {
        self.key(name);
        // Writing to a Vec cannot fail, nor can a float's serialization.
        let _ = serde_json::to_writer(&mut *self.0, &value);
    }
}

/// How a JSON text is spelled: serde_json's compact text (the JSON-lines records, `SERDE`), or
/// another writer's separators, key order and floats (`crate::pyjson`: Python's `json.dumps`).
/// Strings are escaped alike in every spelling.
#[derive(Clone, Copy)]
pub struct Spelling {
    pub sort_keys: bool,
    pub item_separator: &'static [u8],
    pub key_separator: &'static [u8],
    /// A finite float's text.
    pub float: fn(&mut Vec<u8>, f64),
}

/// serde_json's compact text.
pub const SERDE: Spelling = Spelling {
    sort_keys: false,
    item_separator: b",",
    key_separator: b":",
    float: serde_float,
};

fn serde_float(out: &mut Vec<u8>, x: f64) {
    // Writing to a Vec cannot fail, nor can a float's serialization.
    let _ = serde_json::to_writer(&mut *out, &x);
}

impl Spelling {
    /// `n` in this spelling: integers as their digits, floats by `float`.
    pub fn number(self, out: &mut Vec<u8>, n: &serde_json::Number) {
        if let Some(i) = n.as_i64() {
            out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
        } else if let Some(u) = n.as_u64() {
            out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
        } else {
            // A Number holds no NaN or infinity.
            (self.float)(out, n.as_f64().unwrap_or(0.0));
        }
    }
}

/// `value` in `spelling`.
pub fn push_value_as(out: &mut Vec<u8>, value: &Value, spelling: Spelling) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => spelling.number(out, n),
        Value::String(s) => push_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(spelling.item_separator);
                }
                push_value_as(out, item, spelling);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut pairs: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            push_object_as(out, &mut pairs, spelling);
        }
    }
}

/// `pairs` as a JSON object in `spelling` (sorted first if it sorts keys: by code point, which is
/// UTF-8 byte order, as Python compares texts).
pub fn push_object_as(out: &mut Vec<u8>, pairs: &mut [(&str, &Value)], spelling: Spelling) {
    if spelling.sort_keys {
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    out.push(b'{');
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(spelling.item_separator);
        }
        push_str(out, key);
        out.extend_from_slice(spelling.key_separator);
        push_value_as(out, value, spelling);
    }
    out.push(b'}');
}

/// `items` as a compact JSON array, each written by `push`.
pub fn push_array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut push: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_is_serde_jsons() {
        let values = [
            json!(null),
            json!({}),
            json!([]),
            json!({"b": 1, "a": [true, false, null, -0.0, 1e300, 0.1, -7, 18446744073709551615u64,
                   -9223372036854775808i64, 3.0, 1e-7, "t\"x\u{1}"], "k\n": {"z": {"y": []}}}),
            json!({"shape": {"n": 3, "sizes": [540, -510], "iat_ms": [311.37, 244.428]}, "sni": "a.example"}),
        ];
        for value in &values {
            let mut ours = Vec::new();
            push_value_as(&mut ours, value, SERDE);
            assert_eq!(ours, serde_json::to_vec(value).unwrap(), "{value}");
        }
    }

    #[test]
    fn a_string_is_serde_jsons() {
        let mut texts: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "quote \" and backslash \\".into(),
            "tab\tnewline\n\u{0}\u{1f}".into(),
            "del \u{7f} and C1 \u{85}, non-ASCII \u{e9}\u{2028}\u{1f600}".into(),
        ];
        // Every single character of the first 0x100, alone and inside a longer text.
        for c in (0u32..0x100).filter_map(char::from_u32) {
            texts.push(c.to_string());
            texts.push(format!("{}{c}{}", "a".repeat(40), "b".repeat(3)));
        }
        for text in &texts {
            let mut ours = Vec::new();
            push_str(&mut ours, text);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }
}
