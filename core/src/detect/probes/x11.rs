//! X11, the X Window System core protocol: the connection setup each side opens with (X Window
//! System Protocol, "Connection Setup").
//!
//! - The client: a byte-order byte (`B` most significant first, `l` least), an unused byte,
//!   protocol version 11.0, the lengths of the authorization protocol's name and data, two unused
//!   bytes, then the name and the data, each padded to 4 bytes.
//! - The server, in the client's byte order: Failed (0: a reason's length, version, the reason),
//!   Success (1: version, release number, ..., the vendor string at byte 40) or Authenticate (2:
//!   five unused bytes, then a reason). Its version field says which byte order it speaks.
//!
//! Meta: `x11_auth` (the authorization protocol's name, e.g. `MIT-MAGIC-COOKIE-1`; the cookie
//! itself is never kept), `x11_setup` ("success", "failed", "authenticate"), `x11_vendor` and
//! `x11_release` (a server that accepted), `x11_refused` (the reason of one that did not);
//! strings sanitised and bounded.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::decode::bytes;
use crate::meta::{Meta, Value};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("x11", probe).gated(b"Bl\x00\x01\x02")];

const SETUP_HEADER: usize = 12;
/// Longer names or reasons are cut (they are shown, not parsed).
const MAX_TEXT: usize = 128;
/// The vendor string's offset in a Success reply.
const VENDOR_AT: usize = 40;

#[derive(Clone, Copy)]
enum Order {
    Big,
    Little,
}

fn u16_at(data: &[u8], off: usize, order: Order) -> Option<usize> {
    match order {
        Order::Big => bytes::be16(data, off),
        Order::Little => bytes::le16(data, off),
    }
    .map(usize::from)
}

fn u32_at(data: &[u8], off: usize, order: Order) -> Option<u32> {
    match order {
        Order::Big => bytes::be32(data, off),
        Order::Little => bytes::le32(data, off),
    }
}

/// The byte order whose reading of the version at `off` is 11.0.
fn order_of_version(data: &[u8], off: usize) -> Option<Order> {
    match data.get(off..off + 4)? {
        [0, 11, 0, 0] => Some(Order::Big),
        [11, 0, 0, 0] => Some(Order::Little),
        _ => None,
    }
}

/// `len` bytes of text at `off`, or None while cut.
fn text_at(data: &[u8], off: usize, len: usize) -> Option<String> {
    let shown = len.min(MAX_TEXT);
    Some(clean_text(data.get(off..off + shown)?, MAX_TEXT))
}

fn client(data: &[u8]) -> ProbeResult {
    let order = match data[0] {
        b'B' => Order::Big,
        b'l' => Order::Little,
        _ => return ProbeResult::no(),
    };
    if data.len() < SETUP_HEADER {
        return ProbeResult::more();
    }
    let version: [u8; 4] = match order {
        Order::Big => [0, 11, 0, 0],
        Order::Little => [11, 0, 0, 0],
    };
    if data[2..6] != version || data[10..12] != [0, 0] {
        return ProbeResult::no();
    }
    let (Some(name_len), Some(_)) = (u16_at(data, 6, order), u16_at(data, 8, order)) else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    if name_len == 0 {
        return ProbeResult::hit_done(meta, true);
    }
    match text_at(data, SETUP_HEADER, name_len) {
        Some(name) => {
            meta.insert("x11_auth".into(), Value::String(name));
            ProbeResult::hit_done(meta, true)
        }
        None => ProbeResult::hit_done(meta, false),
    }
}

