//! Target `meta`: a record's facts as `portwatch.read()` takes them from a JSON line
//! (`meta::python_json::object`, the text being the file's), then kept as a flow keeps its facts
//! (`FlowMeta::freeze`, later facts on a tail, frozen again) and written out from the buffer.
//!
//! Input: JSON text (invalid UTF-8 replaced, as Python's reader would refuse it anyway). Checked,
//! beyond "no panic", for an object the parser accepts:
//! - nothing deeper than `python_json::MAX_DEPTH`, and no float Python would read as an integer
//!   (2^63 or more in magnitude, or a negative zero): such a text must go to `json.loads`;
//! - the core's JSON of the map (`compact_json`, as the record writers use it) is serde_json's own
//!   text of it, byte for byte;
//! - frozen whole, or half frozen with the other half added as a tail and frozen again, the map
//!   decodes to the same keys, order and number kinds, each key's value reads back alone, and its
//!   JSON written straight from the buffer is the map's, in serde_json's spelling and in a
//!   sorted one.
use _core::compact_json::{push_object_as, Spelling, SERDE};
use _core::meta::python_json::{self, MAX_DEPTH};
use _core::meta::{FlowMeta, Key, Map, Meta, Value};

/// Another writer's spelling (sorted keys, other separators and floats), as `crate::pyjson`'s.
const SORTED: Spelling = Spelling {
    sort_keys: true,
    item_separator: b", ",
    key_separator: b": ",
    float: |out, x| out.extend_from_slice(format!("<{x:e}>").as_bytes()),
};

/// Deepest nesting of `value`, itself at `depth`.
fn depth_of(value: &Value, depth: usize) -> usize {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| depth_of(v, depth + 1))
            .max()
            .unwrap_or(depth),
        Value::Object(map) => map
            .values()
            .map(|v| depth_of(v, depth + 1))
            .max()
            .unwrap_or(depth),
        _ => depth,
    }
}

/// Whether every float in `value` is one Python reads as a float too.
fn floats_read_alike(value: &Value) -> bool {
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            x.is_finite()
                && x.abs() < 9_223_372_036_854_775_808.0
                && !(x == 0.0 && x.is_sign_negative())
        }
        Value::Array(items) => items.iter().all(floats_read_alike),
        Value::Object(map) => map.values().all(floats_read_alike),
        _ => true,
    }
}

fn json_of(meta: &FlowMeta, spelling: Spelling) -> Vec<u8> {
    let mut out = Vec::new();
    meta.push_json_as(&mut out, spelling);
    out
}

fn sorted_json(meta: &Meta) -> Vec<u8> {
    let mut out = Vec::new();
    push_object_as(&mut out, &mut meta.iter().collect::<Vec<_>>(), SORTED);
    out
}

/// `kept` holds the facts of `want` (as `Meta`), whatever its state, read every way a record's
/// writers and the policy read them.
fn check_same(kept: &FlowMeta, want: &Meta, serde_text: &[u8], sorted_text: &[u8], what: &str) {
    let back = kept.to_meta();
    assert!(back == *want, "{what}: decodes to another map");
    assert!(
        back.keys().eq(want.keys()),
        "{what}: decodes to another key order"
    );
    // Number kinds (an integer stays one, a float a float) show in the text.
    assert_eq!(
        serde_json::to_vec(&back).unwrap(),
        serde_text,
        "{what}: decoded map's text"
    );
    assert_eq!(kept.len(), want.len(), "{what}: length");
    for (key, value) in want.iter() {
        assert!(kept.contains_key(key), "{what}: key {key:?} missing");
        assert!(
            kept.value_of(key).as_deref() == Some(value),
            "{what}: value of {key:?}"
        );
    }
    assert_eq!(json_of(kept, SERDE), serde_text, "{what}: JSON text");
    assert_eq!(
        json_of(kept, SORTED),
        sorted_text,
        "{what}: sorted JSON text"
    );
}

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Some(map) = python_json::object(&text) else {
        return;
    };
    let object = Value::Object(map.clone());
    assert!(
        depth_of(&object, 0) <= MAX_DEPTH,
        "accepted a value nested past MAX_DEPTH"
    );
    assert!(
        floats_read_alike(&object),
        "accepted a float Python reads otherwise"
    );
    let serde_text = serde_json::to_vec(&object).unwrap();
    let want = Meta::from(map.clone());
    let sorted_text = sorted_json(&want);

    let live = FlowMeta::from(want.clone());
    check_same(&live, &want, &serde_text, &sorted_text, "live");

    let mut whole = FlowMeta::from(want.clone());
    whole.freeze();
    check_same(&whole, &want, &serde_text, &sorted_text, "frozen");
    whole.freeze();
    check_same(&whole, &want, &serde_text, &sorted_text, "frozen twice");

    // The first half frozen, the rest come later (a tail), then frozen together.
    let half = map.len() / 2;
    let first: Map<String, Value> = map.clone().into_iter().take(half).collect();
    let mut split = FlowMeta::from(Meta::from(first));
    split.freeze();
    for (key, value) in map.into_iter().skip(half) {
        split.insert(Key::from(key), value);
    }
    check_same(
        &split,
        &want,
        &serde_text,
        &sorted_text,
        "frozen with a tail",
    );
    split.freeze();
    check_same(&split, &want, &serde_text, &sorted_text, "tail frozen");
}
