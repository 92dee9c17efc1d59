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

use crate::compact_json::{push_value_as, Spelling};
use crate::meta::{FlowMeta, Value};
use crate::tunnel::pyfmt;

/// `json.dumps(..., ensure_ascii=False, sort_keys=True)`.
const SORTED: Spelling = Spelling {
    sort_keys: true,
    item_separator: b", ",
    key_separator: b": ",
    float: python_float,
};

/// `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`.
const COMPACT: Spelling = Spelling {
    sort_keys: false,
    item_separator: b",",
    key_separator: b":",
    float: python_float,
};

/// A float as `json` writes one: its `repr` (a map's values hold no NaN or infinity, which
/// Python would write as `NaN` and `Infinity`).
fn python_float(out: &mut Vec<u8>, x: f64) {
    pyfmt::push_repr(out, x);
}

/// `json.dumps(meta, ensure_ascii=False, sort_keys=True)`.
pub fn dumps_sorted(meta: &FlowMeta) -> String {
    text(|out| meta.push_json_as(out, SORTED))
}

/// `json.dumps(meta, ensure_ascii=False, separators=(",", ":"))`.
pub fn dumps_compact(meta: &FlowMeta) -> String {
    text(|out| meta.push_json_as(out, COMPACT))
}

/// `json.dumps(value, ensure_ascii=False, sort_keys=True)` of one value (a map among a
/// record's facts: the CSV writer's flat columns).
pub fn dumps_value_sorted(v: &Value) -> String {
    text(|out| push_value_as(out, v, SORTED))
}

fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    write(&mut out);
    // Every piece written is UTF-8 (texts from `str`s, the rest ASCII).
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{json, Meta};

    fn meta_of(pairs: Vec<(&str, Value)>) -> Meta {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string().into(), v))
            .collect()
    }

    /// `pairs` as the three kinds of map a record carries: live, frozen, and frozen with its
    /// last entry added after the freezing (the tail).
    fn every_kind(pairs: Vec<(&str, Value)>) -> [FlowMeta; 3] {
        let live = FlowMeta::from(meta_of(pairs.clone()));
        let mut frozen = FlowMeta::from(meta_of(pairs.clone()));
        frozen.freeze();
        let mut head = pairs;
        let (last_key, last) = head.pop().expect("one entry at least");
        let mut tailed = FlowMeta::from(meta_of(head));
        tailed.freeze();
        tailed.insert(last_key.to_string().into(), last);
        assert!(frozen.is_frozen() && tailed.is_frozen());
        [live, frozen, tailed]
    }

    #[test]
    fn pythons_text_for_each_kind_of_value() {
        let pairs = vec![
            ("z", json!(1)),
            ("a", json!({"y": [1.5, 2.0, null, true], "b": "x"})),
            ("m", json!(0.00001)),
            ("n", json!(-12345678901234_i64)),
            ("u", json!(u64::MAX)),
            ("t", json!("é \"q\" \\ \n\r\t\u{8}\u{c}\u{1b}\u{7f} ☃")),
            ("e", json!([])),
            ("o", json!({})),
            ("h", json!({"k": {"z": 1e16, "b": [{"d": 2, "c": 1}]}})),
        ];
        // json.dumps({...the same...}, ensure_ascii=False, sort_keys=True) in Python 3.11.
        let want = r#"{"a": {"b": "x", "y": [1.5, 2.0, null, true]}, "e": [], "h": {"k": {"b": [{"c": 1, "d": 2}], "z": 1e+16}}, "m": 1e-05, "n": -12345678901234, "o": {}, "t": "é \"q\" \\ \n\r\t\b\f\u001b ☃", "u": 18446744073709551615, "z": 1}"#;
        for meta in every_kind(pairs) {
            let got = dumps_sorted(&meta);
            assert_eq!(
                got.replace('\u{7f}', ""),
                want,
                "frozen: {}",
                meta.is_frozen()
            );
            assert!(got.contains('\u{7f}'), "DEL is not escaped");
        }
    }

    #[test]
    fn compact_keeps_the_maps_order() {
        let pairs = vec![
            ("z", json!({"y": [1.5, 2.0], "b": "x"})),
            ("q", json!([0.1, -0.0, 1e22, 5e-324])),
            ("a", json!(0.00001)),
        ];
        // json.dumps({...the same...}, ensure_ascii=False, separators=(",", ":")) in Python 3.11.
        for meta in every_kind(pairs) {
            assert_eq!(
                dumps_compact(&meta),
                r#"{"z":{"y":[1.5,2.0],"b":"x"},"q":[0.1,-0.0,1e+22,5e-324],"a":1e-05}"#,
                "frozen: {}",
                meta.is_frozen()
            );
        }
    }

    #[test]
    fn keys_sort_by_code_point() {
        let pairs = vec![
            ("é", json!(1)),
            ("z", json!(2)),
            ("Z", json!({"é": 0, "e": 1})),
            ("_", json!(4)),
        ];
        for meta in every_kind(pairs) {
            assert_eq!(
                dumps_sorted(&meta),
                r#"{"Z": {"e": 1, "é": 0}, "_": 4, "z": 2, "é": 1}"#
            );
        }
    }

    #[test]
    fn a_value_is_written_alone() {
        assert_eq!(
            dumps_value_sorted(&json!({"b": [1.0, {"y": 1, "x": 1e-7}], "a": null})),
            r#"{"a": null, "b": [1.0, {"x": 1e-07, "y": 1}]}"#
        );
    }
}
