//! Bounds-checked big-endian reads: a read past the buffer is `None`, never a panic.

fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

pub(crate) fn u8_at(buf: &[u8], at: usize) -> Option<u8> {
    buf.get(at).copied()
}

pub(crate) fn be16(buf: &[u8], at: usize) -> Option<u16> {
    array(buf, at).map(u16::from_be_bytes)
}

pub(crate) fn le16(buf: &[u8], at: usize) -> Option<u16> {
    array(buf, at).map(u16::from_le_bytes)
}

pub(crate) fn be32(buf: &[u8], at: usize) -> Option<u32> {
    array(buf, at).map(u32::from_be_bytes)
}

pub(crate) fn le32(buf: &[u8], at: usize) -> Option<u32> {
    array(buf, at).map(u32::from_le_bytes)
}

pub(crate) fn v4(buf: &[u8], at: usize) -> Option<[u8; 4]> {
    array(buf, at)
}

pub(crate) fn v6(buf: &[u8], at: usize) -> Option<[u8; 16]> {
    array(buf, at)
}

/// `end - off` as Python's `end - off < n` tests read it: a negative span is simply short.
pub(crate) fn span(off: usize, end: usize) -> usize {
    end.saturating_sub(off)
}
