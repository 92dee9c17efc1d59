//! Facts a probe or the engine extracts from a flow: an ordered map of JSON-like values, handed
//! to Python as a dict. Insertion order is kept (Python dicts keep it, and outputs show it).
//!
//! A flow keeps its facts from the end of its inspection until it is reported, which for most
//! flows of a capture is most of their life; as a map they cost several times their text (a
//! 104-byte slot and an allocation per key, an allocation per string), so a flow's map is
//! `FlowMeta::freeze`d into one compact buffer once it stops growing, and decoded back to the
//! same map (keys, order, value types) when the record is made.
#![forbid(unsafe_code)]

use std::ops::{Deref, DerefMut};
use std::sync::{LazyLock, OnceLock};

pub use serde_json::{json, Map, Number, Value};

/// A probe's or a flow's metadata: key order is insertion order.
pub type Meta = Map<String, Value>;

/// Insert `key` only if absent (Python's `dict.setdefault`): the first probe to say a fact wins.
pub fn set_default(meta: &mut Meta, key: &str, value: Value) {
    if !meta.contains_key(key) {
        meta.insert(key.to_owned(), value);
    }
}

/// Nesting of arrays and objects a frozen map may hold (probes nest two or three deep); a map
/// nested deeper is left as it is rather than frozen.
pub const MAX_FROZEN_DEPTH: usize = 16;

/// A flow's metadata: a map while it grows, a frozen buffer after (`freeze`).
///
/// Reads and writes go through the map (`Deref`/`DerefMut`): a write thaws a frozen map back
/// into a map for good (a control connection noting announcements, the monitor's segments);
/// a read of a frozen map decodes a copy once and keeps it beside the buffer. The hot paths
/// use `contains_key`, which reads the buffer without decoding, and `take`/`to_meta` when the
/// record is made. Small in place (two pointers): it sits in every flow.
#[derive(Debug, Default)]
pub struct FlowMeta {
    /// The map while live (None while empty or frozen).
    live: Option<Box<Meta>>,
    frozen: Option<Box<Frozen>>,
}

#[derive(Debug)]
struct Frozen {
    bytes: Box<[u8]>,
    /// A decoded copy, made by the first read through `Deref`.
    read: OnceLock<Box<Meta>>,
}

/// What an empty `FlowMeta` derefs to.
static EMPTY: LazyLock<Meta> = LazyLock::new(Meta::new);

impl From<Meta> for FlowMeta {
    fn from(map: Meta) -> Self {
        FlowMeta {
            live: Some(Box::new(map)),
            frozen: None,
        }
    }
}

impl FlowMeta {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// The map will not grow for a while: keep it as one buffer. A map that cannot be encoded
    /// (nested deeper than `MAX_FROZEN_DEPTH`) only gives back its spare room.
    pub fn freeze(&mut self) {
        let Some(map) = self.live.as_mut() else {
            return;
        };
        if map.is_empty() {
            self.live = None;
            return;
        }
        let mut out = Vec::with_capacity(encoded_size_hint(map));
        if encode_map(map, &mut out, 0) {
            self.live = None;
            self.frozen = Some(Box::new(Frozen {
                bytes: out.into_boxed_slice(),
                read: OnceLock::new(),
            }));
        } else {
            // As big as it is (it doubles as facts come in).
            let old = std::mem::take(&mut **map);
            let mut exact = Meta::with_capacity(old.len());
            exact.extend(old);
            **map = exact;
        }
    }

    /// Whether `key` is there, without decoding a frozen map.
    pub fn contains_key(&self, key: &str) -> bool {
        match (&self.live, &self.frozen) {
            (Some(map), _) => map.contains_key(key),
            (None, Some(f)) => frozen_has_key(&f.bytes, key),
            (None, None) => false,
        }
    }

    /// The metadata as a map, leaving an empty one behind.
    pub fn take(&mut self) -> Meta {
        if let Some(f) = self.frozen.take() {
            return match f.read.into_inner() {
                Some(map) => *map,
                None => decode(&f.bytes),
            };
        }
        self.live.take().map(|map| *map).unwrap_or_default()
    }

    /// A copy of the metadata as a map.
    pub fn to_meta(&self) -> Meta {
        match (&self.live, &self.frozen) {
            (Some(map), _) => (**map).clone(),
            (None, Some(f)) => match f.read.get() {
                Some(map) => (**map).clone(),
                None => decode(&f.bytes),
            },
            (None, None) => Meta::new(),
        }
    }

    /// Encoded size of a frozen map (0 when live): for tests and measurements.
    pub fn frozen_len(&self) -> usize {
        self.frozen.as_ref().map_or(0, |f| f.bytes.len())
    }
}

