//! The flow table's index: a flow's 32-bit entry by the hash of its canonical key.
//!
//! Open addressing with linear probing over 8-byte cells (the upper half of the key's hash, the
//! entry), at most three quarters full. A general hash table (hashbrown's) answers the same
//! questions, but where a hash's cells lie is its own business; here it is `cell_of`, so the
//! analysis can ask the CPU for them packets ahead (`FlowTable::prefetch`): with tens of
//! thousands of flows open the index is out of the cache as often as the flows are. The hash
//! is keyed per process (`FlowTable`'s hasher), so crafted keys cannot pile onto one run of
//! cells. Removal shifts the run back (no tombstones), so a run never outgrows what it holds.
#![forbid(unsafe_code)]

/// Cells before the first growth.
const MIN_CELLS: usize = 64;

/// A cell: the hash's upper 32 bits (its `tag`) above the entry plus one; 0 is empty.
type Cell = u64;

#[derive(Debug)]
pub struct FlowIndex {
    cells: Vec<Cell>,
    len: usize,
}

impl Default for FlowIndex {
    fn default() -> Self {
        FlowIndex {
            cells: vec![0; MIN_CELLS],
            len: 0,
        }
    }
}

fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

fn cell(tag: u32, entry: u32) -> Cell {
    (u64::from(tag) << 32) | (u64::from(entry) + 1)
}

fn entry_of(c: Cell) -> u32 {
    (c as u32).wrapping_sub(1)
}

