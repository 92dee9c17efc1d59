//! pcapng framing (draft-ietf-opsawg-pcapng): sections of blocks, each section with its own byte
//! order and interfaces, each interface with its own link type and clock.
#![forbid(unsafe_code)]

use super::buffer::Buffer;
use super::pcap::MAX_RECORD;
use super::Found;

const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const PACKET_OBSOLETE: u32 = 2;
const SIMPLE_PACKET: u32 = 3;
const ENHANCED_PACKET: u32 = 6;
/// A block longer than a largest record and its block overhead is a corrupt length.
const MAX_BLOCK: u32 = MAX_RECORD + 64;
/// Interfaces kept per section: far more than any real capture has; bounds memory.
const MAX_INTERFACES: usize = 1 << 16;

/// `10.0 ** -exp` for exp 0..=30 exactly as Python computes it (the platform's `pow`), as bits:
/// `powi` or a division could differ in the last place, and timestamps must be bit-identical.
const TEN_POW_NEG: [u64; 31] = [
    0x3ff0000000000000,
    0x3fb999999999999a,
    0x3f847ae147ae147b,
    0x3f50624dd2f1a9fc,
    0x3f1a36e2eb1c432d,
    0x3ee4f8b588e368f1,
    0x3eb0c6f7a0b5ed8d,
    0x3e7ad7f29abcaf48,
    0x3e45798ee2308c3a,
    0x3e112e0be826d695,
    0x3ddb7cdfd9d7bdbb,
    0x3da5fd7fe1796495,
    0x3d719799812dea11,
    0x3d3c25c268497682,
    0x3d06849b86a12b9b,
    0x3cd203af9ee75616,
    0x3c9cd2b297d889bc,
    0x3c670ef54646d497,
    0x3c32725dd1d243ac,
    0x3bfd83c94fb6d2ac,
    0x3bc79ca10c924223,
    0x3b92e3b40a0e9b4f,
    0x3b5e392010175ee6,
    0x3b282db34012b251,
    0x3af357c299a88ea7,
    0x3abef2d0f5da7dd9,
    0x3a88c240c4aecb14,
    0x3a53ce9a36f23c10,
    0x3a1fb0f6be506019,
    0x39e95a5efea6b347,
    0x39b4484bfeebc2a0,
];

/// An interface's link type and clock: seconds per tick and ticks per second, None past 64
/// bits (a 10^-20..10^-30 clock: a packet's 64-bit ticks hold no whole second then).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Interface {
    linktype: u32,
    tick: f64,
    per_sec: Option<u64>,
}

const MICROSECONDS: (f64, Option<u64>) = (1e-6, Some(1_000_000));

pub(crate) struct Pcapng {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Packet blocks skipped as unsound (bad interface, caplen past the block, too short).
    pub(crate) malformed: u64,
}