impl Deref for FlowMeta {
    type Target = Meta;

    fn deref(&self) -> &Meta {
        match (&self.live, &self.frozen) {
            (Some(map), _) => map,
            (None, Some(f)) => f.read.get_or_init(|| Box::new(decode(&f.bytes))),
            (None, None) => &EMPTY,
        }
    }
}

impl DerefMut for FlowMeta {
    fn deref_mut(&mut self) -> &mut Meta {
        if let Some(f) = self.frozen.take() {
            self.live = Some(
                f.read
                    .into_inner()
                    .unwrap_or_else(|| Box::new(decode(&f.bytes))),
            );
        }
        self.live.get_or_insert_with(Box::default)
    }
}

// ---- encoding ---------------------------------------------------------------------------------
//
// map    := count entry*            entry := text value
// value  := NULL | FALSE | TRUE | UINT varint | INT i64-le | FLOAT f64-le | STR text
//         | ARRAY count value* | OBJECT map
// text   := varint length, UTF-8 bytes
//
// Numbers keep serde_json's kind (unsigned, negative, float), so the map decoded compares
// equal to the one encoded and prints the same.

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const INT: u8 = 4;
const FLOAT: u8 = 5;
const STR: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

fn encoded_size_hint(map: &Meta) -> usize {
    map.iter()
        .map(|(k, v)| {
            k.len()
                + 2
                + match v {
                    Value::String(s) => s.len() + 3,
                    _ => 10,
                }
        })
        .sum::<usize>()
        + 2
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// False when the map nests deeper than `MAX_FROZEN_DEPTH` (`out` is then of no use).
fn encode_map(map: &Meta, out: &mut Vec<u8>, depth: usize) -> bool {
    put_varint(out, map.len() as u64);
    for (k, v) in map {
        put_text(out, k);
        if !encode_value(v, out, depth) {
            return false;
        }
    }
    true
}

fn encode_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> bool {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(UINT);
                put_varint(out, u);
            } else if let Some(i) = n.as_i64() {
                out.push(INT);
                out.extend_from_slice(&i.to_le_bytes());
            } else {
                out.push(FLOAT);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(STR);
            put_text(out, s);
        }
        Value::Array(items) => {
            if depth >= MAX_FROZEN_DEPTH {
                return false;
            }
            out.push(ARRAY);
            put_varint(out, items.len() as u64);
            for item in items {
                if !encode_value(item, out, depth + 1) {
                    return false;
                }
            }
        }
        Value::Object(map) => {
            if depth >= MAX_FROZEN_DEPTH {
                return false;
            }
            out.push(OBJECT);
            return encode_map(map, out, depth + 1);
        }
    }
    true
}

/// Reads a buffer `encode_map` wrote (this module's own bytes, never input from outside; still
/// checked, and a short or odd buffer ends the decoding rather than panicking).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        // 10 groups of 7 bits cover a u64.
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn slice(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let s = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.slice(len)?).ok()
    }

    fn fixed8(&mut self) -> Option<[u8; 8]> {
        self.slice(8)?.try_into().ok()
    }

    /// A count of items that each take at least one byte: never more than the bytes left (no
    /// allocation sized by a bad count).
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.bytes.len().saturating_sub(self.at)).then_some(n)
    }

    fn map(&mut self, depth: usize) -> Option<Meta> {
        let n = self.count()?;
        let mut map = Meta::with_capacity(n);
        for _ in 0..n {
            let k = self.text()?;
            let v = self.value(depth)?;
            map.insert(k.to_owned(), v);
        }
        Some(map)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        Some(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UINT => Value::Number(self.varint()?.into()),
            INT => Value::Number(i64::from_le_bytes(self.fixed8()?).into()),
            FLOAT => Value::Number(Number::from_f64(f64::from_le_bytes(self.fixed8()?))?),
            STR => Value::String(self.text()?.to_owned()),
            ARRAY if depth < MAX_FROZEN_DEPTH => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT if depth < MAX_FROZEN_DEPTH => Value::Object(self.map(depth + 1)?),
            _ => return None,
        })
    }

    /// Step over one value.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            UINT => {
                self.varint()?;
            }
            INT | FLOAT => {
                self.slice(8)?;
            }
            STR => {
                let len = usize::try_from(self.varint()?).ok()?;
                self.slice(len)?;
            }
            ARRAY if depth < MAX_FROZEN_DEPTH => {
                for _ in 0..self.count()? {
                    self.skip(depth + 1)?;
                }
            }
            OBJECT if depth < MAX_FROZEN_DEPTH => {
                for _ in 0..self.count()? {
                    self.text()?;
                    self.skip(depth + 1)?;
                }
            }
            _ => return None,
        }
        Some(())
    }
}