impl FlowIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.cells.len() - 1
    }

    /// Where the run of cells for `hash` starts.
    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask()
    }

    /// The first cell a look-up of `hash` reads (for a prefetch).
    pub fn cell_of(&self, hash: u64) -> &u64 {
        &self.cells[self.home(tag(hash))]
    }

    /// The entries whose hash may be `hash` (same tag), in probe order.
    pub fn candidates(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let t = tag(hash);
        let mask = self.mask();
        let mut i = self.home(t);
        std::iter::from_fn(move || loop {
            let c = self.cells[i];
            if c == 0 {
                return None;
            }
            i = (i + 1) & mask;
            if (c >> 32) as u32 == t {
                return Some(entry_of(c));
            }
        })
    }

    /// The entry under `hash` that `is` accepts.
    pub fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        self.candidates(hash).find(|&e| is(e))
    }

    /// The cell under `hash` whose entry `is` accepts.
    fn position(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<usize> {
        let t = tag(hash);
        let mut i = self.home(t);
        loop {
            let c = self.cells[i];
            if c == 0 {
                return None;
            }
            if (c >> 32) as u32 == t && is(entry_of(c)) {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Put `entry` under `hash`, in place of the entry `is` accepts if there is one.
    /// `entry` must be below `u32::MAX`.
    pub fn insert(&mut self, hash: u64, entry: u32, is: impl Fn(u32) -> bool) {
        debug_assert!(entry < u32::MAX);
        if let Some(i) = self.position(hash, is) {
            self.cells[i] = cell(tag(hash), entry);
            return;
        }
        if (self.len + 1) * 4 > self.cells.len() * 3 {
            self.grow();
        }
        self.place(cell(tag(hash), entry));
        self.len += 1;
    }

    /// Into the first empty cell of its run.
    fn place(&mut self, c: Cell) {
        let mut i = self.home((c >> 32) as u32);
        while self.cells[i] != 0 {
            i = (i + 1) & self.mask();
        }
        self.cells[i] = c;
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.cells.len() * 2];
        let old = std::mem::replace(&mut self.cells, doubled);
        for c in old.into_iter().filter(|&c| c != 0) {
            self.place(c);
        }
    }

    /// Take out the entry under `hash` that `is` accepts; whether there was one.
    pub fn remove(&mut self, hash: u64, is: impl Fn(u32) -> bool) -> bool {
        let Some(mut hole) = self.position(hash, is) else {
            return false;
        };
        self.cells[hole] = 0;
        self.len -= 1;
        // Shift back each later cell of the run that may move to the hole: one whose home is
        // not cyclically within (hole, here].
        let mask = self.mask();
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            let c = self.cells[i];
            if c == 0 {
                return true;
            }
            let home = self.home((c >> 32) as u32);
            let stays = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !stays {
                self.cells[hole] = c;
                self.cells[i] = 0;
                hole = i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Hashes whose tags crowd a few homes: half of the keys at the end of the cells, whatever
    /// their number, so runs wrap around to the start, half at the start, where the wrapped
    /// runs pass over them. Distinct per key above bit 16.
    fn crowded(k: u32) -> u64 {
        let low = if k.is_multiple_of(2) {
            0xffff - (k % 5) * 3
        } else {
            (k % 7) * 2
        };
        let tag = low | (k << 16);
        (u64::from(tag) << 32) | u64::from(k)
    }

    /// Every operation checked against a map, over inserts, replaces and removes that make
    /// runs wrap around the end and grow the cells.
    #[test]
    fn answers_as_a_map_does() {
        let mut ix = FlowIndex::default();
        let mut model: HashMap<u32, u32> = HashMap::new(); // key -> entry
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut removed = 0;
        for step in 0..6_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 300) as u32;
            let entry = (x >> 20) as u32 & 0x7fff_ffff;
            // Entries are keyed by `key`: the entry's low bits name it, as a slot names a flow.
            let packed = (entry & !0x3ff) | key;
            let h = crowded(key);
            if (x >> 40).is_multiple_of(3) {
                let had = model.remove(&key).is_some();
                removed += usize::from(had);
                assert_eq!(ix.remove(h, |e| e & 0x3ff == key), had, "step {step}");
            } else {
                ix.insert(h, packed, |e| e & 0x3ff == key);
                model.insert(key, packed);
            }
            assert_eq!(ix.len(), model.len());
            for k in 0..300 {
                let got = ix.find(crowded(k), |e| e & 0x3ff == k);
                assert_eq!(got, model.get(&k).copied(), "step {step} key {k}");
            }
        }
        assert!(ix.cells.len() > MIN_CELLS, "grew");
        assert!(removed > 1000, "{removed}");
        assert!(ix.len() * 4 <= ix.cells.len() * 3);
    }

    /// A hash whose home is cell `home` of 64, with a tag of its own above bit 16.
    fn at(home: u32, n: u32) -> u64 {
        u64::from(home | (n << 16)) << 32
    }

    /// Runs where a later cell's home is the hole itself, across the end of the cells and not:
    /// the entry must move back into its home, and one whose home lies after the hole stays.
    #[test]
    fn a_removal_moves_back_what_its_run_holds() {
        for (homes, gone) in [
            ([5, 6, 5], 0),
            ([63, 0, 63], 0),
            ([62, 63, 0], 1),
            ([0, 1, 0], 1),
        ] {
            let mut ix = FlowIndex::default();
            for (n, h) in homes.iter().enumerate() {
                ix.insert(at(*h, n as u32 + 1), n as u32, |_| false);
            }
            assert!(ix.remove(at(homes[gone], gone as u32 + 1), |e| e == gone as u32));
            for (n, h) in homes.iter().enumerate().filter(|(n, _)| *n != gone) {
                let found = ix.find(at(*h, n as u32 + 1), |e| e == n as u32);
                assert_eq!(found, Some(n as u32), "{homes:?} without {gone}: entry {n}");
            }
            assert_eq!(ix.len(), 2);
        }
    }

    #[test]
    fn candidates_are_the_entries_with_the_hash_tag() {
        let mut ix = FlowIndex::default();
        let same_tag = 7u64 << 32;
        ix.insert(same_tag | 1, 10, |_| false);
        ix.insert(same_tag | 2, 11, |_| false);
        ix.insert(8u64 << 32, 12, |_| false);
        let got: Vec<u32> = ix.candidates(same_tag).collect();
        assert_eq!(got, vec![10, 11]);
        assert_eq!(ix.find(same_tag, |e| e == 11), Some(11));
        assert_eq!(ix.find(9u64 << 32, |_| true), None);
        assert!(std::ptr::eq(ix.cell_of(same_tag), &ix.cells[7]));
        // Entry 0 is a value like any other; only the cell's own 0 means empty.
        ix.insert(9u64 << 32, 0, |_| false);
        assert_eq!(ix.find(9u64 << 32, |_| true), Some(0));
        assert!(ix.remove(9u64 << 32, |e| e == 0));
        assert!(!ix.remove(9u64 << 32, |_| true));
    }
}
