//! Classic pcap framing (tcpdump.org/manpages/pcap-savefile.5): a 24-byte file header, then
//! records of a 16-byte header (seconds, fraction, caplen, original length) and the frame.
#![forbid(unsafe_code)]

use super::buffer::Buffer;
use super::Found;

/// A record larger than this is not a packet but a corrupt length field; refusing it bounds memory.
pub(crate) const MAX_RECORD: u32 = 1 << 18;

pub(crate) struct Pcap {
    big_endian: bool,
    /// Seconds per unit of the fraction field: 1e-6 or 1e-9, as the magic says.
    tick: f64,
    linktype: u32,
    /// The largest caplen taken as sound (see `limit_for`).
    limit: u32,
    header_read: bool,
}

/// The classic pcap magics: (big-endian, seconds per fraction unit).
pub(crate) fn magic(head: &[u8]) -> Option<(bool, f64)> {
    match head {
        b"\xd4\xc3\xb2\xa1" => Some((false, 1e-6)),
        b"\xa1\xb2\xc3\xd4" => Some((true, 1e-6)),
        b"\x4d\x3c\xb2\xa1" => Some((false, 1e-9)),
        b"\xa1\xb2\x3c\x4d" => Some((true, 1e-9)),
        _ => None,
    }
}

/// A caplen above the snap length is corrupt, but writers are lax about the snap length: allow
/// 65535 at least, and never more than `MAX_RECORD`.
fn limit_for(snaplen: u32) -> u32 {
    if snaplen > 0 && snaplen <= MAX_RECORD {
        snaplen.max(65535)
    } else {
        MAX_RECORD
    }
}

fn word(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut w = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        w.copy_from_slice(src);
    }
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

impl Pcap {
    pub(crate) fn new(big_endian: bool, tick: f64) -> Self {
        Pcap {
            big_endian,
            tick,
            linktype: 0,
            limit: MAX_RECORD,
            header_read: false,
        }
    }

    /// The next record, consumed from `buf` (its frame still in the window), or None at the end
    /// (`buf.error` says why, if early).
    pub(crate) fn next(&mut self, buf: &mut Buffer, name: &str) -> Option<Found> {
        if !self.header_read {
            // The magic (4 bytes) is at the front of the stream.
            if !buf.need(24) {
                buf.fail(format!("{name}: truncated pcap file header"));
                return None;
            }
            let head = buf.avail();
            let snaplen = word(head, 16, self.big_endian);
            self.linktype = word(head, 20, self.big_endian) & 0x0FFF_FFFF;
            self.limit = limit_for(snaplen);
            self.header_read = true;
            buf.consume(24);
        }
        if !buf.need(16) {
            if !buf.avail().is_empty() {
                buf.fail(format!("{name}: truncated record header at end of file"));
            }
            return None;
        }
        let head = buf.avail();
        let sec = word(head, 0, self.big_endian);
        let frac = word(head, 4, self.big_endian);
        let caplen = word(head, 8, self.big_endian);
        let orig_len = word(head, 12, self.big_endian);
        if caplen > self.limit {
            let at = buf.offset();
            buf.fail(format!(
                "{name}: corrupt record at byte offset {at}: caplen {caplen} exceeds {}",
                self.limit
            ));
            return None;
        }
        let len = caplen as usize;
        if !buf.need(16 + len) {
            let have = buf.avail().len().saturating_sub(16);
            buf.fail(format!(
                "{name}: truncated packet data at end of file ({have} of {caplen} bytes)"
            ));
            return None;
        }
        let start = buf.start() + 16;
        buf.consume(16 + len);
        // Seconds plus the fraction times the tick, in this order: the Python reader's float.
        let ts = f64::from(sec) + f64::from(frac) * self.tick;
        Some(Found {
            ts,
            linktype: self.linktype,
            start,
            len,
            orig_len,
        })
    }
}
