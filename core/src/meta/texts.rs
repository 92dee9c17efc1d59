//! Texts that repeat across flows, kept once for the process and referred to by number.
use std::hash::BuildHasher;
use std::sync::{LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::{HashSet, HashTable};

//
// Meta keys repeat in every flow, and long values repeat across flows too: the same client
// software sends the same algorithm lists and fingerprints, the same servers the same banners.
// A frozen map refers to such a text by number in one table for the process, counted, and the
// text leaves the table with its last reference. A text is shared from its second sighting
// (the first only leaves its hash behind), so texts that never repeat (heads, names) cost no
// table entry.

/// Values at least this long may be shared (keys of any length).
pub(super) const SHARE_MIN_LEN: usize = 16;
/// Longer texts stay in their flow's buffer.
const SHARE_MAX_LEN: usize = 4096;
/// Texts in the table at most, and their bytes: past either, texts stay in their buffers.
pub const MAX_SHARED_TEXTS: usize = 1 << 16;
pub const MAX_SHARED_BYTES: usize = 8 << 20;
/// Hashes of texts seen once remembered at most (forgotten all at once when full).
const MAX_SEEN_ONCE: usize = 1 << 15;

pub(super) struct Shared {
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
pub(super) fn shared() -> RwLockWriteGuard<'static, Shared> {
    SHARED.write().unwrap_or_else(|e| e.into_inner())
}

/// The table, to read texts by id.
pub(super) fn shared_read() -> RwLockReadGuard<'static, Shared> {
    SHARED.read().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn text(&self, id: u32) -> Option<&str> {
        let (text, _) = self.texts.get(usize::try_from(id).ok()?)?.as_ref()?;
        Some(text)
    }

    /// A counted reference to `text`, or None to keep it in the buffer.
    pub(super) fn share(&mut self, text: &str) -> Option<u32> {
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
    pub(super) fn release(&mut self, id: u32) {
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
pub(super) fn refs_of(text: &str) -> Option<u32> {
    let s = shared_read();
    s.texts
        .iter()
        .flatten()
        .find(|(t, _)| &**t == text)
        .map(|(_, refs)| *refs)
}
