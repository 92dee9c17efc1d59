//! A flow's facts, a map while they grow and one compact buffer after (`FlowMeta::freeze`).
use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::{LazyLock, OnceLock, RwLockWriteGuard};

use super::reader::{decode, frozen_has_key, frozen_value, Reader};
use super::texts::{shared, shared_read, Shared};
use super::writer::{encode, put_varint, value_depth_ok, written, Encoder, ValueWriter};
use super::{Key, Meta, Value};
use crate::compact_json::Spelling;

/// Facts a record adds to its flow's map at most, in the usual case (room kept when thawing).
pub(super) const RECORD_FACTS: usize = 4;

/// Nesting of arrays and objects a frozen map may hold (probes nest two or three deep); a map
/// nested deeper is left as it is rather than frozen.
pub const MAX_FROZEN_DEPTH: usize = 16;

/// A flow's metadata: a map while it grows, a frozen buffer after (`freeze`).
///
/// Reads and writes go through the map (`Deref`/`DerefMut`): a write thaws a frozen map back
/// into a map for good (a control connection noting announcements, the monitor's segments),
/// except `insert`/`insert_new`/`set_default` of a key the buffer lacks, which go to a live
/// tail after it (the next `freeze` appends the tail to the buffer); a read of a frozen map
/// decodes a copy once and keeps it beside the buffer. The hot paths use `contains_key`,
/// `value_of` and `push_json`, which read the buffer without decoding it: a record keeps its
/// flow's buffer, takes its own facts (evidence, shape, end reason, tunnel verdict) in the
/// tail, and is written out and looked up from there. Small in place (two pointers): it sits
/// in every flow.
#[derive(Debug, Default)]
pub struct FlowMeta {
    /// The map while live (None while empty); beside a frozen buffer, its tail: keys the
    /// buffer does not hold, after the buffer's own in the map's order.
    live: Option<Box<Meta>>,
    pub(super) frozen: Option<Box<Frozen>>,
}

#[derive(Debug)]
pub(super) struct Frozen {
    pub(super) bytes: Box<[u8]>,
    /// `key_bits` of each of the buffer's keys: a key with a bit clear here is not there, known
    /// without walking the buffer (most look-ups, the policy's and the record's own, are for
    /// facts a map lacks).
    keys: u128,
    /// A decoded copy of the whole map (the tail included), made by the first read through
    /// `Deref`, dropped by any change.
    pub(super) read: OnceLock<Box<Meta>>,
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

/// A copy with the same entries, as a live map (a record for the monitor's early report).
impl Clone for FlowMeta {
    fn clone(&self) -> Self {
        FlowMeta::from(self.to_meta())
    }
}

/// Same keys with equal values, order aside (as `Meta`'s equality).
impl PartialEq for FlowMeta {
    fn eq(&self, other: &FlowMeta) -> bool {
        **self == **other
    }
}

/// `bytes` decoded, then `tail`'s entries after them (keys the buffer does not hold).
fn decode_with(bytes: &[u8], tail: Option<&Meta>) -> Meta {
    let mut map = decode(bytes);
    if let Some(tail) = tail {
        map.0.extend(tail.0.iter().cloned());
    }
    map
}

impl FlowMeta {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// Whether `freeze` would give memory back: a live map or tail, or a decoded copy.
    pub fn would_shrink(&self) -> bool {
        match (&self.live, &self.frozen) {
            (Some(_), _) => true,
            (None, Some(f)) => f.read.get().is_some(),
            (None, None) => false,
        }
    }

    /// The map will not grow for a while: keep it as one buffer (a frozen one takes its tail
    /// on its end). A map that cannot be encoded (nested deeper than `MAX_FROZEN_DEPTH`) only
    /// gives back its spare room.
    pub fn freeze(&mut self) {
        if let Some(f) = self.frozen.as_mut() {
            // Frozen already: drop the copy a read may have decoded.
            f.read = OnceLock::new();
            let Some(tail) = self.live.take() else {
                return;
            };
            if !f.append_all(tail.iter()) {
                self.live = Some(tail);
                DerefMut::deref_mut(self).0.shrink_to_fit();
            }
            return;
        }
        let Some(map) = self.live.as_mut() else {
            return;
        };
        if map.is_empty() {
            self.live = None;
            return;
        }
        if let Some(bytes) = encode(map, true) {
            let keys = map.keys().fold(0, |bits, k| bits | key_bits(k));
            self.live = None;
            self.frozen = Some(Box::new(Frozen {
                bytes,
                keys,
                read: OnceLock::new(),
            }));
        } else {
            // As big as it is (it doubles as facts come in).
            map.0.shrink_to_fit();
        }
    }

