//! Safe parsing of one TPACKET_V3 block the kernel lent: its descriptor, then each frame's
//! header and bytes, read from a byte slice bounded by the block's length. A bad header ends the
//! walk of that block; it never panics. The ring (`super`) holds the unsafe code that lends the
//! slice; nothing here may.
#![forbid(unsafe_code)]

// Offsets in a block descriptor (struct tpacket_block_desc with tpacket_hdr_v1) and in a frame
// header (struct tpacket3_hdr); read from bytes so that the parsing stays safe code. The asserts
// tie them to libc's definitions of the kernel structures.
pub(super) const BLK_STATUS: usize = 8;
const BLK_NUM_PKTS: usize = 12;
const BLK_FIRST_PKT: usize = 16;
const BLK_LEN: usize = 20;
const PKT_NEXT: usize = 0;
const PKT_SEC: usize = 4;
const PKT_NSEC: usize = 8;
const PKT_SNAPLEN: usize = 12;
const PKT_LEN: usize = 16;
const PKT_MAC: usize = 24;
/// The bytes of a frame header the walk reads (up to and including tp_mac).
const PKT_HDR_MIN: usize = PKT_MAC + 2;

const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(libc::tpacket_block_desc, hdr) == 8);
    assert!(offset_of!(libc::tpacket_hdr_v1, block_status) + 8 == BLK_STATUS);
    assert!(offset_of!(libc::tpacket_hdr_v1, num_pkts) + 8 == BLK_NUM_PKTS);
    assert!(offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt) + 8 == BLK_FIRST_PKT);
    assert!(offset_of!(libc::tpacket_hdr_v1, blk_len) + 8 == BLK_LEN);
    assert!(offset_of!(libc::tpacket3_hdr, tp_next_offset) == PKT_NEXT);
    assert!(offset_of!(libc::tpacket3_hdr, tp_sec) == PKT_SEC);
    assert!(offset_of!(libc::tpacket3_hdr, tp_nsec) == PKT_NSEC);
    assert!(offset_of!(libc::tpacket3_hdr, tp_snaplen) == PKT_SNAPLEN);
    assert!(offset_of!(libc::tpacket3_hdr, tp_len) == PKT_LEN);
    assert!(offset_of!(libc::tpacket3_hdr, tp_mac) == PKT_MAC);
};

fn read_u32(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn read_u16(b: &[u8], off: usize) -> Option<u16> {
    let bytes = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

pub(super) struct Frame<'a> {
    pub(super) ts: f64,
    pub(super) data: &'a [u8],
    pub(super) wire_len: u32,
    next: u32,
}

fn frame_at(block: &[u8], off: usize) -> Option<Frame<'_>> {
    if off.checked_add(PKT_HDR_MIN)? > block.len() {
        return None;
    }
    let next = read_u32(block, off + PKT_NEXT)?;
    let sec = read_u32(block, off + PKT_SEC)?;
    let nsec = read_u32(block, off + PKT_NSEC)?;
    let snaplen = read_u32(block, off + PKT_SNAPLEN)? as usize;
    let wire_len = read_u32(block, off + PKT_LEN)?;
    let mac = read_u16(block, off + PKT_MAC)? as usize;
    let start = off.checked_add(mac)?;
    let data = block.get(start..start.checked_add(snaplen)?)?;
    Some(Frame {
        ts: f64::from(sec) + f64::from(nsec) / 1e9,
        data,
        wire_len,
        next,
    })
}

/// The sound frames of a block, at most `left` of them.
pub(super) struct Walk<'a> {
    pub(super) block: &'a [u8],
    pub(super) off: usize,
    pub(super) left: usize,
}

impl<'a> Iterator for Walk<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let Some(frame) = frame_at(self.block, self.off) else {
            self.left = 0;
            return None;
        };
        // The last frame's next offset is 0; one shorter than a header would overlap it: both
        // end the walk (a block claiming more frames than that is counted as bad).
        let next = frame.next as usize;
        match self.off.checked_add(next) {
            Some(off) if next >= PKT_HDR_MIN => self.off = off,
            _ => self.left = 0,
        }
        Some(frame)
    }
}

pub(super) struct Summary {
    /// The block's bytes in use (its blk_len, bounded by the block size).
    pub(super) len: usize,
    pub(super) first: usize,
    /// The frames a walk yields (all of num_pkts, unless a header was unsound).
    pub(super) frames: usize,
    pub(super) truncated: u64,
    pub(super) bad: bool,
}