fn decode(bytes: &[u8]) -> Meta {
    Reader { bytes, at: 0 }.map(0).unwrap_or_default()
}

fn frozen_has_key(bytes: &[u8], key: &str) -> bool {
    let mut r = Reader { bytes, at: 0 };
    let Some(n) = r.count() else { return false };
    for _ in 0..n {
        match r.text() {
            Some(k) if k == key => return true,
            Some(_) => {}
            None => return false,
        }
        if r.skip(0).is_none() {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        let v = json!({
            "hassh_algorithms": "curve25519-sha256,ecdh-sha2-nistp256;aes128-ctr;hmac-sha2-256;none",
            "zero": 0, "big": u64::MAX, "neg": -5, "min": i64::MIN,
            "float": 1.0, "pi": 3.141_592_653_589_793, "tiny": 5e-324, "negf": -0.0,
            "t": true, "f": false, "null": null, "empty": "", "unicode": "é\u{0}ü",
            "answers": ["a", 1, [2, [3]], {"x": {"y": null}}],
            "entropy_client": {"bytes": 12, "entropy": 7.25, "printable": 0.5},
            "obj_empty": {}, "arr_empty": [],
        });
        let Value::Object(map) = v else {
            unreachable!()
        };
        map
    }

    fn frozen(map: &Meta) -> FlowMeta {
        let mut m = FlowMeta::from(map.clone());
        m.freeze();
        assert!(m.is_frozen());
        m
    }

    #[test]
    fn a_frozen_map_decodes_to_the_same_map_and_text() {
        let map = sample();
        let m = frozen(&map);
        let back = m.to_meta();
        assert_eq!(back, map);
        assert_eq!(
            back.keys().collect::<Vec<_>>(),
            map.keys().collect::<Vec<_>>()
        );
        // The number kinds survive: the JSON text is byte for byte the same.
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        for (k, v) in &map {
            assert_eq!(back[k].is_u64(), v.is_u64(), "{k}");
            assert_eq!(back[k].is_i64(), v.is_i64(), "{k}");
            assert_eq!(back[k].is_f64(), v.is_f64(), "{k}");
        }
        assert!(m.frozen_len() < 400);
    }

    #[test]
    fn contains_key_reads_the_buffer_and_writes_thaw() {
        let map = sample();
        let mut m = frozen(&map);
        for k in map.keys() {
            assert!(m.contains_key(k), "{k}");
        }
        assert!(!m.contains_key("x") && !m.contains_key("y") && !m.contains_key("missing"));
        // A read decodes a copy and keeps the buffer.
        assert_eq!(m["zero"], 0);
        assert!(m.is_frozen());
        // A write thaws for good, then behaves as the map does.
        m.insert("segment".into(), 2.into());
        assert!(!m.is_frozen());
        let mut expected = map.clone();
        expected.insert("segment".into(), 2.into());
        assert_eq!(*m, expected);
        m.remove("zero");
        expected.remove("zero");
        assert_eq!(m.take(), expected);
        assert!(m.is_empty());
    }

    #[test]
    fn take_of_a_frozen_map_and_empty_or_deep_maps() {
        let map = sample();
        assert_eq!(frozen(&map).take(), map);
        let mut empty = FlowMeta::new();
        empty.freeze();
        assert!(!empty.is_frozen() && empty.take().is_empty());
        // Nested past the bound: stays a map, unchanged.
        let mut deep = Value::Null;
        for _ in 0..MAX_FROZEN_DEPTH + 2 {
            deep = Value::Array(vec![deep]);
        }
        let mut m = Meta::new();
        m.insert("deep".into(), deep);
        let mut fm = FlowMeta::from(m.clone());
        fm.freeze();
        assert!(!fm.is_frozen());
        assert_eq!(fm.take(), m);
        // Exactly at the bound: frozen and back.
        let mut ok = Value::Null;
        for _ in 0..MAX_FROZEN_DEPTH {
            ok = Value::Array(vec![ok]);
        }
        let mut m = Meta::new();
        m.insert("ok".into(), ok);
        assert_eq!(frozen(&m).take(), m);
    }

    #[test]
    fn a_cut_or_odd_buffer_never_panics() {
        let mut out = Vec::new();
        assert!(encode_map(&sample(), &mut out, 0));
        for cut in 0..out.len() {
            let _ = decode(&out[..cut]);
            let _ = frozen_has_key(&out[..cut], "pi");
        }
        for bad in [
            &[0xff_u8; 12][..],
            &[1, 0, 9],
            &[1, 1, b'a', 7, 0xff, 0xff, 0xff, 0x7f],
        ] {
            assert!(decode(bad).len() <= 1);
            let _ = frozen_has_key(bad, "a");
        }
    }
}