    /// How many facts the map holds, without decoding a frozen map.
    pub fn len(&self) -> usize {
        let tail = self.live.as_ref().map_or(0, |t| t.len());
        match &self.frozen {
            Some(f) => Reader::new(&f.bytes, None).count().unwrap_or(0) + tail,
            None => tail,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is there, without decoding a frozen map.
    pub fn contains_key(&self, key: &str) -> bool {
        match (&self.live, &self.frozen) {
            (live, Some(f)) => live.as_ref().is_some_and(|t| t.contains_key(key)) || f.has_key(key),
            (Some(map), None) => map.contains_key(key),
            (None, None) => false,
        }
    }

    /// `key`'s value, without decoding a frozen map whole: a map read a key at a time between
    /// freezes (a slow flow still inspected, frozen whenever it is quiet) would otherwise be
    /// decoded again at every packet, and a record's whole map for the one or two facts its
    /// policy asks.
    pub fn value_of(&self, key: &str) -> Option<Cow<'_, Value>> {
        match (&self.live, &self.frozen) {
            (live, Some(f)) => {
                if let Some(map) = f.read.get() {
                    return map.get(key).map(Cow::Borrowed);
                }
                match live.as_ref().and_then(|t| t.get(key)) {
                    Some(v) => Some(Cow::Borrowed(v)),
                    None => f.value(key).map(Cow::Owned),
                }
            }
            (Some(map), None) => map.get(key).map(Cow::Borrowed),
            (None, None) => None,
        }
    }

    /// The metadata as a map, leaving an empty one behind.
    pub fn take(&mut self) -> Meta {
        let tail = self.live.take();
        if let Some(mut f) = self.frozen.take() {
            return match f.read.take() {
                Some(map) => *map,
                None => decode_with(&f.bytes, tail.as_deref()),
            };
        }
        tail.map(|map| *map).unwrap_or_default()
    }

    /// A copy of the metadata as a map.
    pub fn to_meta(&self) -> Meta {
        match (&self.live, &self.frozen) {
            (live, Some(f)) => match f.read.get() {
                Some(map) => (**map).clone(),
                None => decode_with(&f.bytes, live.as_deref()),
            },
            (Some(map), None) => (**map).clone(),
            (None, None) => Meta::new(),
        }
    }

    /// The map as serde_json's compact JSON object (`compact_json::SERDE`); a frozen map's from
    /// its buffer, without decoding it.
    pub fn push_json(&self, out: &mut Vec<u8>) {
        self.push_json_as(out, crate::compact_json::SERDE);
    }

    /// The map as a JSON object in `sp` (`compact_json::push_object_as` of its entries); a
    /// frozen map's from its buffer, without decoding it.
    pub fn push_json_as(&self, out: &mut Vec<u8>, sp: Spelling) {
        let mut live: Vec<(&str, &Value)> = self
            .live
            .as_deref()
            .map(Meta::iter)
            .into_iter()
            .flatten()
            .collect();
        let Some(f) = &self.frozen else {
            crate::compact_json::push_object_as(out, &mut live, sp);
            return;
        };
        out.push(b'{');
        let start = out.len();
        let table = shared_read();
        if Reader::new(&f.bytes, Some(&table))
            .json_entries(0, out, sp, &live)
            .is_none()
        {
            // Not a buffer `encode` wrote: nothing of it, as `decode` would give, and the tail.
            out.truncate(start);
            drop(table);
            out.pop();
            crate::compact_json::push_object_as(out, &mut live, sp);
            return;
        }
        out.push(b'}');
    }

    /// Set `key`, as `Meta::insert` does. A frozen map `key` is new to stays frozen: the entry
    /// goes to its tail. A key the buffer has is set in the thawed map, in its place.
    pub fn insert(&mut self, key: Key, value: Value) -> Option<Value> {
        if let Some(f) = self.frozen.as_mut() {
            if !f.has_key(&key) {
                f.read = OnceLock::new();
                return self
                    .live
                    .get_or_insert_with(Box::default)
                    .insert(key, value);
            }
        }
        DerefMut::deref_mut(self).insert(key, value)
    }

    /// `insert(key, value())`, where a frozen map lacks `key` written into its buffer by
    /// `write` instead (the value `value()` makes, encoded), its tail joined to the buffer
    /// first so that the map's order is the same.
    pub fn insert_written(
        &mut self,
        key: Key,
        write: impl FnOnce(&mut ValueWriter),
        value: impl FnOnce() -> Value,
    ) {
        if self.frozen.as_ref().is_some_and(|f| !f.has_key(&key))
            && self.live.as_ref().is_none_or(|t| !t.contains_key(&key))
        {
            self.freeze();
            if let Some(f) = self.frozen.as_mut() {
                if f.append_written(&key, write) {
                    return;
                }
            }
        }
        self.insert(key, value());
    }

    /// `insert` of a key the caller found absent (`value_of`, `contains_key`): a frozen map's
    /// buffer is not searched for it again.
    pub fn insert_new(&mut self, key: Key, value: Value) {
        self.insert_new_all([(key, value)]);
    }

    /// `insert_new` of several keys the caller found absent, in their order (a frozen map
    /// takes them in its tail).
    pub fn insert_new_all(&mut self, entries: impl IntoIterator<Item = (Key, Value)>) {
        if let Some(f) = self.frozen.as_mut() {
            f.read = OnceLock::new();
        }
        let map = self.live.get_or_insert_with(Box::default);
        for (k, v) in entries {
            map.insert(k, v);
        }
    }

    /// Insert `key` only if absent (`set_default`), a frozen map staying frozen (`insert`).
    pub fn set_default(&mut self, key: impl Into<Key>, value: Value) {
        let key = key.into();
        if !self.contains_key(&key) {
            self.insert_new(key, value);
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
            (live, Some(f)) => f
                .read
                .get_or_init(|| Box::new(decode_with(&f.bytes, live.as_deref()))),
            (Some(map), None) => map,
            (None, None) => &EMPTY,
        }
    }
}

impl DerefMut for FlowMeta {
    fn deref_mut(&mut self) -> &mut Meta {
        if let Some(mut f) = self.frozen.take() {
            let tail = self.live.take();
            self.live = Some(
                f.read
                    .take()
                    .unwrap_or_else(|| Box::new(decode_with(&f.bytes, tail.as_deref()))),
            );
        }
        self.live.get_or_insert_with(Box::default)
    }
}

/// A key's two bits in `Frozen::keys` (FNV-1a: keys are short names, and a collision costs
/// only a walk of the buffer). Two bits a key: with the ~25 facts of a TLS record, a key it
/// lacks passes for one it may have one time in ten rather than one in five.
fn key_bits(key: &str) -> u128 {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    1 << (hash % 128) | 1 << ((hash >> 32) % 128)
}

impl Frozen {
    /// Whether `key` may be in the buffer (false: it is not).
    fn may_have(&self, key: &str) -> bool {
        let bits = key_bits(key);
        self.keys & bits == bits
    }

