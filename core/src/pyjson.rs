//! The text Python's `json.dumps(value, ensure_ascii=False, ...)` makes of a value, written here
//! from the core's map instead of converting the map into Python objects and encoding those:
//! sorted with the default separators for the CSV writer's and the Parquet writer's `meta`
//! column (`sort_keys=True`), compact for SQLite's (`separators=(",", ":")`, in the map's order).
//!
//! Python's spelling, not serde_json's: floats as `repr` (`1e-05`, `2.0`), and only `"`, `\`
//! and the control characters escaped (`\n`, `\u001b`), everything else as it is; sorted keys
//! by code point (UTF-8 byte order) at every level.
//!
//! The writer recurses as deep as the value nests: a map from Python is at most 64 levels deep
//! (`tunnel::py::from_py`), and the probes' facts are a few levels by construction.
#![forbid(unsafe_code)]

use crate::meta::{Meta, Value};
use crate::tunnel::pyfmt;

/// How `json.dumps` was asked to write.
#[derive(Clone, Copy)]
struct Style {
    sort_keys: bool,
    item_separator: &'static str,
    key_separator: &'static str,
}

const SORTED: Style = Style {
    sort_keys: true,
    item_separator: ", ",
    key_separator: ": ",
};

const COMPACT: Style = Style {
    sort_keys: false,
    item_separator: ",",
    key_separator: ":",
};

/// `json.dumps(meta, ensure_ascii=False, sort_keys=True)`.
pub fn dumps_sorted(meta: &Meta) -> String {
    dumps(meta, SORTED)
}

/// `json.dumps(meta, ensure_ascii=False, separators=(",", ":"))`.
pub fn dumps_compact(meta: &Meta) -> String {
    dumps(meta, COMPACT)
}

/// `json.dumps(value, ensure_ascii=False, sort_keys=True)` of one value (a map among a
/// record's facts: the CSV writer's flat columns).
pub fn dumps_value_sorted(v: &Value) -> String {
    let mut out = String::new();
    value(&mut out, v, SORTED);
    out
}

fn dumps(meta: &Meta, style: Style) -> String {
    let mut out = String::new();
    let mut items: Vec<(&str, &Value)> = meta.iter().collect();
    object(&mut out, &mut items, style);
    out
}

fn object(out: &mut String, items: &mut [(&str, &Value)], style: Style) {
    if style.sort_keys {
        items.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    out.push('{');
    for (i, (k, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(style.item_separator);
        }
        string(out, k);
        out.push_str(style.key_separator);
        value(out, v, style);
    }
    out.push('}');
}

fn value(out: &mut String, v: &Value, style: Style) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(itoa::Buffer::new().format(i));
            } else if let Some(u) = n.as_u64() {
                out.push_str(itoa::Buffer::new().format(u));
            } else {
                // serde_json holds no NaN or infinity: what Python would write for those
                // ("NaN", "Infinity") cannot come up.
                out.push_str(&pyfmt::repr(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(style.item_separator);
                }
                value(out, item, style);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut items: Vec<(&str, &Value)> = map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            object(out, &mut items, style);
        }
    }
}

/// json's `py_encode_basestring` escapes what serde_json escapes, the same way: `"`, `\\`,
/// `\b \f \n \r \t`, the other control characters as `\u00xx` (lower-case hex), nothing else.
fn string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        // Serializing a str cannot fail; were it to, an empty text keeps the JSON whole.
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::json;

    #[test]
    fn pythons_text_for_each_kind_of_value() {
        let meta: Meta = [
            ("z", json!(1)),
            ("a", json!({"y": [1.5, 2.0, null, true], "b": "x"})),
            ("m", json!(0.00001)),
            ("n", json!(-12345678901234_i64)),
            ("u", json!(u64::MAX)),
            ("t", json!("é \"q\" \\ \n\r\t\u{8}\u{c}\u{1b}\u{7f} ☃")),
            ("e", json!([])),
            ("o", json!({})),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string().into(), v))
        .collect();
        // json.dumps({...the same...}, ensure_ascii=False, sort_keys=True) in Python 3.11.
        let want = r#"{"a": {"b": "x", "y": [1.5, 2.0, null, true]}, "e": [], "m": 1e-05, "n": -12345678901234, "o": {}, "t": "é \"q\" \\ \n\r\t\b\f\u001b ☃", "u": 18446744073709551615, "z": 1}"#;
        let got = dumps_sorted(&meta);
        assert_eq!(got.replace('\u{7f}', ""), want);
        assert!(got.contains('\u{7f}'), "DEL is not escaped");
    }

    #[test]
    fn compact_keeps_the_maps_order() {
        let meta: Meta = [
            ("z", json!({"y": [1.5, 2.0], "b": "x"})),
            ("a", json!(0.00001)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string().into(), v))
        .collect();
        // json.dumps({...the same...}, ensure_ascii=False, separators=(",", ":")) in Python 3.11.
        assert_eq!(
            dumps_compact(&meta),
            r#"{"z":{"y":[1.5,2.0],"b":"x"},"a":1e-05}"#
        );
    }

    #[test]
    fn keys_sort_by_code_point() {
        let meta: Meta = [
            ("é", json!(1)),
            ("z", json!(2)),
            ("Z", json!(3)),
            ("_", json!(4)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string().into(), v))
        .collect();
        assert_eq!(dumps_sorted(&meta), r#"{"Z": 3, "_": 4, "z": 2, "é": 1}"#);
    }
}
