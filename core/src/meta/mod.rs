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
use std::sync::{LazyLock, Mutex};

use hashbrown::HashSet;
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

mod flow_meta;
mod format;
pub mod python_json;
mod reader;
mod texts;
mod writer;

pub use flow_meta::{FlowMeta, MAX_FROZEN_DEPTH};
pub use texts::{MAX_SHARED_BYTES, MAX_SHARED_TEXTS};
pub use writer::{written_value, ValueWriter};

#[cfg(test)]
mod tests;
