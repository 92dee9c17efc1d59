//! Facts a probe or the engine extracts from a flow: an ordered map of JSON-like values, handed
//! to Python as a dict. Insertion order is kept (Python dicts keep it, and outputs show it).
pub use serde_json::{json, Map, Value};

/// A probe's or a flow's metadata: key order is insertion order.
pub type Meta = Map<String, Value>;

/// Insert `key` only if absent (Python's `dict.setdefault`): the first probe to say a fact wins.
pub fn set_default(meta: &mut Meta, key: &str, value: Value) {
    if !meta.contains_key(key) {
        meta.insert(key.to_owned(), value);
    }
}
