//! Facts a probe or the engine extracts from a flow: an ordered map of JSON-like values, handed
//! to Python as a dict. Insertion order is kept (Python dicts keep it, and outputs show it).
//!
//! A flow keeps its facts from the end of its inspection until it is reported, which for most
//! flows of a capture is most of their life; as a map they cost several times their text (a
//! 104-byte slot and an allocation per key, an allocation per string), so a flow's map is
//! `FlowMeta::freeze`d into one compact buffer once it stops growing. The record takes the
//! buffer as it is: its writers read JSON from it and the policy's look-ups read one value at a
//! time; it is decoded back to the same map (keys, order, value types) only when a whole map is
//! asked for (a dict in Python, a DataFrame).
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::{LazyLock, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::{HashSet, HashTable};
use std::hash::BuildHasher;

pub use serde_json::{json, Map, Number, Value};

/// A probe's or a flow's metadata: key order is insertion order.
///
/// A list of (key, value) pairs searched in order, not a hash map: a flow has a dozen facts or
/// so, named by the probes and signatures (never by the traffic), and hashing their names
/// (serde_json's map, SipHash) was 8% of the core's instructions, growing its tables 3%. It
/// behaves as serde_json's `Map` with `preserve_order` (insert replaces in place, remove moves
/// the last entry into the gap: outputs show key order, so the two must agree). Nested objects
/// stay `Map`s (`From<Meta> for Value` converts).
#[derive(Clone, Debug, Default)]
pub struct Meta(Vec<(Key, Value)>);

/// `Meta::iter`'s iterator.
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (Key, Value)>,
    fn(&'a (Key, Value)) -> (&'a str, &'a Value),
>;

/// A fact's name: most are the probes' literals, kept as they are (a name written at every
/// fact of every flow was an allocation each); a name made at run time is owned.
pub type Key = Cow<'static, str>;

fn pair_refs(pair: &(Key, Value)) -> (&str, &Value) {
    (&pair.0, &pair.1)
}

impl Meta {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Meta(Vec::with_capacity(n))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| k == key)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.position(key).map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Set `key`; an existing key keeps its place. The value it had, if any.
    pub fn insert(&mut self, key: Key, value: Value) -> Option<Value> {
        match self.position(&key) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// The value of `key`, set to `make()` first if absent.
    pub fn get_or_insert_with(
        &mut self,
        key: impl Into<Key>,
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        let key = key.into();
        let i = match self.position(&key) {
            Some(i) => i,
            None => {
                self.0.push((key, make()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    /// Remove `key` as serde_json's `Map::remove` does with `preserve_order`: the last entry
    /// takes its place.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).map(|i| self.0.swap_remove(i).1)
    }

    /// Give `from`'s value the name `to`, in `from`'s place (no-op when `from` is absent).
    pub fn rename(&mut self, from: &str, to: Key) {
        if self.contains_key(from) {
            self.remove(&to);
            if let Some(i) = self.position(from) {
                self.0[i].0 = to;
            }
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        self.0
            .iter()
            .map(pair_refs as fn(&(Key, Value)) -> (&str, &Value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }

    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }

    /// As a JSON object (for nesting, or for code that takes serde_json's map).
    pub fn into_object(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v))
            .collect()
    }
}

/// Same keys with equal values, order aside (as `Map`'s own equality).
impl PartialEq for Meta {
    fn eq(&self, other: &Meta) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

/// `meta["key"]` panics when the key is absent, as `Map`'s indexing does (tests read facts so).
impl std::ops::Index<&str> for Meta {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no fact {key:?} in the map"),
        }
    }
}

impl Extend<(Key, Value)> for Meta {
    fn extend<I: IntoIterator<Item = (Key, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl From<Meta> for Value {
    fn from(meta: Meta) -> Self {
        Value::Object(meta.into_object())
    }
}

impl serde::Serialize for Meta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl FromIterator<(Key, Value)> for Meta {
    fn from_iter<I: IntoIterator<Item = (Key, Value)>>(iter: I) -> Self {
        let mut meta = Meta::new();
        meta.extend(iter);
        meta
    }
}

impl IntoIterator for Meta {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Meta {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Same keys with equal values (order aside), as `Map`'s own equality.
impl PartialEq<Map<String, Value>> for Meta {
    fn eq(&self, other: &Map<String, Value>) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl From<Map<String, Value>> for Meta {
    fn from(map: Map<String, Value>) -> Self {
        // A map's keys are unique already: taken as they come, in linear time whatever its size
        // (the tunnel classifier's facts may come from Python).
        Meta(map.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect())
    }
}

/// A fact's name as a `Key` that borrows one copy kept for the process: maps thawed from their
/// frozen form (every record's) name the same few hundred facts, the probes' and signatures',
/// and a copy of each name for each record was an allocation each. Bounded: past
/// `MAX_STATIC_KEYS` names kept (names a user's signatures or Python-made facts could add), a
/// name is copied as before. Each thread looks in its own set first, so the process-wide one is
/// locked only for a name the thread has not seen.
fn static_key(name: &str) -> Key {
    STATIC_KEYS_SEEN.with_borrow_mut(|seen| {
        if let Some(&kept) = seen.get(name) {
            return Cow::Borrowed(kept);
        }
        let mut all = STATIC_KEYS.lock().unwrap_or_else(|e| e.into_inner());
        match keep_name(&mut all, name, MAX_STATIC_KEYS) {
            Some(kept) => {
                seen.insert(kept);
                Cow::Borrowed(kept)
            }
            None => Cow::Owned(name.to_owned()),
        }
    })
}

/// `name`'s copy in `kept`, made (and kept for good) if there is room for one more than `max`
/// hold and the name is not longer than `MAX_STATIC_KEY_LEN`; None otherwise.
fn keep_name(kept: &mut KeySet, name: &str, max: usize) -> Option<&'static str> {
    if let Some(&found) = kept.get(name) {
        return Some(found);
    }
    if kept.len() >= max || name.len() > MAX_STATIC_KEY_LEN {
        return None;
    }
    let copy: &'static str = Box::leak(Box::from(name));
    kept.insert(copy);
    Some(copy)
}

/// Names `static_key` keeps for the process at most (each once: a few hundred are in use), and
/// the longest it keeps (the probes' are under 64 bytes): at most 512 KB whatever names come.
const MAX_STATIC_KEYS: usize = 4096;
const MAX_STATIC_KEY_LEN: usize = 128;

type KeySet = HashSet<&'static str, foldhash::fast::RandomState>;

static STATIC_KEYS: LazyLock<Mutex<KeySet>> = LazyLock::new(Mutex::default);

thread_local! {
    static STATIC_KEYS_SEEN: RefCell<KeySet> = RefCell::default();
}

/// Insert `key` only if absent (Python's `dict.setdefault`): the first probe to say a fact wins.
pub fn set_default(meta: &mut Meta, key: impl Into<Key>, value: Value) {
    let key = key.into();
    if !meta.contains_key(&key) {
        meta.insert(key, value);
    }
}

/// Facts a record adds to its flow's map at most, in the usual case (room kept when thawing).
const RECORD_FACTS: usize = 4;

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
    frozen: Option<Box<Frozen>>,
}

#[derive(Debug)]
struct Frozen {
    bytes: Box<[u8]>,
    /// `key_bits` of each of the buffer's keys: a key with a bit clear here is not there, known
    /// without walking the buffer (most look-ups, the policy's and the record's own, are for
    /// facts a map lacks).
    keys: u128,
    /// A decoded copy of the whole map (the tail included), made by the first read through
    /// `Deref`, dropped by any change.
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

    /// The map as a JSON object, as `compact_json::push_object` writes its entries; a frozen
    /// map's from its buffer, without decoding it.
    pub fn push_json(&self, out: &mut Vec<u8>) {
        let Some(f) = &self.frozen else {
            let entries = self.live.as_deref().map(Meta::iter);
            crate::compact_json::push_object(out, entries.into_iter().flatten());
            return;
        };
        out.push(b'{');
        let start = out.len();
        let table = shared_read();
        let mut r = Reader::new(&f.bytes, Some(&table));
        if r.json_entries(0, out).is_none() {
            // Not a buffer `encode` wrote: nothing of it, as `decode` would give.
            out.truncate(start);
        }
        drop(table);
        for (key, value) in self.live.as_deref().map(Meta::iter).into_iter().flatten() {
            if out.len() > start {
                out.push(b',');
            }
            crate::compact_json::push_member(out, key, value);
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

// ---- shared texts -----------------------------------------------------------------------------
//
// Meta keys repeat in every flow, and long values repeat across flows too: the same client
// software sends the same algorithm lists and fingerprints, the same servers the same banners.
// A frozen map refers to such a text by number in one table for the process, counted, and the
// text leaves the table with its last reference. A text is shared from its second sighting
// (the first only leaves its hash behind), so texts that never repeat (heads, names) cost no
// table entry.

/// Values at least this long may be shared (keys of any length).
const SHARE_MIN_LEN: usize = 16;
/// Longer texts stay in their flow's buffer.
const SHARE_MAX_LEN: usize = 4096;
/// Texts in the table at most, and their bytes: past either, texts stay in their buffers.
pub const MAX_SHARED_TEXTS: usize = 1 << 16;
pub const MAX_SHARED_BYTES: usize = 8 << 20;
/// Hashes of texts seen once remembered at most (forgotten all at once when full).
const MAX_SEEN_ONCE: usize = 1 << 15;

struct Shared {
    /// By id: the text and its references.
    texts: Vec<Option<(Box<str>, u32)>>,
    /// Ids by the hash of their text.
    index: HashTable<u32>,
    free: Vec<u32>,
    bytes: usize,
    seen_once: HashSet<u64>,
    /// Keyed at random per process: crafted texts cannot be made to collide.
    hasher: foldhash::fast::RandomState,
}

/// Read-locked by the maps' readers (a record's JSON on the analysing thread, the policy's
/// look-ups on Python's), which then do not wait for each other; write-locked to share or
/// release a text.
static SHARED: LazyLock<RwLock<Shared>> = LazyLock::new(|| {
    RwLock::new(Shared {
        texts: Vec::new(),
        index: HashTable::new(),
        free: Vec::new(),
        bytes: 0,
        seen_once: HashSet::new(),
        hasher: foldhash::fast::RandomState::default(),
    })
});

/// The table (a panic elsewhere while it was held leaves it consistent: every change to it is
/// a few plain steps).
fn shared() -> RwLockWriteGuard<'static, Shared> {
    SHARED.write().unwrap_or_else(|e| e.into_inner())
}

/// The table, to read texts by id.
fn shared_read() -> RwLockReadGuard<'static, Shared> {
    SHARED.read().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn text(&self, id: u32) -> Option<&str> {
        let (text, _) = self.texts.get(usize::try_from(id).ok()?)?.as_ref()?;
        Some(text)
    }

    /// A counted reference to `text`, or None to keep it in the buffer.
    fn share(&mut self, text: &str) -> Option<u32> {
        if text.len() > SHARE_MAX_LEN {
            return None;
        }
        let hash = self.hasher.hash_one(text);
        let Shared {
            texts,
            index,
            free,
            bytes,
            seen_once,
            hasher,
        } = self;
        let found = index
            .find(hash, |&id| {
                usize::try_from(id)
                    .ok()
                    .and_then(|i| texts.get(i))
                    .and_then(|e| e.as_ref())
                    .is_some_and(|(t, _)| &**t == text)
            })
            .copied();
        if let Some(id) = found {
            let (_, refs) = texts.get_mut(usize::try_from(id).ok()?)?.as_mut()?;
            *refs = refs.checked_add(1)?;
            return Some(id);
        }
        if !seen_once.remove(&hash) {
            if seen_once.len() >= MAX_SEEN_ONCE {
                seen_once.clear();
            }
            seen_once.insert(hash);
            return None;
        }
        let live = texts.len() - free.len();
        if live >= MAX_SHARED_TEXTS || *bytes + text.len() > MAX_SHARED_BYTES {
            return None;
        }
        let id = match free.pop() {
            Some(id) => id,
            None => {
                texts.push(None);
                u32::try_from(texts.len() - 1).ok()?
            }
        };
        *texts.get_mut(usize::try_from(id).ok()?)? = Some((text.into(), 1));
        *bytes += text.len();
        index.insert_unique(hash, id, |&i| {
            let t = usize::try_from(i)
                .ok()
                .and_then(|i| texts.get(i))
                .and_then(|e| e.as_ref())
                .map_or("", |(t, _)| &**t);
            hasher.hash_one(t)
        });
        Some(id)
    }

    /// One reference to `id` fewer; the text goes with its last.
    fn release(&mut self, id: u32) {
        let Some(Some((text, refs))) = usize::try_from(id).ok().and_then(|i| self.texts.get_mut(i))
        else {
            return;
        };
        *refs = refs.saturating_sub(1);
        if *refs > 0 {
            return;
        }
        let hash = self.hasher.hash_one(&**text);
        self.bytes = self.bytes.saturating_sub(text.len());
        if let Ok(entry) = self.index.find_entry(hash, |&i| i == id) {
            entry.remove();
        }
        if let Some(slot) = usize::try_from(id).ok().and_then(|i| self.texts.get_mut(i)) {
            *slot = None;
        }
        self.free.push(id);
    }
}

/// References to `text` in the shared table (None: not in it).
#[cfg(test)]
fn refs_of(text: &str) -> Option<u32> {
    let s = shared_read();
    s.texts
        .iter()
        .flatten()
        .find(|(t, _)| &**t == text)
        .map(|(_, refs)| *refs)
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

// ---- encoding ---------------------------------------------------------------------------------
//
// map    := count entry*            entry := key value
// key    := varint (length << 1), UTF-8 bytes | varint (shared id << 1 | 1)
// value  := NULL | FALSE | TRUE | UINT varint | INT i64-le | FLOAT f64-le | STR text
//         | SHARED varint id | HEX varint n, n bytes (a lowercase hex text of 2n digits)
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
const SHARED_TEXT: u8 = 9;
const HEX: u8 = 10;

/// Hex texts shorter than this are kept as text (a head of bytes or a digest is 32 or more).
const HEX_MIN_LEN: usize = 16;

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

fn value_depth_ok(v: &Value, depth: usize) -> bool {
    match v {
        Value::Array(items) => {
            depth < MAX_FROZEN_DEPTH && items.iter().all(|i| value_depth_ok(i, depth + 1))
        }
        Value::Object(map) => depth < MAX_FROZEN_DEPTH && depth_ok(map.values(), depth + 1),
        _ => true,
    }
}

/// Writes a frozen map; `table`: the shared texts, None to keep every text in the buffer.
struct Encoder<'o, 't> {
    out: &'o mut Vec<u8>,
    table: Option<&'t mut Shared>,
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

    fn entry(&mut self, k: &str, v: &Value) {
        self.key(k);
        self.value(v);
    }

    fn key(&mut self, k: &str) {
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
pub struct ValueWriter<'e, 'o, 't>(&'e mut Encoder<'o, 't>);

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
fn encode(map: &Meta, share: bool) -> Option<Box<[u8]>> {
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
fn written(write: impl FnOnce(&mut Vec<u8>)) -> Box<[u8]> {
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

/// Reads a buffer `encode` wrote (this module's own bytes, never input from outside; still
/// checked, and a short or odd buffer ends the decoding rather than panicking).
struct Reader<'a, 't> {
    bytes: &'a [u8],
    at: usize,
    /// The shared texts, to resolve references (None: walking only).
    table: Option<&'t Shared>,
}

impl<'a, 't> Reader<'a, 't> {
    fn new(bytes: &'a [u8], table: Option<&'t Shared>) -> Self {
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
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.bytes.len().saturating_sub(self.at)).then_some(n)
    }

    fn map(&mut self, depth: usize) -> Option<Meta> {
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

    fn value(&mut self, depth: usize) -> Option<Value> {
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

    /// A map's entries as JSON (`"key":value`, comma-separated, no braces), as
    /// `compact_json::push_value` writes the decoded map's.
    fn json_entries(&mut self, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        for i in 0..self.count()? {
            if i > 0 {
                out.push(b',');
            }
            crate::compact_json::push_str(out, self.key_text()?);
            out.push(b':');
            self.json_value(depth, out)?;
        }
        Some(())
    }

    /// One value as JSON, as `compact_json::push_value` writes the value `value` decodes.
    fn json_value(&mut self, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        use crate::compact_json::{push_number, push_str};
        match self.byte()? {
            NULL => out.extend_from_slice(b"null"),
            FALSE => out.extend_from_slice(b"false"),
            TRUE => out.extend_from_slice(b"true"),
            UINT => push_number(out, &self.varint()?.into()),
            INT => push_number(out, &i64::from_le_bytes(self.fixed8()?).into()),
            FLOAT => push_number(out, &Number::from_f64(f64::from_le_bytes(self.fixed8()?))?),
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
                        out.push(b',');
                    }
                    self.json_value(depth + 1, out)?;
                }
                out.push(b']');
            }
            OBJECT if depth < MAX_FROZEN_DEPTH => {
                out.push(b'{');
                self.json_entries(depth + 1, out)?;
                out.push(b'}');
            }
            _ => return None,
        }
        Some(())
    }

    /// Step over a map, handing `ids` the shared ids it refers to.
    fn walk_map<F: FnMut(u32)>(&mut self, depth: usize, ids: &mut F) -> Option<()> {
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

fn decode(bytes: &[u8]) -> Meta {
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
fn frozen_value(bytes: &[u8], key: &str) -> Option<Value> {
    let table = shared_read();
    seek(bytes, &table, key)?.value(0)
}

fn frozen_has_key(bytes: &[u8], key: &str) -> bool {
    seek(bytes, &shared_read(), key).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_keeps_the_place_and_replaces_a_key_of_the_new_name() {
        let mut m = Meta::new();
        m.insert("a".into(), 1.into());
        m.insert("b".into(), 2.into());
        m.insert("c".into(), 3.into());
        m.rename("b", "b_server".into());
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b_server", "c"]);
        m.rename("a", "c".into());
        assert_eq!(m.get("c"), Some(&Value::from(1)));
        assert_eq!(m.len(), 2);
        m.rename("absent", "a".into());
        assert_eq!(m.len(), 2);
    }

    fn sample() -> Meta {
        let v = json!({
            "hassh_algorithms": "curve25519-sha256,ecdh-sha2-nistp256;aes128-ctr;hmac-sha2-256;none",
            "zero": 0, "big": u64::MAX, "neg": -5, "min": i64::MIN,
            "float": 1.0, "third": 1.0 / 3.0, "tiny": 5e-324, "negf": -0.0,
            "t": true, "f": false, "null": null, "empty": "", "unicode": "é\u{0}ü",
            "answers": ["a", 1, [2, [3]], {"x": {"y": null}}],
            "entropy_client": {"bytes": 12, "entropy": 7.25, "printable": 0.5},
            "obj_empty": {}, "arr_empty": [],
        });
        let Value::Object(map) = v else {
            unreachable!()
        };
        map.into()
    }

    #[test]
    fn literal_names_are_borrowed_and_thawed_names_kept_once() {
        let mut m = Meta::new();
        m.insert("meta_static_key_test".into(), json!(1));
        m.insert(format!("meta_static_key_{}", "made").into(), json!(2));
        assert!(matches!(m.0[0].0, Cow::Borrowed(_)));
        assert!(matches!(m.0[1].0, Cow::Owned(_)));
        // Two thaws of the map name each fact with one kept copy, borrowed.
        let (a, b) = (frozen(&m).to_meta(), frozen(&m).to_meta());
        assert_eq!(a, m);
        for i in 0..2 {
            let (Cow::Borrowed(x), Cow::Borrowed(y)) = (&a.0[i].0, &b.0[i].0) else {
                panic!("a thawed name is borrowed");
            };
            assert!(std::ptr::eq(*x, *y));
        }
    }

    #[test]
    fn facts_appended_together_end_as_appended_one_by_one() {
        let mut base = Meta::new();
        base.insert("meta_batch_a".into(), json!("x"));
        let extra = || {
            vec![
                (Key::from("meta_batch_b"), json!(2)),
                (Key::from("meta_batch_c"), json!(["y", {"z": 1}])),
            ]
        };
        let mut one_by_one = frozen(&base);
        for (k, v) in extra() {
            one_by_one.insert_new(k, v);
        }
        let mut together = frozen(&base);
        together.insert_new_all(extra());
        assert!(together.is_frozen() && one_by_one.is_frozen());
        let keys = |m: &FlowMeta| m.to_meta().keys().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            keys(&together),
            ["meta_batch_a", "meta_batch_b", "meta_batch_c"]
        );
        assert_eq!(together.to_meta(), one_by_one.to_meta());
        // A value nested past the bound: none is appended when the tail joins the buffer, the
        // map thaws and takes them all.
        let mut deep = json!(1);
        for _ in 0..=MAX_FROZEN_DEPTH {
            deep = json!([deep]);
        }
        let mut thawed = frozen(&base);
        thawed.insert_new_all(vec![
            ("meta_batch_b".into(), json!(2)),
            ("meta_batch_d".into(), deep.clone()),
        ]);
        thawed.freeze();
        assert!(!thawed.is_frozen());
        assert_eq!(
            keys(&thawed),
            ["meta_batch_a", "meta_batch_b", "meta_batch_d"]
        );
        assert_eq!(thawed.get("meta_batch_d"), Some(&deep));
    }

    #[test]
    fn kept_names_are_bounded() {
        let mut kept = KeySet::default();
        let first = keep_name(&mut kept, "one", 2).unwrap();
        assert!(std::ptr::eq(first, keep_name(&mut kept, "one", 2).unwrap()));
        assert_eq!(keep_name(&mut kept, "two", 2), Some("two"));
        assert_eq!(
            keep_name(&mut kept, "three", 2),
            None,
            "past the bound: copied, not kept"
        );
        assert_eq!(
            keep_name(&mut kept, "two", 2),
            Some("two"),
            "a kept name is still found"
        );
        assert_eq!(kept.len(), 2);
        let long = "n".repeat(MAX_STATIC_KEY_LEN + 1);
        assert_eq!(
            keep_name(&mut KeySet::default(), &long, 2),
            None,
            "too long to keep"
        );
        let longest = "n".repeat(MAX_STATIC_KEY_LEN);
        assert!(keep_name(&mut KeySet::default(), &longest, 2).is_some());
    }

    #[test]
    fn meta_keeps_the_order_serde_json_map_keeps() {
        // Outputs show key order: inserting, replacing and removing must leave a Meta in the
        // order serde_json's map (preserve_order) would have.
        let mut meta = Meta::new();
        let mut map = Map::new();
        for k in ["a", "b", "c", "d", "e"] {
            meta.insert(k.into(), json!(k));
            map.insert(k.into(), json!(k));
        }
        meta.insert("b".into(), json!(2));
        map.insert("b".into(), json!(2));
        assert_eq!(meta.remove("b"), map.remove("b"));
        assert_eq!(meta.remove("zz"), map.remove("zz"));
        let keys = |m: &Meta| m.keys().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(keys(&meta), map.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&meta), ["a", "e", "c", "d"]);
        assert_eq!(meta, map);
        let round: Meta = Value::from(meta.clone())
            .as_object()
            .cloned()
            .unwrap()
            .into();
        assert_eq!(keys(&round), keys(&meta));
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
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
        let cached = |m: &FlowMeta| m.frozen.as_ref().is_some_and(|f| f.read.get().is_some());
        assert!(cached(&m));
        // Freezing again drops the copy.
        m.freeze();
        assert!(m.is_frozen() && !cached(&m));
        assert_eq!(m.to_meta(), map);
        // A new key goes to the tail: the map stays frozen, in insertion order.
        m.insert("segment".into(), 2.into());
        m.set_default("zero", 9.into());
        m.set_default("later", "x".into());
        assert!(m.is_frozen());
        let mut expected = map.clone();
        expected.insert("segment".into(), 2.into());
        expected.insert("later".into(), "x".into());
        assert_eq!(m.to_meta(), expected);
        assert_eq!(m.len(), expected.len());
        // A key of the tail is set in its place there.
        m.insert("segment".into(), 3.into());
        expected.insert("segment".into(), 3.into());
        assert!(m.is_frozen() && m.would_shrink());
        assert_eq!(m.to_meta(), expected);
        // Freezing appends the tail to the buffer.
        m.freeze();
        assert!(m.is_frozen() && !m.would_shrink());
        assert_eq!(m.to_meta(), expected);
        // A key the buffer has is set in its place in the thawed map, for good; then it
        // behaves as the map does.
        m.insert("segment".into(), 4.into());
        assert!(!m.is_frozen());
        expected.insert("segment".into(), 4.into());
        assert_eq!(*m, expected);
        m.remove("zero");
        expected.remove("zero");
        assert_eq!(m.take(), expected);
        assert!(m.is_empty());
    }

    /// A map's JSON from its buffer and tail is the decoded map's, byte for byte (what the
    /// record writers and `_core.Meta.json()` hand out), without decoding it.
    #[test]
    fn a_frozen_maps_json_is_the_decoded_maps() {
        let json_of = |m: &FlowMeta| {
            let mut out = Vec::new();
            m.push_json(&mut out);
            out
        };
        let want = |m: &Meta| serde_json::to_vec(&Value::from(m.clone())).unwrap();
        let mut map = sample();
        // Texts shared from their second sighting, and hex packed to bytes.
        map.insert(
            "meta_json_shared_text".into(),
            "a text long enough to be shared".into(),
        );
        map.insert("digest".into(), "00ff10a0b0c0d0e0f0a1b2c3d4e5f607".into());
        map.insert("esc\"aped\u{1}".into(), "tab\there \"quoted\"".into());
        let _first_sighting = frozen(&map);
        let mut m = frozen(&map);
        assert!(m.frozen.as_ref().is_some_and(|f| f.read.get().is_none()));
        assert_eq!(json_of(&m), want(&map));
        assert!(
            m.frozen.as_ref().is_some_and(|f| f.read.get().is_none()),
            "no decoded copy made"
        );
        assert_eq!(m.len(), map.len());
        // With a tail: its entries after the buffer's, replaced in place.
        m.set_default("end_reason", "idle".into());
        m.insert(
            "shape".into(),
            json!({"sizes": [1, -2], "iat_ms": [0.5, 12.125]}),
        );
        m.insert("end_reason".into(), "end".into());
        map.insert("end_reason".into(), "end".into());
        map.insert(
            "shape".into(),
            json!({"sizes": [1, -2], "iat_ms": [0.5, 12.125]}),
        );
        assert!(m.is_frozen());
        assert_eq!(json_of(&m), want(&map));
        assert_eq!(m.len(), map.len());
        // Live, empty, and frozen with an empty buffer's worth: the same writer's output.
        assert_eq!(json_of(&FlowMeta::from(map.clone())), want(&map));
        assert_eq!(json_of(&FlowMeta::new()), b"{}");
        let mut tail_only = frozen(&Meta::from_iter([(Key::from("a"), json!(1))]));
        tail_only.insert("b".into(), json!([]));
        assert_eq!(json_of(&tail_only), br#"{"a":1,"b":[]}"#);
        // A buffer that is not one `encode` wrote gives nothing of it, as decoding does.
        let mut bad = frozen(&Meta::from_iter([(Key::from("a"), json!("x"))]));
        if let Some(f) = bad.frozen.as_mut() {
            f.bytes = Box::new([1, 2, 0xff]);
        }
        bad.insert("b".into(), json!(2));
        assert_eq!(json_of(&bad), br#"{"b":2}"#);
        assert_eq!(bad.to_meta(), Meta::from_iter([(Key::from("b"), json!(2))]));
    }

    #[test]
    fn a_written_value_reads_back_or_is_refused() {
        let v = written_value(|w| {
            w.object(2);
            w.key("sizes");
            w.array(3);
            w.int(-5);
            w.int(7);
            w.uint(u64::MAX);
            w.key("gap");
            w.float(f64::INFINITY);
        });
        assert_eq!(v, Some(json!({"sizes": [-5, 7, u64::MAX], "gap": null})));
        // A length stated wrongly, either way: nothing rather than a value cut or run over.
        assert_eq!(
            written_value(|w| {
                w.array(2);
                w.uint(1);
            }),
            None
        );
        assert_eq!(
            written_value(|w| {
                w.array(1);
                w.uint(1);
                w.uint(2);
            }),
            None
        );
    }

    #[test]
    fn value_of_a_frozen_map_reads_one_value_and_decodes_no_copy() {
        let map = sample();
        let m = frozen(&map);
        for (k, v) in &map {
            assert_eq!(m.value_of(k).as_deref(), Some(v), "{k}");
        }
        assert!(m.value_of("missing").is_none());
        assert!(!m.would_shrink(), "no decoded copy kept");
        // With a decoded copy, and live, the same answers.
        let _ = m.get("zero");
        assert!(m.would_shrink());
        let live = FlowMeta::from(map.clone());
        for (k, v) in &map {
            assert_eq!(m.value_of(k).as_deref(), Some(v), "{k}");
            assert_eq!(live.value_of(k).as_deref(), Some(v), "{k}");
        }
        assert!(FlowMeta::new().value_of("zero").is_none());
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
    fn repeated_texts_are_shared_from_the_second_sighting_and_leave_with_the_last() {
        // Texts no other test uses (the table is the process's).
        let long = "curve25519-sha256,test-only-kex-for-meta-sharing@example.org";
        let key = "meta_sharing_test_key";
        let digest = "0123456789abcdef0123456789abcdef";
        let one = || {
            let mut m = Meta::new();
            m.insert(key.into(), long.into());
            m.insert("meta_sharing_digest".into(), digest.into());
            m.insert("meta_sharing_short".into(), "short".into());
            m
        };
        let first = frozen(&one());
        assert_eq!(refs_of(long), None);
        assert_eq!(refs_of(key), None);
        let second = frozen(&one());
        let third = frozen(&one());
        assert_eq!(refs_of(long), Some(2));
        assert_eq!(refs_of(key), Some(2));
        assert_eq!(refs_of(digest), Some(2));
        assert_eq!(refs_of("short"), None);
        // The first copy holds the texts itself (the digest as 16 bytes), the others refer.
        assert!(first.frozen_len() > long.len() + 16);
        assert!(second.frozen_len() < 48);
        for m in [&first, &second, &third] {
            assert_eq!(m.to_meta(), one());
            assert!(m.contains_key(key) && m.contains_key("meta_sharing_short"));
            assert!(!m.contains_key(long));
        }
        let mut second = second;
        assert_eq!(second.take(), one());
        assert_eq!(refs_of(long), Some(1));
        drop(third);
        assert_eq!(refs_of(long), None);
        assert_eq!(refs_of(key), None);
        assert_eq!(first.to_meta(), one());
    }

    #[test]
    fn facts_appended_to_a_frozen_map_hold_their_shared_texts_once() {
        // Texts no other test uses (the table is the process's).
        let long = "test-only-appended-text-for-meta-sharing@example.org";
        let key = "meta_append_test_key";
        let base = || {
            let mut m = Meta::new();
            m.insert("meta_append_base".into(), long.into());
            m
        };
        let (mut a, mut b) = (frozen(&base()), frozen(&base()));
        assert_eq!(refs_of(long), Some(1), "shared from the second sighting");
        a.insert_new(key.into(), long.into());
        b.insert(key.into(), json!([long, {"deep": long}]));
        // Counted once in the buffer (the tail holds the texts themselves until then).
        a.freeze();
        b.freeze();
        assert!(a.is_frozen() && b.is_frozen());
        assert_eq!(refs_of(long), Some(4));
        assert_eq!(refs_of(key), Some(1));
        let mut want = base();
        want.insert(key.into(), long.into());
        assert_eq!(a.to_meta(), want);
        // a's base holds the text itself (its first sighting), as a's key does.
        drop(a);
        assert_eq!(refs_of(long), Some(3));
        assert_eq!(refs_of(key), Some(1));
        drop(b);
        assert_eq!(refs_of(long), None);
        assert_eq!(refs_of(key), None);
        // A value nested past the bound thaws the map instead when the tail joins the buffer.
        let mut c = frozen(&base());
        let mut deep = json!(1);
        for _ in 0..=MAX_FROZEN_DEPTH {
            deep = json!([deep]);
        }
        c.insert_new("deep".into(), deep.clone());
        assert_eq!(c.value_of("deep").as_deref(), Some(&deep));
        c.freeze();
        assert!(!c.is_frozen());
        assert_eq!(c.get("deep"), Some(&deep));
    }

    #[test]
    fn hex_texts_pack_to_bytes_and_come_back_the_same() {
        let mut m = Meta::new();
        for (i, text) in [
            "00ff10a0b0c0d0e0f0",
            "0123456789abcdeF01",
            "0123456789abcdef0",
            "0123456789abcde",
            "zz23456789abcdef01",
        ]
        .iter()
        .enumerate()
        {
            m.insert(format!("h{i}").into(), (*text).into());
        }
        let bytes = encode(&m, false).unwrap();
        assert_eq!(Reader::new(&bytes, None).map(0).unwrap(), m);
    }

    #[test]
    fn a_cut_or_odd_buffer_never_panics() {
        let out = encode(&sample(), false).unwrap();
        for cut in 0..out.len() {
            let _ = decode(&out[..cut]);
            let _ = frozen_has_key(&out[..cut], "third");
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
