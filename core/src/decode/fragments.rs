//! Bounded IPv4/IPv6 fragment reassembly (Python's `fragments.Defragmenter`, with its missing
//! bounds added).
//!
//! Each pending datagram holds one buffer of at most `MAX_DATAGRAM` bytes and a bit per byte
//! saying which bytes a piece has filled, so a fragment costs work in its own length and an
//! overlapping flood cannot make a datagram hold more than one datagram's worth (Python kept
//! every piece and re-sorted and re-copied them all on each one). Pending datagrams are bounded
//! in number, in total bytes held and in capture time; every datagram dropped is counted.

use std::collections::{HashMap, VecDeque};

use super::walk::FragKey;

/// The IP limit on a datagram's payload, as Python checks it.
pub(crate) const MAX_DATAGRAM: usize = 65535;
pub(crate) const MAX_PENDING: usize = 1024;
/// Capture seconds a datagram may wait for its missing pieces.
pub(crate) const TIMEOUT: f64 = 30.0;
/// Bytes all pending datagrams may hold together (buffers and bitmaps).
pub(crate) const MAX_HELD_BYTES: usize = 16 << 20;
/// One bit per 8-byte unit a piece may start at (fragment offsets count in 8-byte units).
const OFFSET_WORDS: usize = (MAX_DATAGRAM / 8 + 1).div_ceil(64);
/// What a pending datagram costs besides its buffers (entry, key, order slot), as an estimate.
const ENTRY_OVERHEAD: usize = 128;

struct Pending {
    id: u64,
    first_ts: f64,
    /// Known once the last fragment (MF clear) arrives.
    total: Option<usize>,
    max_end: usize,
    covered: usize,
    data: Vec<u8>,
    filled: Vec<u64>,
    /// Offsets pieces started at: a second piece at the same offset is ignored whole, as
    /// Python's pieces dict (keyed by offset) ignores it.
    starts: Vec<u64>,
}

impl Pending {
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD
            + self.data.capacity()
            + 8 * (self.filled.capacity() + self.starts.capacity())
    }

    /// Copies the bytes of `piece` no earlier piece filled (the first copy wins).
    fn write(&mut self, offset: usize, piece: &[u8]) {
        let end = offset + piece.len();
        if self.data.len() < end {
            self.data.reserve_exact(end - self.data.len());
            self.data.resize(end, 0);
            let words = end.div_ceil(64);
            self.filled
                .reserve_exact(words.saturating_sub(self.filled.len()));
            self.filled.resize(words, 0);
        }
        for (i, &byte) in (offset..end).zip(piece) {
            let (word, bit) = (i / 64, 1u64 << (i % 64));
            let (Some(w), Some(slot)) = (self.filled.get_mut(word), self.data.get_mut(i)) else {
                continue;
            };
            if *w & bit == 0 {
                *w |= bit;
                *slot = byte;
                self.covered += 1;
            }
        }
        self.max_end = self.max_end.max(end);
    }
}

pub(crate) enum Added {
    Held,
    /// The whole transport payload, once every byte up to the last fragment's end is there.
    Complete(Vec<u8>),
}

pub(crate) struct Defragmenter {
    pending: HashMap<FragKey, Pending>,
    /// Keys in arrival order of their first fragment, for expiry and eviction; an entry no
    /// longer pending (or pending under a newer id) is skipped when met.
    order: VecDeque<(FragKey, u64)>,
    next_id: u64,
    held: usize,
    pub dropped: u64,
    pub overlaps: u64,
}

impl Defragmenter {
    pub(crate) fn new() -> Self {
        Defragmenter {
            pending: HashMap::new(),
            order: VecDeque::new(),
            next_id: 0,
            held: 0,
            dropped: 0,
            overlaps: 0,
        }
    }

    /// Bytes held by pending datagrams.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Adds one fragment's payload; the whole transport payload once complete.
    pub(crate) fn add(
        &mut self,
        key: FragKey,
        offset: usize,
        more: bool,
        data: &[u8],
        ts: f64,
    ) -> Added {
        self.expire(ts);
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= MAX_PENDING {
                self.drop_oldest(None);
            }
            let id = self.next_id;
            self.next_id += 1;
            let entry = Pending {
                id,
                first_ts: ts,
                total: None,
                max_end: 0,
                covered: 0,
                data: Vec::new(),
                filled: Vec::new(),
                starts: vec![0; OFFSET_WORDS],
            };
            self.held += entry.cost();
            self.pending.insert(key, entry);
            self.order.push_back((key, id));
        }
        let Some(entry) = self.pending.get_mut(&key) else {
            return Added::Held;
        };
        let end = offset.saturating_add(data.len());
        if end > MAX_DATAGRAM || entry.total.is_some_and(|t| end > t) {
            self.drop(&key);
            return Added::Held;
        }
        if !more {
            // A piece already beyond the end this one declares: the datagram is inconsistent
            // (Python let such a piece lengthen the reassembled datagram).
            if entry.total.is_some_and(|t| t != end) || entry.max_end > end {
                self.drop(&key);
                return Added::Held;
            }
            entry.total = Some(end);
        }
        let (word, bit) = (offset / 8 / 64, 1u64 << (offset / 8 % 64));
        match entry.starts.get_mut(word) {
            Some(w) if *w & bit == 0 => *w |= bit,
            _ => {
                self.overlaps += 1;
                return Added::Held;
            }
        }
        let before = entry.cost();
        entry.write(offset, data);
        self.held = self.held + entry.cost() - before;
        if entry.total == Some(entry.covered) {
            if let Some(mut done) = self.pending.remove(&key) {
                self.held -= done.cost();
                done.data.truncate(done.covered);
                return Added::Complete(done.data);
            }
        }
        while self.held > MAX_HELD_BYTES && self.drop_oldest(Some(&key)) {}
        Added::Held
    }

    fn drop(&mut self, key: &FragKey) {
        if let Some(entry) = self.pending.remove(key) {
            self.held -= entry.cost();
            self.dropped += 1;
        }
    }

    fn is_live(&self, key: &FragKey, id: u64) -> bool {
        self.pending.get(key).is_some_and(|e| e.id == id)
    }

    /// Drops the datagram that started first (but not `keep`); false when there is none.
    fn drop_oldest(&mut self, keep: Option<&FragKey>) -> bool {
        let mut kept = None;
        let mut found = false;
        while let Some((key, id)) = self.order.pop_front() {
            if !self.is_live(&key, id) {
                continue;
            }
            if Some(&key) == keep {
                kept = Some((key, id));
                continue;
            }
            self.drop(&key);
            found = true;
            break;
        }
        if let Some(k) = kept {
            self.order.push_front(k);
        }
        found
    }

    /// Drops datagrams not completed within `TIMEOUT` of their first fragment (capture time).
    fn expire(&mut self, now: f64) {
        while let Some(&(key, id)) = self.order.front() {
            match self.pending.get(&key) {
                Some(e) if e.id == id => {
                    if now - e.first_ts > TIMEOUT {
                        self.drop(&key);
                    } else {
                        break;
                    }
                }
                _ => {}
            }
            self.order.pop_front();
        }
        // Completed datagrams leave their slots behind: sweep them out once they outnumber
        // the live ones, so the queue stays in proportion to what is pending.
        if self.order.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.order
                .retain(|(k, id)| pending.get(k).is_some_and(|e| e.id == *id));
        }
    }
}