fn server(data: &[u8]) -> ProbeResult {
    let mut meta = Meta::new();
    let done = match data[0] {
        0 | 1 => {
            let Some(order) = order_of_version(data, 2) else {
                return if data.len() < 6 {
                    ProbeResult::more()
                } else {
                    ProbeResult::no()
                };
            };
            if data[0] == 0 {
                meta.insert("x11_setup".into(), Value::String("failed".into()));
                let reason = text_at(data, 8, usize::from(data[1]));
                let done = reason.is_some();
                if let Some(why) = reason {
                    meta.insert("x11_refused".into(), Value::String(why));
                }
                done
            } else {
                meta.insert("x11_setup".into(), Value::String("success".into()));
                let vendor = u16_at(data, 24, order).and_then(|v| text_at(data, VENDOR_AT, v));
                if let Some(release) = u32_at(data, 8, order) {
                    meta.insert("x11_release".into(), Value::from(release));
                }
                let done = vendor.is_some();
                if let Some(vendor) = vendor {
                    meta.insert("x11_vendor".into(), Value::String(vendor));
                }
                done
            }
        }
        2 => {
            if data.len() < 8 {
                return ProbeResult::more();
            }
            if data[1..6] != [0; 5] {
                return ProbeResult::no();
            }
            meta.insert("x11_setup".into(), Value::String("authenticate".into()));
            true
        }
        _ => return ProbeResult::no(),
    };
    ProbeResult::hit_done(meta, done)
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.is_empty() {
        return ProbeResult::more();
    }
    if from_client {
        client(data)
    } else {
        server(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    /// A setup request in either byte order with a MIT-MAGIC-COOKIE-1 cookie.
    fn request(order: u8) -> Vec<u8> {
        let le = order == b'l';
        let u16b = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut out = vec![order, 0];
        out.extend(u16b(11));
        out.extend(u16b(0));
        out.extend(u16b(18));
        out.extend(u16b(16));
        out.extend([0, 0]);
        out.extend(b"MIT-MAGIC-COOKIE-1\0\0");
        out.extend([0x42; 16]);
        out
    }

    #[test]
    fn a_setup_request_names_its_authorization_protocol_in_either_byte_order() {
        for order in [b'l', b'B'] {
            let r = probe(&request(order), true);
            assert_eq!((r.status, r.done), (Status::Match, true));
            assert_eq!(text(&r, "x11_auth").as_deref(), Some("MIT-MAGIC-COOKIE-1"));
            assert!(
                !format!("{:?}", r.meta).contains("BBBB"),
                "the cookie is never kept"
            );
        }
        // No authorization at all (an access list let the client in).
        let mut bare = request(b'l');
        bare[6..10].copy_from_slice(&[0, 0, 0, 0]);
        bare.truncate(SETUP_HEADER);
        let r = probe(&bare, true);
        assert_eq!((r.status, text(&r, "x11_auth")), (Status::Match, None));
    }

    #[test]
    fn a_request_with_another_version_or_order_is_not_x11() {
        let mut v10 = request(b'l');
        v10[2] = 10;
        assert_eq!(probe(&v10, true).status, Status::No);
        let mut mixed = request(b'B');
        mixed[2..4].copy_from_slice(&[11, 0]); // little-endian 11 after a `B`
        assert_eq!(probe(&mixed, true).status, Status::No);
        assert_eq!(probe(b"l\x00\x0b\x00", true).status, Status::More);
        assert_eq!(probe(b"GET / HTTP/1.0\r\n", true).status, Status::No);
    }

    #[test]
    fn the_servers_answer_says_accepted_with_its_vendor_or_refused_with_its_reason() {
        // Success, little-endian: release 12101007, vendor "The X.Org Foundation" (20 bytes).
        let mut ok = vec![1, 0, 11, 0, 0, 0, 0, 0];
        ok.extend(12_101_007u32.to_le_bytes());
        ok.extend([0; 12]);
        ok.extend(20u16.to_le_bytes());
        ok.extend([0; 14]);
        ok.extend(b"The X.Org Foundation");
        let r = probe(&ok, false);
        assert_eq!((r.status, r.done), (Status::Match, true));
        assert_eq!(text(&r, "x11_setup").as_deref(), Some("success"));
        assert_eq!(
            text(&r, "x11_vendor").as_deref(),
            Some("The X.Org Foundation")
        );
        assert_eq!(
            r.meta.get("x11_release").and_then(Value::as_u64),
            Some(12_101_007)
        );
        let cut = probe(&ok[..45], false);
        assert_eq!((cut.status, cut.done), (Status::Match, false));
        let reason = b"Authorization required, but no authorization protocol specified\n";
        let mut refused = vec![0, reason.len() as u8, 0, 11, 0, 0, 0, 17];
        refused.extend(reason);
        let r = probe(&refused, false);
        assert_eq!(text(&r, "x11_setup").as_deref(), Some("failed"));
        assert!(text(&r, "x11_refused").is_some_and(|w| w.starts_with("Authorization required")));
        assert_eq!(
            probe(&[2, 0, 0, 0, 0, 0, 0, 4], false).status,
            Status::Match
        );
        assert_eq!(probe(&[2, 1, 0, 0, 0, 0, 0, 4], false).status, Status::No);
        assert_eq!(probe(&[1, 0, 12, 0, 0, 0], false).status, Status::No);
    }

    #[test]
    fn hostile_lengths_stay_in_bounds() {
        let mut big = request(b'B');
        big[6..8].copy_from_slice(&[0xff, 0xff]);
        let r = probe(&big, true);
        assert_eq!((r.status, r.done), (Status::Match, false));
        let mut ok = vec![1, 0, 0, 11, 0, 0, 0, 0];
        ok.extend([0xff; 40]);
        for cut in 0..ok.len() {
            let _ = probe(&ok[..cut], false);
        }
    }
}
