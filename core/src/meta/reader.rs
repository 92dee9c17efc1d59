//! Reading a frozen buffer: a value, a key's presence, JSON, or the whole map back.

use super::flow_meta::{MAX_FROZEN_DEPTH, RECORD_FACTS};
use super::format::*;
use super::texts::{shared_read, Shared};
use super::{static_key, Map, Meta, Number, Value};
use crate::compact_json::{push_str, push_value_as, Spelling};

/// Reads a buffer `encode` wrote (this module's own bytes, never input from outside; still
/// checked, and a short or odd buffer ends the decoding rather than panicking).
pub(super) struct Reader<'a, 't> {
    bytes: &'a [u8],
    pub(super) at: usize,
    /// The shared texts, to resolve references (None: walking only).
    table: Option<&'t Shared>,
}

impl<'a, 't> Reader<'a, 't> {
    pub(super) fn new(bytes: &'a [u8], table: Option<&'t Shared>) -> Self {
        Reader {
            bytes,
            at: 0,
            table,
        }
    }

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

    fn id(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
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

    fn shared_text(&self, id: u32) -> Option<&'t str> {
        self.table?.text(id)
    }

    /// A key: its text (inline) or its shared id.
    fn key(&mut self) -> Option<Result<&'a str, u32>> {
        let v = self.varint()?;
        if v & 1 == 1 {
            return Some(Err(u32::try_from(v >> 1).ok()?));
        }
        let len = usize::try_from(v >> 1).ok()?;
        Some(Ok(std::str::from_utf8(self.slice(len)?).ok()?))
    }

    fn key_text<'x>(&mut self) -> Option<&'x str>
    where
        'a: 'x,
        't: 'x,
    {
        match self.key()? {
            Ok(text) => Some(text),
            Err(id) => self.shared_text(id),
        }
    }

    fn fixed8(&mut self) -> Option<[u8; 8]> {
        self.slice(8)?.try_into().ok()
    }

    /// A count of items that each take at least one byte: never more than the bytes left (no
    /// allocation sized by a bad count).
    pub(super) fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.bytes.len().saturating_sub(self.at)).then_some(n)
    }

    pub(super) fn map(&mut self, depth: usize) -> Option<Meta> {
        let n = self.count()?;
        // A thawed map is mostly on its way into a record, which adds a few facts of its own
        // (evidence, encap, shape, end_reason, tunnel): room for them spares a rehash.
        let mut map = Meta::with_capacity(n + RECORD_FACTS);
        self.entries(n, depth, |k, v| {
            map.insert(static_key(k), v);
        })?;
        Some(map)
    }

    /// A nested map (JSON object) of the frozen map.
    fn object(&mut self, depth: usize) -> Option<Map<String, Value>> {
        let n = self.count()?;
        let mut map = Map::with_capacity(n);
        self.entries(n, depth, |k, v| {
            map.insert(k.to_owned(), v);
        })?;
        Some(map)
    }

    fn entries(&mut self, n: usize, depth: usize, mut put: impl FnMut(&str, Value)) -> Option<()> {
        for _ in 0..n {
            let k = self.key_text()?;
            let v = self.value(depth)?;
            put(k, v);
        }
        Some(())
    }

    pub(super) fn value(&mut self, depth: usize) -> Option<Value> {
        Some(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UINT => Value::Number(self.varint()?.into()),
            INT => Value::Number(i64::from_le_bytes(self.fixed8()?).into()),
            FLOAT => Value::Number(Number::from_f64(f64::from_le_bytes(self.fixed8()?))?),
            STR => Value::String(self.text()?.to_owned()),
            SHARED_TEXT => {
                let id = self.id()?;
                Value::String(self.shared_text(id)?.to_owned())
            }
            HEX => {
                let n = usize::try_from(self.varint()?).ok()?;
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(n * 2);
                for &b in self.slice(n)? {
                    s.push(char::from(DIGITS[usize::from(b >> 4)]));
                    s.push(char::from(DIGITS[usize::from(b & 15)]));
                }
                Value::String(s)
            }
            ARRAY if depth < MAX_FROZEN_DEPTH => {
                let n = self.count()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT if depth < MAX_FROZEN_DEPTH => Value::Object(self.object(depth + 1)?),
            _ => return None,
        })
    }

    /// A map's entries as JSON in `sp` (`"key":value`, separated, no braces), as
    /// `compact_json::push_value_as` writes the decoded map's; `tail`'s after them, or among
    /// them where `sp` sorts keys (the live entries of a frozen map, at its top level).
    pub(super) fn json_entries(
        &mut self,
        depth: usize,
        out: &mut Vec<u8>,
        sp: Spelling,
        tail: &[(&str, &Value)],
    ) -> Option<()> {
        let n = self.count()?;
        if sp.sort_keys {
            return self.json_entries_sorted(n, depth, out, sp, tail);
        }
        for i in 0..n {
            if i > 0 {
                out.extend_from_slice(sp.item_separator);
            }
            push_str(out, self.key_text()?);
            out.extend_from_slice(sp.key_separator);
            self.json_value(depth, out, sp)?;
        }
        for (i, (key, value)) in tail.iter().enumerate() {
            if n + i > 0 {
                out.extend_from_slice(sp.item_separator);
            }
            push_str(out, key);
            out.extend_from_slice(sp.key_separator);
            push_value_as(out, value, sp);
        }
        Some(())
    }

    /// `json_entries` by key: each entry's key and where its value starts, sorted, then each
    /// value read from there.
    fn json_entries_sorted(
        &mut self,
        n: usize,
        depth: usize,
        out: &mut Vec<u8>,
        sp: Spelling,
        tail: &[(&str, &Value)],
    ) -> Option<()> {
        enum At<'v> {
            Buffer(usize),
            Live(&'v Value),
        }
        let mut entries = Vec::with_capacity(n + tail.len());
        for _ in 0..n {
            let key = self.key_text()?;
            entries.push((key, At::Buffer(self.at)));
            self.walk(depth, &mut |_| {})?;
        }
        entries.extend(tail.iter().map(|&(key, value)| (key, At::Live(value))));
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let end = self.at;
        for (i, (key, at)) in entries.into_iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(sp.item_separator);
            }
            push_str(out, key);
            out.extend_from_slice(sp.key_separator);
            match at {
                At::Buffer(at) => {
                    self.at = at;
                    self.json_value(depth, out, sp)?;
                }
                At::Live(value) => push_value_as(out, value, sp),
            }
        }
        self.at = end;
        Some(())
    }

    /// One value as JSON in `sp`, as `compact_json::push_value_as` writes the value `value`
    /// decodes.
    fn json_value(&mut self, depth: usize, out: &mut Vec<u8>, sp: Spelling) -> Option<()> {
        match self.byte()? {
            NULL => out.extend_from_slice(b"null"),
            FALSE => out.extend_from_slice(b"false"),
            TRUE => out.extend_from_slice(b"true"),
            UINT => sp.number(out, &self.varint()?.into()),
            INT => sp.number(out, &i64::from_le_bytes(self.fixed8()?).into()),
            FLOAT => sp.number(out, &Number::from_f64(f64::from_le_bytes(self.fixed8()?))?),
            STR => push_str(out, self.text()?),
            SHARED_TEXT => {
                let id = self.id()?;
                push_str(out, self.shared_text(id)?);
            }
            HEX => {
                let n = usize::try_from(self.varint()?).ok()?;
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let bytes = self.slice(n)?;
                out.reserve(n * 2 + 2);
                out.push(b'"');
                for &b in bytes {
                    out.push(DIGITS[usize::from(b >> 4)]);
                    out.push(DIGITS[usize::from(b & 15)]);
                }
                out.push(b'"');
            }
            ARRAY if depth < MAX_FROZEN_DEPTH => {
                out.push(b'[');
                for i in 0..self.count()? {
                    if i > 0 {
                        out.extend_from_slice(sp.item_separator);
                    }
                    self.json_value(depth + 1, out, sp)?;
                }
                out.push(b']');
            }
            OBJECT if depth < MAX_FROZEN_DEPTH => {
                out.push(b'{');
                self.json_entries(depth + 1, out, sp, &[])?;
                out.push(b'}');
            }
            _ => return None,
        }
        Some(())
    }

    /// Step over a map, handing `ids` the shared ids it refers to.
    pub(super) fn walk_map<F: FnMut(u32)>(&mut self, depth: usize, ids: &mut F) -> Option<()> {
        for _ in 0..self.count()? {
            if let Err(id) = self.key()? {
                ids(id);
            }
            self.walk(depth, ids)?;
        }
        Some(())
    }

    /// Step over one value, handing `ids` the shared ids it refers to.
    fn walk<F: FnMut(u32)>(&mut self, depth: usize, ids: &mut F) -> Option<()> {
        match self.byte()? {
            NULL | FALSE | TRUE => {}
            UINT => {
                self.varint()?;
            }
            INT | FLOAT => {
                self.slice(8)?;
            }
            STR | HEX => {
                let len = usize::try_from(self.varint()?).ok()?;
                self.slice(len)?;
            }
            SHARED_TEXT => ids(self.id()?),
            ARRAY if depth < MAX_FROZEN_DEPTH => {
                for _ in 0..self.count()? {
                    self.walk(depth + 1, ids)?;
                }
            }
            OBJECT if depth < MAX_FROZEN_DEPTH => self.walk_map(depth + 1, ids)?,
            _ => return None,
        }
        Some(())
    }
}

pub(super) fn decode(bytes: &[u8]) -> Meta {
    let table = shared_read();
    Reader::new(bytes, Some(&table)).map(0).unwrap_or_default()
}

/// A reader of a frozen map placed at `key`'s value, the entries before it stepped over.
fn seek<'a, 't>(bytes: &'a [u8], table: &'t Shared, key: &str) -> Option<Reader<'a, 't>> {
    let mut r = Reader::new(bytes, Some(table));
    for _ in 0..r.count()? {
        if r.key_text()? == key {
            return Some(r);
        }
        // Stepping over a value only: its shared ids are of no use here (a list of them was
        // an allocation, and its growth, at every look-up).
        r.walk(0, &mut |_| {})?;
    }
    None
}

/// The value of `key` in a frozen map.
pub(super) fn frozen_value(bytes: &[u8], key: &str) -> Option<Value> {
    let table = shared_read();
    seek(bytes, &table, key)?.value(0)
}

pub(super) fn frozen_has_key(bytes: &[u8], key: &str) -> bool {
    seek(bytes, &shared_read(), key).is_some()
}
