//! Bounded, in-order TCP stream reassembly for one direction of a flow.
//!
//! Only the first `depth` bytes of each direction are kept: detection needs the first bytes, not
//! the bulk. Segments are placed by sequence number relative to the stream start, modulo 2^32 so
//! that wrap-around is invisible. Overlaps: "first copy wins" (Suricata's `first` policy; Ptacek &
//! Newsham: pick one rule and flag disagreements): a segment that covers bytes already received and
//! disagrees with them counts as an anomaly and does not change what the detector sees.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

pub const DEFAULT_DEPTH: usize = 4096;
/// Depth of a stream picked up in its middle (the capture saw no SYN either way): it starts
/// inside a message, so what can be recognised is that message's header (Zeek's
/// `dpd_buffer_size` is 1,024 bytes); 2 KiB still holds an SSH banner and KEXINIT, or most of a
/// ClientHello, for a connection whose first part an idle timeout ended before it said anything.
/// Such flows are most of a long capture's undecided ones, and each waits for its payload-packet
/// budget holding its buffer.
pub const MIDSTREAM_DEPTH: usize = 2048;
/// Out-of-order segments held per direction; beyond it a segment is dropped (a gap).
pub const MAX_PENDING_SEGMENTS: usize = 64;

const HALF: u32 = 1 << 31;

#[derive(Debug, Clone)]
pub struct StreamBuffer {
    /// 32 bits (as `pending_bytes`): a depth is kilobytes, and every inspected TCP direction
    /// carries one of these.
    depth: u32,
    /// Sequence number of stream byte 0.
    base: Option<u32>,
    pub data: Vec<u8>,
    /// Out-of-order pieces by relative offset, kept disjoint (each byte as it first arrived).
    /// Boxed, made at the first such piece: most streams come in order, and every inspected
    /// direction carries the pointer (a map in place took 16 bytes more): the box is for the
    /// map's own 24 bytes, which clippy's `box_collection` does not weigh.
    #[allow(clippy::box_collection)]
    pending: Option<Box<BTreeMap<usize, Vec<u8>>>>,
    pending_bytes: u32,
    pub anomalies: u32,
    /// Segments that could not be placed (buffer full, or beyond depth).
    pub gaps: u32,
}

impl Default for StreamBuffer {
    fn default() -> Self {
        Self::new(DEFAULT_DEPTH)
    }
}

impl StreamBuffer {
    pub fn new(depth: usize) -> Self {
        Self {
            depth: u32::try_from(depth).unwrap_or(u32::MAX),
            base: None,
            data: Vec::new(),
            pending: None,
            pending_bytes: 0,
            anomalies: 0,
            gaps: 0,
        }
    }

    fn depth(&self) -> usize {
        self.depth as usize
    }

    pub fn full(&self) -> bool {
        self.data.len() >= self.depth()
    }

    /// A SYN fixes the stream start: data begins at ISN + 1 (also for data carried on the SYN).
    pub fn syn(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    /// Place a segment; true when the contiguous prefix grew.
    pub fn add(&mut self, seq: u32, payload: &[u8]) -> bool {
        if payload.is_empty() {
            return false;
        }
        let base = *self.base.get_or_insert(seq); // mid-stream pickup: the first data starts the stream
        let mut rel_u = seq.wrapping_sub(base);
        let mut payload = payload;
        if rel_u >= HALF {
            // Before the stream start: keep only the part from offset 0 on.
            let before = (u32::MAX - rel_u) as usize + 1;
            if payload.len() <= before {
                return false;
            }
            payload = &payload[before..];
            rel_u = 0;
        }
        let rel = rel_u as usize;
        if rel >= self.depth() {
            return false;
        }
        let payload = &payload[..payload.len().min(self.depth() - rel)];
        let before = self.data.len();
        if self.pending.is_none() {
            // Nothing held (most segments): at most one new piece, past the bytes taken.
            let conflict = self.conflicts_with_taken(rel, payload);
            self.anomalies += u32::from(conflict);
            let from = rel.max(before);
            if from < rel + payload.len() {
                self.take_piece(from, &payload[from - rel..]);
            }
        } else {
            for (piece_rel, piece) in self.new_pieces(rel, payload) {
                self.take_piece(piece_rel, piece);
            }
        }
        self.data.len() > before
    }

    fn take_piece(&mut self, piece_rel: usize, piece: &[u8]) {
        if piece_rel == self.data.len() {
            self.append(piece); // in order: taken whatever the pending bounds say
            self.drain();
        } else {
            self.hold(piece_rel, piece);
        }
    }

    /// Whether a segment's bytes that overlap the bytes already taken differ from them.
    fn conflicts_with_taken(&self, rel: usize, payload: &[u8]) -> bool {
        let have = self.data.len();
        let end = rel + payload.len();
        // RFC 1122 4.2.3.6: a keep-alive probe resends one garbage octet just below the next
        // sequence number; it disagrees with the stream by design and is no evasion sign.
        if rel < have && !(payload.len() == 1 && end == have) {
            let n = have.min(end) - rel;
            return self.data[rel..rel + n] != payload[..n];
        }
        false
    }

    /// The parts of a segment no earlier segment covered; disagreements count as anomalies. A
    /// later segment that spans held bytes and a gap fills only the gap.
    fn new_pieces<'p>(&mut self, rel: usize, payload: &'p [u8]) -> Vec<(usize, &'p [u8])> {
        let have = self.data.len();
        let end = rel + payload.len();
        let mut conflict = self.conflicts_with_taken(rel, payload);
        let mut pieces = Vec::new();
        let mut pos = rel.max(have);
        let held_pieces = self
            .pending
            .as_deref()
            .into_iter()
            .flat_map(|p| p.range(..end));
        for (&p_rel, held) in held_pieces {
            let p_end = p_rel + held.len();
            if p_end <= pos {
                continue;
            }
            if p_rel > pos {
                pieces.push((pos, &payload[pos - rel..p_rel - rel]));
            }
            let (lo, hi) = (p_rel.max(pos), p_end.min(end));
            if held[lo - p_rel..hi - p_rel] != payload[lo - rel..hi - rel] {
                conflict = true;
            }
            pos = hi;
        }
        if pos < end {
            pieces.push((pos, &payload[pos - rel..]));
        }
        if conflict {
            self.anomalies += 1;
        }
        pieces
    }

