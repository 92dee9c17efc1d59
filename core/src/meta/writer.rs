//! Writing a map (or one value) into a frozen buffer (`format`).
use std::cell::RefCell;

use super::flow_meta::MAX_FROZEN_DEPTH;
use super::format::*;
use super::reader::Reader;
use super::texts::{shared, Shared, SHARE_MIN_LEN};
use super::{Meta, Value};

/// Hex texts shorter than this are kept as text (a head of bytes or a digest is 32 or more).
const HEX_MIN_LEN: usize = 16;

pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
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

fn is_lower_hex(s: &str) -> bool {
    s.len() >= HEX_MIN_LEN
        && s.len().is_multiple_of(2)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn hex_value(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b - b'0'
    } else {
        b.wrapping_sub(b'a').wrapping_add(10) & 15
    }
}

/// Whether every array and object of `map` is within `MAX_FROZEN_DEPTH`.
fn depth_ok<'a>(mut values: impl Iterator<Item = &'a Value>, depth: usize) -> bool {
    values.all(|v| value_depth_ok(v, depth))
}

pub(super) fn value_depth_ok(v: &Value, depth: usize) -> bool {
    match v {
        Value::Array(items) => {
            depth < MAX_FROZEN_DEPTH && items.iter().all(|i| value_depth_ok(i, depth + 1))
        }
        Value::Object(map) => depth < MAX_FROZEN_DEPTH && depth_ok(map.values(), depth + 1),
        _ => true,
    }
}

/// Writes a frozen map; `table`: the shared texts, None to keep every text in the buffer.
pub(super) struct Encoder<'o, 't> {
    pub(super) out: &'o mut Vec<u8>,
    pub(super) table: Option<&'t mut Shared>,
}

impl Encoder<'_, '_> {
    fn share(&mut self, text: &str) -> Option<u32> {
        self.table.as_deref_mut()?.share(text)
    }

    fn map<'a, K: AsRef<str>>(
        &mut self,
        len: usize,
        entries: impl Iterator<Item = (K, &'a Value)>,
    ) {
        put_varint(self.out, len as u64);
        for (k, v) in entries {
            self.entry(k.as_ref(), v);
        }
    }

    pub(super) fn entry(&mut self, k: &str, v: &Value) {
        self.key(k);
        self.value(v);
    }

    pub(super) fn key(&mut self, k: &str) {
        match self.share(k) {
            Some(id) => put_varint(self.out, u64::from(id) << 1 | 1),
            None => {
                put_varint(self.out, (k.len() as u64) << 1);
                self.out.extend_from_slice(k.as_bytes());
            }
        }
    }

    fn value(&mut self, v: &Value) {
        let out = &mut *self.out;
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
                let id = if s.len() >= SHARE_MIN_LEN {
                    self.share(s)
                } else {
                    None
                };
                let out = &mut *self.out;
                if let Some(id) = id {
                    out.push(SHARED_TEXT);
                    put_varint(out, u64::from(id));
                } else if is_lower_hex(s) {
                    out.push(HEX);
                    put_varint(out, (s.len() / 2) as u64);
                    out.extend(
                        s.as_bytes()
                            .chunks_exact(2)
                            .map(|p| hex_value(p[0]) << 4 | hex_value(p[1])),
                    );
                } else {
                    out.push(STR);
                    put_text(out, s);
                }
            }
            Value::Array(items) => {
                out.push(ARRAY);
                put_varint(out, items.len() as u64);
                for item in items {
                    self.value(item);
                }
            }
            Value::Object(map) => {
                out.push(OBJECT);
                self.map(map.len(), map.iter());
            }
        }
    }
}

/// Writes one value straight into a frozen map's buffer, as `Encoder::value` encodes the
/// `Value` it stands for (`FlowMeta::insert_written`): a fact made of numbers (a flow's packet
/// shape) goes in without a `Value` made first, nor a hashed `Map` for each of its objects.
/// The writer states each object's and array's length first and then writes that many items,
/// nested at most `MAX_FROZEN_DEPTH` deep (past that the map would not read back).
pub struct ValueWriter<'e, 'o, 't>(pub(super) &'e mut Encoder<'o, 't>);

impl ValueWriter<'_, '_, '_> {
    /// An object of `len` entries: `len` times `key` then its value.
    pub fn object(&mut self, len: usize) {
        self.0.out.push(OBJECT);
        put_varint(self.0.out, len as u64);
    }

    pub fn key(&mut self, key: &str) {
        self.0.key(key);
    }

    /// An array of `len` values.
    pub fn array(&mut self, len: usize) {
        self.0.out.push(ARRAY);
        put_varint(self.0.out, len as u64);
    }

    /// An integer, as `Value::from` it.
    pub fn int(&mut self, n: i64) {
        match u64::try_from(n) {
            Ok(u) => self.uint(u),
            Err(_) => {
                self.0.out.push(INT);
                self.0.out.extend_from_slice(&n.to_le_bytes());
            }
        }
    }

    pub fn uint(&mut self, n: u64) {
        self.0.out.push(UINT);
        put_varint(self.0.out, n);
    }

    /// A float, as `Value::from` it (null when not finite).
    pub fn float(&mut self, f: f64) {
        if f.is_finite() {
            self.0.out.push(FLOAT);
            self.0.out.extend_from_slice(&f.to_le_bytes());
        } else {
            self.0.out.push(NULL);
        }
    }
}

/// The value `write` writes, as a `Value` (a fact that has a `ValueWriter` of its own, wanted
/// in a live map); None when what it wrote does not read back (a length stated wrongly).
pub fn written_value(write: impl FnOnce(&mut ValueWriter)) -> Option<Value> {
    let mut out = Vec::new();
    write(&mut ValueWriter(&mut Encoder {
        out: &mut out,
        table: None,
    }));
    let mut r = Reader::new(&out, None);
    let value = r.value(0)?;
    (r.at == out.len()).then_some(value)
}

/// `map` frozen, or None when it nests deeper than `MAX_FROZEN_DEPTH`. `share`: refer to
/// repeated texts in the shared table.
pub(super) fn encode(map: &Meta, share: bool) -> Option<Box<[u8]>> {
    if !depth_ok(map.values(), 0) {
        return None;
    }
    let mut guard = share.then(shared);
    Some(written(|out| {
        let mut enc = Encoder {
            out,
            table: guard.as_deref_mut(),
        };
        enc.map(map.len(), map.iter());
    }))
}

/// What `write` puts in a buffer kept per thread, copied once into one of the exact size.
pub(super) fn written(write: impl FnOnce(&mut Vec<u8>)) -> Box<[u8]> {
    SCRATCH.with_borrow_mut(|out| {
        out.clear();
        write(out);
        let bytes = Box::from(out.as_slice());
        if out.capacity() > SCRATCH_KEEP {
            *out = Vec::new();
        }
        bytes
    })
}

/// Scratch buffers larger than this are not kept for the next map.
const SCRATCH_KEEP: usize = 64 << 10;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}
