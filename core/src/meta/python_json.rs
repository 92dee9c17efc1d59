//! JSON text read into the core's values exactly as Python's `json.loads` reads it, or refused:
//! `portwatch.read()` parses each record's facts here, then converts them once (`Meta`), where
//! `json.loads` and a walk over its dict took most of a read.
//!
//! serde_json (with `float_roundtrip`: correctly rounded floats, as CPython's) and Python agree
//! on every valid document but for numbers, and on everything serde_json refuses Python either
//! refuses too or reads what the core cannot hold (NaN and Infinity, a lone surrogate, numbers
//! past the float range, nesting past serde_json's 128 levels). The numbers: serde_json reads an
//! integer past 64 bits, and `-0`, as a float, where Python keeps an integer. Such a float is
//! either at least 2^63 in magnitude or a negative zero, so any float of those is refused too,
//! whatever its text: the caller then reads it with Python's own parser, which is never wrong,
//! only slower.
#![forbid(unsafe_code)]

use super::{Map, Value};

/// Deepest value accepted, the top-level object being depth 0: as deep as the core converts a
/// Python value (`tunnel::py`'s limit), so what this refuses the Python path also handles.
pub const MAX_DEPTH: usize = 64;

/// Magnitude from which serde_json may have read an integer literal as a float (2^63).
const INTEGER_AS_FLOAT: f64 = 9_223_372_036_854_775_808.0;

/// The JSON object in `text`, as `json.loads(text)` would give its keys, order and values; None
/// when `text` is not one, or when Python might read it otherwise (the module doc).
pub fn object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) if map.values().all(|v| read_alike(v, 1)) => Some(map),
        _ => None,
    }
}

fn read_alike(value: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            x.abs() < INTEGER_AS_FLOAT && !(x == 0.0 && x.is_sign_negative())
        }
        Value::Array(items) => items.iter().all(|v| read_alike(v, depth + 1)),
        Value::Object(map) => map.values().all(|v| read_alike(v, depth + 1)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(map: &Map<String, Value>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    #[test]
    fn an_object_keeps_its_order_and_a_repeated_key_its_first_place_and_last_value() {
        let map = object(r#"{"b": 1, "a": [true, null, "x"], "b": 2.5}"#).unwrap();
        assert_eq!(keys(&map), ["b", "a"]);
        assert_eq!(map["b"], 2.5);
        assert_eq!(map["a"], serde_json::json!([true, null, "x"]));
    }

    #[test]
    fn integers_stay_integers_within_64_bits() {
        let map = object(r#"{"min": -9223372036854775808, "max": 18446744073709551615}"#).unwrap();
        assert_eq!(map["min"].as_i64(), Some(i64::MIN));
        assert_eq!(map["max"].as_u64(), Some(u64::MAX));
    }

    #[test]
    fn what_python_reads_otherwise_is_refused() {
        for text in [
            r#"{"n": 18446744073709551616}"#, // an int past 64 bits: a float in serde_json
            r#"{"n": -9223372036854775809}"#, // the same below i64
            r#"{"n": -0}"#,                   // Python: the integer 0
            r#"{"n": [1e19]}"#,               // a float that may have been an integer
            r#"{"n": NaN}"#,                  // Python reads NaN and Infinity; JSON has none
            r#"{"n": 1e400}"#,                // Python: inf
            r#"{"s": "\ud800"}"#,             // a lone surrogate: Python keeps it
            r#"[1, 2]"#,                      // not an object
            r#"{"a": 1} x"#,                  // trailing text
        ] {
            assert!(object(text).is_none(), "{text}");
        }
        assert_eq!(object(r#"{"n": -0.5, "z": 0.0}"#).unwrap()["z"], 0.0);
    }

    #[test]
    fn floats_are_correctly_rounded() {
        // Halfway and near-halfway decimal texts where a fast, inexact parse goes wrong.
        for text in [
            "2.2250738585072011e-308",
            "0.1",
            "5e-324",
            "4.9406564584124654e-324",
            "9007199254740993.0",
            "9.2233720368547748e18",
        ] {
            let map = object(&format!(r#"{{"x": {text}}}"#)).unwrap();
            assert_eq!(map["x"].as_f64(), text.parse::<f64>().ok(), "{text}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested =
            |levels: usize| format!("{{\"a\": {}1{}}}", "[".repeat(levels), "]".repeat(levels));
        assert!(object(&nested(MAX_DEPTH - 1)).is_some());
        assert!(object(&nested(MAX_DEPTH)).is_none());
        assert!(object(&nested(10_000)).is_none());
    }
}