fn u16_at(bytes: &[u8], at: usize, big_endian: bool) -> u16 {
    let mut w = [0u8; 2];
    if let Some(src) = bytes.get(at..at + 2) {
        w.copy_from_slice(src);
    }
    if big_endian {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}

fn u32_at(bytes: &[u8], at: usize, big_endian: bool) -> u32 {
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

/// The if_tsresol option of an IDB's options `opts`: (seconds per tick, ticks per second, None
/// past 64 bits); microseconds when absent or beyond 2^-30 / 10^-30.
fn if_tsresol(opts: &[u8], big_endian: bool) -> (f64, Option<u64>) {
    let mut off = 0usize;
    // Each step moves at least 4 bytes: bounded by the options' length.
    while off + 4 <= opts.len() {
        let code = u16_at(opts, off, big_endian);
        let length = usize::from(u16_at(opts, off + 2, big_endian));
        if code == 0 {
            break;
        }
        if code == 9 && length >= 1 {
            if let Some(&value) = opts.get(off + 4) {
                let exp = u32::from(value & 0x7F);
                if exp > 30 {
                    return MICROSECONDS;
                }
                return if value & 0x80 != 0 {
                    // 2^-exp is exact as a quotient.
                    (1.0 / (1u64 << exp) as f64, Some(1u64 << exp))
                } else {
                    (
                        f64::from_bits(TEN_POW_NEG[exp as usize]),
                        10u64.checked_pow(exp),
                    )
                };
            }
        }
        off += 4 + ((length + 3) & !3);
    }
    MICROSECONDS
}

impl Pcapng {
    pub(crate) fn new() -> Self {
        Pcapng {
            big_endian: false,
            interfaces: Vec::new(),
            malformed: 0,
        }
    }

    /// The next packet, consumed from `buf` (its frame still in the window), or None at the end
    /// (`buf.error` says why, if early). Every block read is consumed: the loop is bounded by
    /// the input.
    pub(crate) fn next(&mut self, buf: &mut Buffer, name: &str) -> Option<Found> {
        loop {
            if !buf.need(12) {
                if !buf.avail().is_empty() {
                    buf.fail(format!(
                        "{name}: truncated pcapng block header at end of file"
                    ));
                }
                return None;
            }
            let head = buf.avail();
            let btype = u32_at(head, 0, self.big_endian);
            let mut blen = u32_at(head, 4, self.big_endian);
            if btype == SECTION_HEADER {
                // The type reads the same in either order; the byte-order magic tells which.
                let bom = head.get(8..12).unwrap_or(&[]);
                self.big_endian = match bom {
                    b"\x4d\x3c\x2b\x1a" => false,
                    b"\x1a\x2b\x3c\x4d" => true,
                    _ => {
                        let hex: String = bom.iter().map(|b| format!("{b:02x}")).collect();
                        buf.fail(format!(
                            "{name}: corrupt section header (byte-order magic {hex})"
                        ));
                        return None;
                    }
                };
                self.interfaces.clear();
                blen = u32_at(head, 4, self.big_endian);
            }
            if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_BLOCK {
                let at = buf.offset();
                buf.fail(format!(
                    "{name}: corrupt pcapng block at byte offset {at} (type {btype:#x}, length {blen})"
                ));
                return None;
            }
            let blen = blen as usize;
            if !buf.need(blen) {
                buf.fail(format!(
                    "{name}: truncated pcapng block at end of file (type {btype:#x})"
                ));
                return None;
            }
            if btype == INTERFACE_DESCRIPTION && blen < 20 {
                buf.fail(format!("{name}: corrupt interface description block"));
                return None;
            }
            let block_start = buf.start();
            let block = buf.avail().get(..blen).unwrap_or(&[]);
            let body = block.get(8..blen - 4).unwrap_or(&[]);
            let found = self.block(btype, body, block_start + 8);
            buf.consume(blen);
            if let Some(found) = found {
                return Some(found);
            }
        }
    }

    /// What one block gives: a packet, or nothing (a packet skipped as malformed, any other
    /// block). `body_at`: the window index of `body`, for lending the frame.
    fn block(&mut self, btype: u32, body: &[u8], body_at: usize) -> Option<Found> {
        let be = self.big_endian;
        match btype {
            ENHANCED_PACKET | PACKET_OBSOLETE => {
                // From the timestamp on both lay out alike; before it, the interface id (32 bits
                // in an EPB; 16, then a drop count, in a PB).
                if body.len() < 20 {
                    self.malformed += 1;
                    return None;
                }
                let ifid = if btype == ENHANCED_PACKET {
                    u32_at(body, 0, be) as usize
                } else {
                    usize::from(u16_at(body, 0, be))
                };
                let caplen = u32_at(body, 12, be) as usize;
                let orig_len = u32_at(body, 16, be);
                let iface = match self.interfaces.get(ifid) {
                    Some(iface) if 20 + caplen <= body.len() => *iface,
                    _ => {
                        self.malformed += 1;
                        return None;
                    }
                };
                let ticks = (u64::from(u32_at(body, 4, be)) << 32) | u64::from(u32_at(body, 8, be));
                // Whole seconds and the fraction apart, each exact, then one multiply and one
                // add: the Python reader's float to the bit.
                let (sec, frac) = match iface.per_sec {
                    Some(per_sec) => (ticks / per_sec, ticks % per_sec),
                    None => (0, ticks),
                };
                let ts = sec as f64 + frac as f64 * iface.tick;
                Some(Found {
                    ts,
                    linktype: iface.linktype,
                    start: body_at + 20,
                    len: caplen,
                    orig_len,
                })
            }
            SIMPLE_PACKET => {
                // Interface 0, no timestamp.
                let iface = match self.interfaces.first() {
                    Some(iface) if body.len() >= 4 => *iface,
                    _ => {
                        self.malformed += 1;
                        return None;
                    }
                };
                let orig_len = u32_at(body, 0, be);
                let len = (orig_len as usize).min(body.len() - 4);
                Some(Found {
                    ts: 0.0,
                    linktype: iface.linktype,
                    start: body_at + 4,
                    len,
                    orig_len,
                })
            }
            INTERFACE_DESCRIPTION => {
                let linktype = u32::from(u16_at(body, 0, be));
                let (tick, per_sec) = if_tsresol(body.get(8..).unwrap_or(&[]), be);
                if self.interfaces.len() < MAX_INTERFACES {
                    self.interfaces.push(Interface {
                        linktype,
                        tick,
                        per_sec,
                    });
                }
                None
            }
            // Statistics, name resolution, custom and unknown blocks carry nothing needed.
            _ => None,
        }
    }
}