/// Check a block's frame list once, so that `Block` knows how many sound frames it holds.
pub(super) fn summarize(block: &[u8]) -> Summary {
    let num = read_u32(block, BLK_NUM_PKTS).unwrap_or(0) as usize;
    let first = read_u32(block, BLK_FIRST_PKT).unwrap_or(0) as usize;
    let len = match read_u32(block, BLK_LEN) {
        Some(n) if (n as usize) <= block.len() => n as usize,
        _ => block.len(),
    };
    let used = block.get(..len).unwrap_or(&[]);
    // No more frames than headers fit: bounds the walk whatever num_pkts says.
    let left = num.min(used.len() / PKT_HDR_MIN);
    let mut frames = 0;
    let mut truncated = 0;
    for f in (Walk {
        block: used,
        off: first,
        left,
    }) {
        frames += 1;
        if (f.data.len() as u64) < u64::from(f.wire_len) {
            truncated += 1;
        }
    }
    Summary {
        len,
        first,
        frames,
        truncated,
        bad: frames != num,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// A block as the kernel lays it out: frames (snaplen, wire length) with data at tp_mac.
    fn block(frames: &[(u32, u32)], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let first = 48;
        let mut off = first;
        for (i, &(snap, len)) in frames.iter().enumerate() {
            let mac = 66u16; // header, sockaddr_ll, alignment: what the kernel uses for V3
            let total = (mac as usize + snap as usize).next_multiple_of(16);
            let next = if i + 1 == frames.len() {
                0
            } else {
                total as u32
            };
            put32(&mut b, off + PKT_NEXT, next);
            put32(&mut b, off + PKT_SEC, 1_700_000_000 + i as u32);
            put32(&mut b, off + PKT_NSEC, 500_000_000);
            put32(&mut b, off + PKT_SNAPLEN, snap);
            put32(&mut b, off + PKT_LEN, len);
            b[off + PKT_MAC..off + PKT_MAC + 2].copy_from_slice(&mac.to_ne_bytes());
            for j in 0..snap as usize {
                b[off + mac as usize + j] = i as u8;
            }
            off += total;
        }
        put32(&mut b, BLK_STATUS, libc::TP_STATUS_USER);
        put32(&mut b, BLK_NUM_PKTS, frames.len() as u32);
        put32(&mut b, BLK_FIRST_PKT, first as u32);
        put32(&mut b, BLK_LEN, off as u32);
        b
    }

    fn walk(b: &[u8]) -> Vec<(f64, Vec<u8>, u32)> {
        let s = summarize(b);
        Walk {
            block: b.get(..s.len).unwrap(),
            off: s.first,
            left: s.frames,
        }
        .map(|f| (f.ts, f.data.to_vec(), f.wire_len))
        .collect()
    }

    #[test]
    fn walks_a_well_formed_block() {
        let b = block(&[(60, 60), (1514, 1514), (100, 9000)], 8192);
        let s = summarize(&b);
        assert_eq!((s.frames, s.truncated, s.bad), (3, 1, false));
        let f = walk(&b);
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].1, vec![1u8; 1514]);
        assert_eq!(f[2].2, 9000);
        assert!((f[0].0 - 1_700_000_000.5).abs() < 1e-6);
    }

    #[test]
    fn empty_block() {
        let b = block(&[], 4096);
        let s = summarize(&b);
        assert_eq!((s.frames, s.bad), (0, false));
    }

    #[test]
    fn hostile_headers_end_the_walk_without_panic() {
        let good = block(&[(60, 60), (60, 60), (60, 60)], 4096);
        // num_pkts larger than the frames present.
        let mut b = good.clone();
        put32(&mut b, BLK_NUM_PKTS, u32::MAX);
        let s = summarize(&b);
        assert_eq!((s.frames, s.bad), (3, true));
        // A snaplen past the block's end drops that frame and the rest.
        let mut b = good.clone();
        let second = 48 + (66usize + 60).next_multiple_of(16);
        put32(&mut b, second + PKT_SNAPLEN, u32::MAX);
        assert_eq!(summarize(&b).frames, 1);
        // A next offset that loops back on itself, or runs off the end.
        let mut b = good.clone();
        put32(&mut b, 48 + PKT_NEXT, 1);
        assert_eq!(summarize(&b).frames, 1);
        let mut b = good.clone();
        put32(&mut b, 48 + PKT_NEXT, u32::MAX);
        assert_eq!(summarize(&b).frames, 1);
        // First packet offset and block length out of range.
        let mut b = good.clone();
        put32(&mut b, BLK_FIRST_PKT, u32::MAX);
        assert_eq!(summarize(&b).frames, 0);
        let mut b = good.clone();
        put32(&mut b, BLK_LEN, 10);
        assert_eq!(summarize(&b).frames, 0);
        let mut b = good;
        put32(&mut b, BLK_LEN, u32::MAX);
        assert_eq!(summarize(&b).frames, 3);
        // Every truncation of a block, and every byte value at every header position.
        let base = block(&[(60, 60), (61, 61)], 512);
        for cut in 0..base.len() {
            let _ = walk(base.get(..cut).unwrap());
        }
        for pos in 0..200 {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = base.clone();
                b[pos] = v;
                let _ = walk(&b);
            }
        }
    }
}