    fn hold(&mut self, rel: usize, piece: &[u8]) {
        let held = self.pending.as_deref().map_or(0, BTreeMap::len);
        if held >= MAX_PENDING_SEGMENTS || self.pending_bytes as usize + piece.len() > self.depth()
        {
            self.gaps += 1;
            return;
        }
        self.pending
            .get_or_insert_with(Box::default)
            .insert(rel, piece.to_vec());
        // Within depth (checked above), so it fits 32 bits.
        self.pending_bytes += piece.len() as u32;
    }

    fn drain(&mut self) {
        // Held pieces are disjoint and lie beyond the prefix: the next starts exactly at its end.
        let depth = self.depth();
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        while let Some(piece) = pending.remove(&self.data.len()) {
            self.pending_bytes -= piece.len() as u32;
            Self::append_to(&mut self.data, depth, &piece);
        }
        if pending.is_empty() {
            self.pending = None;
        }
    }

    /// Bytes onto the prefix, which never passes `depth`: its capacity doubles as a Vec's does
    /// but stops at `depth`. Left to Vec, three 1,448-byte segments make a 5,792-byte buffer
    /// for a 4,096-byte prefix, and the buffers of the flows under inspection are much of the
    /// core's memory.
    fn append(&mut self, bytes: &[u8]) {
        let depth = self.depth();
        Self::append_to(&mut self.data, depth, bytes);
    }

    fn append_to(data: &mut Vec<u8>, depth: usize, bytes: &[u8]) {
        let need = data.len() + bytes.len();
        if need > data.capacity() {
            let target = (data.capacity() * 2).min(depth).max(need);
            data.reserve_exact(target - data.len());
        }
        data.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_and_out_of_order_segments_make_one_prefix() {
        let mut s = StreamBuffer::default();
        s.syn(999);
        assert!(!s.add(1006, b"world"));
        assert!(s.add(1000, b"hello "));
        assert_eq!(s.data, b"hello world");
    }

    #[test]
    fn first_copy_wins_and_a_conflict_is_counted() {
        let mut s = StreamBuffer::default();
        s.add(0, b"abcdef");
        s.add(2, b"XY");
        assert_eq!(s.data, b"abcdef");
        assert_eq!(s.anomalies, 1);
        s.add(5, b"f"); // a keep-alive's garbage octet is no anomaly
        assert_eq!(s.anomalies, 1);
    }

    #[test]
    fn held_bytes_win_over_a_later_overlapping_segment() {
        let mut s = StreamBuffer::default();
        s.add(0, b"ab");
        s.add(4, b"EF");
        s.add(2, b"cdXXgh");
        assert_eq!(s.data, b"abcdEFgh");
        assert_eq!(s.anomalies, 1);
    }

    #[test]
    fn sequence_wrap_and_bytes_before_the_start() {
        let mut s = StreamBuffer::default();
        s.syn(u32::MAX - 1); // base is u32::MAX
        assert!(s.add(u32::MAX, b"ab"));
        assert!(s.add(1, b"cd"));
        assert_eq!(s.data, b"abcd");
        let mut t = StreamBuffer::default();
        t.syn(99);
        assert!(t.add(98, b"xyz")); // two bytes before the start: only "z" is kept
        assert_eq!(t.data, b"z");
    }

    #[test]
    fn the_buffer_grows_no_further_than_its_depth() {
        let mut s = StreamBuffer::default();
        for i in 0..4u32 {
            s.add(i * 1448, &[7u8; 1448]);
        }
        assert_eq!(s.data.len(), DEFAULT_DEPTH);
        assert_eq!(s.data.capacity(), DEFAULT_DEPTH);
        // Out of order: the held pieces join the prefix within the same bound.
        let mut t = StreamBuffer::new(3000);
        t.syn(u32::MAX); // the stream starts at sequence number 0
        t.add(1000, &[1u8; 2500]);
        t.add(0, &[2u8; 1000]);
        assert_eq!(t.data.len(), 3000);
        assert_eq!(t.data.capacity(), 3000);
    }

    #[test]
    fn depth_and_pending_bounds_hold() {
        let mut s = StreamBuffer::new(16);
        s.add(0, &[1u8; 40]);
        assert_eq!(s.data.len(), 16);
        assert!(s.full());
        let mut t = StreamBuffer::new(4096);
        t.add(0, b"a");
        for i in 0..200u32 {
            t.add(10 + i * 3, b"x");
        }
        assert_eq!(
            t.pending.as_ref().map_or(0, |p| p.len()),
            MAX_PENDING_SEGMENTS
        );
        assert_eq!(t.gaps, 200 - MAX_PENDING_SEGMENTS as u32);
    }
}
