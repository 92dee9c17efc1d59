//! The first datagrams of one direction of a UDP flow, kept for detection.
//!
//! Their bytes lie end to end in one allocation, with where each ends beside them. A list of
//! vectors took an allocation per datagram and one more for the list (room for four, 96
//! bytes): most of a DNS flow's memory while it is inspected, and a busy resolver's link holds
//! tens of thousands of such flows at once.
#![forbid(unsafe_code)]

use super::slot::MAX_UDP_UNITS;

/// A datagram is kept up to this many bytes.
pub const UNIT_BYTES: usize = 4096;

// Every end offset fits the u16 it is kept in.
const _: () = assert!(MAX_UDP_UNITS * UNIT_BYTES <= u16::MAX as usize);

#[derive(Debug, Default)]
pub struct Datagrams {
    bytes: Vec<u8>,
    ends: [u16; MAX_UDP_UNITS],
    count: u8,
}

impl Datagrams {
    /// Datagrams kept.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// No more are kept.
    pub fn is_full(&self) -> bool {
        self.len() >= MAX_UDP_UNITS
    }

    /// Bytes kept, all datagrams.
    pub fn held_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Keep `payload`'s first `UNIT_BYTES` bytes as the next datagram; false when full.
    pub fn push(&mut self, payload: &[u8]) -> bool {
        if self.is_full() {
            return false;
        }
        let kept = payload.get(..UNIT_BYTES).unwrap_or(payload);
        let Ok(end) = u16::try_from(self.bytes.len() + kept.len()) else {
            return false;
        };
        // Exactly the room needed: a flow keeps at most four, and a doubled vector's slack
        // would be a third of what it holds.
        self.bytes.reserve_exact(kept.len());
        self.bytes.extend_from_slice(kept);
        self.ends[self.len()] = end;
        self.count += 1;
        true
    }

    /// The datagrams in the order they came.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let ends = &self.ends[..self.len()];
        let starts = std::iter::once(0).chain(ends.iter().copied());
        starts.zip(ends.iter().copied()).map(|(s, e)| {
            self.bytes
                .get(usize::from(s)..usize::from(e))
                .unwrap_or(&[])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_come_back_whole_and_in_order() {
        let mut d = Datagrams::default();
        assert!(d.is_empty() && d.iter().next().is_none());
        assert!(d.push(b"query"));
        assert!(d.push(b""));
        assert!(d.push(b"answer"));
        let got: Vec<&[u8]> = d.iter().collect();
        assert_eq!(got, [&b"query"[..], b"", b"answer"]);
        assert_eq!((d.len(), d.held_bytes()), (3, 11));
    }

    #[test]
    fn at_most_four_are_kept_each_cut_to_its_bound() {
        let mut d = Datagrams::default();
        let big = vec![7u8; UNIT_BYTES + 100];
        for _ in 0..MAX_UDP_UNITS {
            assert!(d.push(&big));
        }
        assert!(d.is_full());
        assert!(!d.push(b"one more"));
        assert_eq!(d.len(), MAX_UDP_UNITS);
        assert!(d
            .iter()
            .all(|u| u.len() == UNIT_BYTES && u.iter().all(|&b| b == 7)));
        assert_eq!(d.held_bytes(), MAX_UDP_UNITS * UNIT_BYTES);
    }
}