    fn has_key(&self, key: &str) -> bool {
        self.may_have(key) && frozen_has_key(&self.bytes, key)
    }

    fn value(&self, key: &str) -> Option<Value> {
        if !self.may_have(key) {
            return None;
        }
        frozen_value(&self.bytes, key)
    }

    /// `entries` (keys absent from the map) on the end of the map, the buffer copied once, its
    /// count that many more; false (none appended) when a value nests too deep to freeze or the
    /// buffer is not one `encode` wrote. The entries already there keep their bytes, so the
    /// shared texts they refer to keep the references they hold (this map's `Drop` releases
    /// them all, once).
    fn append_all<'e>(
        &mut self,
        entries: impl Iterator<Item = (&'e str, &'e Value)> + Clone,
    ) -> bool {
        if !entries.clone().all(|(_, v)| value_depth_ok(v, 0)) {
            return false;
        }
        let added = entries.clone().count();
        self.append(added, |enc| {
            entries.fold(0, |keys, (key, value)| {
                enc.entry(key, value);
                keys | key_bits(key)
            })
        })
    }

    /// `key` (absent from the map) on its end with the value `write` writes; false (nothing
    /// appended) when the buffer is not one `encode` wrote.
    fn append_written(&mut self, key: &str, write: impl FnOnce(&mut ValueWriter)) -> bool {
        self.append(1, |enc| {
            enc.key(key);
            write(&mut ValueWriter(enc));
            key_bits(key)
        })
    }

    /// `added` entries on the end of the map, as `write` encodes them (returning their keys'
    /// bits): the buffer copied once, its count that many more; false (nothing appended) when
    /// the buffer is not one `encode` wrote.
    fn append(&mut self, added: usize, write: impl FnOnce(&mut Encoder) -> u128) -> bool {
        let mut r = Reader::new(&self.bytes, None);
        let (Some(n), Some(rest)) = (r.count(), self.bytes.get(r.at..)) else {
            return false;
        };
        let mut table = shared();
        let mut keys = 0;
        self.bytes = written(|out| {
            put_varint(out, (n + added) as u64);
            out.extend_from_slice(rest);
            keys = write(&mut Encoder {
                out,
                table: Some(&mut table),
            });
        });
        self.keys |= keys;
        self.read = OnceLock::new();
        true
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // The table is locked at the first shared text, not before: most maps hold none, and
        // the ids need no list of their own (one was allocated at every drop that had some).
        let mut table: Option<RwLockWriteGuard<'static, Shared>> = None;
        let _ = Reader::new(&self.bytes, None)
            .walk_map(0, &mut |id| table.get_or_insert_with(shared).release(id));
    }
}
