//! NTP (RFC 5905) and its control (mode 6, RFC 1305 App. B) and private (mode 7, ntpdc) messages.
//!
//! `ntp`: one UDP datagram.
//! - modes 1-5: at least 48 bytes, then only whole 32-bit words (extension fields, key ID and
//!   MAC); version 1-4, stratum 0-16, poll interval 0-17 (clients may send 0), precision -32..0,
//!   or a data-minimised client request's 0x20 with its clock fields all zero.
//! - mode 6: 12-byte header, opcode 1-31, the count of data bytes padded to 4, then nothing or a
//!   key id and MAC: the datagram length must be exactly that.
//! - mode 7: version 1-4, implementation 0, 2 or 3, request code below 64; a response is exactly
//!   its header plus items x item size, a request has no sequence number and few items.
//!
//! Meta: `ntp_version`, `ntp_mode` ("client", "server", "symmetric-active", "broadcast",
//! "control", "private"), `ntp_stratum` (server replies), `ntp_nts` (NTS extension fields,
//! RFC 8915: the packet is authenticated with keys from NTS-KE).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("ntp", probe).answers(answers!["ntp_mode"])];

/// An NTP packet (header and its extensions) is never longer than this.
const MAX_PACKET: usize = 1024;

fn mode_name(mode: u8) -> &'static str {
    match mode {
        1 => "symmetric-active",
        2 => "symmetric-passive",
        3 => "client",
        4 => "server",
        5 => "broadcast",
        6 => "control",
        _ => "private",
    }
}

fn be16(data: &[u8], off: usize) -> Option<usize> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(usize::from(u16::from_be_bytes([b[0], b[1]])))
}

/// RFC 5905 3: a client (3) asks and a server (4) answers; a symmetric passive peer (2)
/// answers a symmetric active one (1). The answering modes come only from the server's side.
fn mode_fits_side(mode: u8, from_client: bool) -> bool {
    match mode {
        1 | 3 => from_client,
        2 | 4 => !from_client,
        _ => true,
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() < 8 {
        return ProbeResult::no();
    }
    let (version, mode) = ((data[0] >> 3) & 7, data[0] & 7);
    if !(1..=4).contains(&version) || mode == 0 || !mode_fits_side(mode, from_client) {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("ntp_version".into(), json!(version));
    meta.insert("ntp_mode".into(), json!(mode_name(mode)));
    let ok = match mode {
        6 => control_ok(data),
        7 => private_ok(data),
        _ => {
            if !standard_ok(data) {
                return ProbeResult::no();
            }
            if mode == 4 {
                meta.insert("ntp_stratum".into(), json!(data[1]));
            }
            if has_nts_field(&data[48..]) {
                meta.insert("ntp_nts".into(), json!(true));
            }
            true
        }
    };
    if ok {
        ProbeResult::hit(meta)
    } else {
        ProbeResult::no()
    }
}

/// Mode 6: the length is the header, the padded data, then optionally a key id and MAC.
fn control_ok(data: &[u8]) -> bool {
    let Some(count) = be16(data, 10) else {
        return false;
    };
    if data[1] & 0x1F == 0 {
        return false;
    }
    let body = 12 + ((count + 3) & !3);
    [body, body + 20, body + 24].contains(&data.len())
}

/// Mode 7 (ntpdc): implementation, request code, and the item count and size that must fit.
fn private_ok(data: &[u8]) -> bool {
    if !matches!(data[2], 0 | 2 | 3) || data[3] >= 64 {
        return false;
    }
    let (Some(err_items), Some(mbz_size)) = (be16(data, 4), be16(data, 6)) else {
        return false;
    };
    let (nitems, itemsize) = (err_items & 0x0FFF, mbz_size & 0x0FFF);
    if err_items >> 12 > 7 || mbz_size >> 12 != 0 {
        return false;
    }
    let items = 8 + nitems * itemsize;
    if data[0] & 0x80 != 0 {
        // A response carries exactly the items it announces.
        data.len() == items
    } else {
        // A request: no sequence number, at most a few small items.
        data[1] & 0x7F == 0 && nitems <= 8 && items <= data.len()
    }
}

/// Modes 1-5: a 48-byte header and whole words, with plausible stratum, poll and precision.
fn standard_ok(data: &[u8]) -> bool {
    if data.len() < 48 || !data.len().is_multiple_of(4) || data.len() > MAX_PACKET {
        return false;
    }
    let (stratum, poll, precision) = (data[1], data[2], data[3] as i8);
    !(stratum > 16
        || (18..0xF8).contains(&poll)
        || !((-32..=0).contains(&precision) || minimised_request(data)))
        && answer_times_ok(data)
        && trailer_ok(&data[48..])
}

/// A client request that tells nothing of its clock (draft-ietf-ntp-data-minimization, as
/// chrony sends every request): precision 0x20, and stratum, root delay and dispersion,
/// reference id and the reference, origin and receive timestamps all zero.
fn minimised_request(data: &[u8]) -> bool {
    data[0] & 7 == 3 && data[1] == 0 && data[3] == 0x20 && data[4..40].iter().all(|&b| b == 0)
}

/// RFC 8915 5.7: the extension fields of NTS (Unique Identifier, NTS Cookie, Cookie Placeholder,
/// Authenticator and Encrypted Extension Fields).
const NTS_FIELDS: [u16; 4] = [0x0104, 0x0204, 0x0304, 0x0404];

/// Does the datagram carry an NTS extension field (walked as `trailer_ok` walks them)?
fn has_nts_field(rest: &[u8]) -> bool {
    let mut off = 0;
    while rest.len() - off >= 8 {
        let (Some(kind), Some(len)) = (be16(rest, off), be16(rest, off + 2)) else {
            return false;
        };
        if NTS_FIELDS.contains(&(kind as u16)) {
            return true;
        }
        if len < 8 || off + len > rest.len() {
            return false;
        }
        off += len;
    }
    false
}

/// Seconds a server may take between receiving a request and sending its answer.
const MAX_TURNAROUND: u32 = 60;

/// A server's or a peer's answer (modes 1, 2, 4; not a kiss-o'-death, stratum 0) carries the
/// times it received the request and sent the answer (RFC 5905 7.3), a moment apart: random
/// bytes agree to the minute one time in 2^16.
fn answer_times_ok(data: &[u8]) -> bool {
    if !matches!(data[0] & 7, 1 | 2 | 4) || data[1] == 0 {
        return true;
    }
    let seconds =
        |off: usize| u32::from_be_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
    let (received, sent) = (seconds(32), seconds(40));
    received != 0 && sent.wrapping_sub(received) <= MAX_TURNAROUND
}

/// What may follow the 48-byte header (RFC 5905 7.5, RFC 7822): extension fields, each a type
/// and a length (a multiple of 4, 16 at least; Autokey's of RFC 5906 8) that tile, then nothing,
/// a crypto-NAK's key id (4 bytes) or a MAC (key id and a 16- or 20-byte digest).
fn trailer_ok(rest: &[u8]) -> bool {
    let mut off = 0;
    loop {
        if matches!(rest.len() - off, 0 | 4 | 20 | 24) {
            return true;
        }
        let Some(len) = be16(rest, off + 2) else {
            return false;
        };
        if len < 8 || !len.is_multiple_of(4) || off + len > rest.len() {
            return false;
        }
        off += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("ntp");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("ntp");
    }

    /// An SNTP client request (RFC 4330 5): LI 0, VN 4, mode 3, all else zero but the transmit
    /// timestamp.
    fn client_request() -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x23;
        p[40..48].copy_from_slice(&[0xe9, 0x4e, 0x2a, 0x10, 0x12, 0x34, 0x56, 0x78]);
        p
    }

    #[test]
    fn a_data_minimised_nts_request_is_ntp() {
        // chrony's request: poll 6, precision 0x20, clock fields zero, then NTS's Unique
        // Identifier (0x0104, 36 bytes) as its first extension field.
        let mut p = client_request();
        p[2] = 6;
        p[3] = 0x20;
        let plain = probe(&p, true);
        assert_eq!(plain.status, Status::Match);
        assert!(!plain.meta.contains_key("ntp_nts"));
        p.extend([0x01, 0x04, 0x00, 0x24]);
        p.extend([0x5a; 32]);
        let nts = probe(&p, true);
        assert_eq!(nts.status, Status::Match);
        assert_eq!(nts.meta.get("ntp_nts"), Some(&json!(true)));
        // 0x20 with a clock field set, or from a server, is no such request.
        let mut told = p.clone();
        told[12] = 1;
        assert_eq!(probe(&told, true).status, Status::No);
        let mut answer = p.clone();
        answer[0] = 0x24;
        assert_eq!(probe(&answer, false).status, Status::No);
    }

    #[test]
    fn client_and_server() {
        let r = probe(&client_request(), true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(
            r.meta,
            json!({"ntp_version": 4, "ntp_mode": "client"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // Server reply: LI 0, VN 4, mode 4, stratum 2, poll 6, precision -23, ref id 192.0.2.1,
        // received and sent within the same second.
        let mut s = vec![0u8; 48];
        s[..4].copy_from_slice(&[0x24, 0x02, 0x06, 0xe9]);
        s[12..16].copy_from_slice(&[192, 0, 2, 1]);
        s[32..36].copy_from_slice(&[0xe9, 0x4e, 0x2a, 0x10]);
        s[40..44].copy_from_slice(&[0xe9, 0x4e, 0x2a, 0x10]);
        let r = probe(&s, false);
        assert_eq!(
            r.meta,
            json!({"ntp_version": 4, "ntp_mode": "server", "ntp_stratum": 2})
                .as_object()
                .cloned()
                .unwrap()
        );
        // A client's request comes from the client side, a server's answer from the server's.
        assert_eq!(probe(&s, true).status, Status::No);
        assert_eq!(probe(&client_request(), false).status, Status::No);
        // Sent two minutes after it was received, or never received: no answer of a server.
        let mut slow = s.clone();
        slow[43] = 0x88;
        assert_eq!(probe(&slow, false).status, Status::No);
        let mut unreceived = s.clone();
        unreceived[32..40].fill(0);
        assert_eq!(probe(&unreceived, false).status, Status::No);
        // A stratum above 16 is no NTP.
        s[1] = 17;
        assert_eq!(probe(&s, false).status, Status::No);
        // Nor is a length that is not whole words.
        let mut odd = client_request();
        odd.push(0);
        assert_eq!(probe(&odd, true).status, Status::No);
    }

    #[test]
    fn what_follows_the_header_tiles() {
        let with = |tail: &[u8]| probe(&[client_request(), tail.to_vec()].concat(), true).status;
        // A MAC (key id and an MD5 or SHA-1 digest), a crypto-NAK.
        assert_eq!(with(&[7; 20]), Status::Match);
        assert_eq!(with(&[7; 24]), Status::Match);
        assert_eq!(with(&[0; 4]), Status::Match);
        // An NTS extension field (RFC 8915: Unique Identifier, 36 bytes), then a MAC.
        let mut uid = vec![0x01, 0x04, 0x00, 0x24];
        uid.extend([0x42; 32]);
        assert_eq!(with(&uid), Status::Match);
        assert_eq!(with(&[uid.clone(), vec![7; 20]].concat()), Status::Match);
        // 12 or 52 bytes that are neither: a field whose length runs past the datagram.
        assert_eq!(with(&[0, 4, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8]), Status::No);
        assert_eq!(with(&[0x5a; 52]), Status::No);
    }

    #[test]
    fn control_read_variables() {
        // ntpq "rv": VN 2, mode 6, opcode 2 (read variables), sequence 1, no data.
        let q = [0x16, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0];
        let r = probe(&q, true);
        assert_eq!(
            r.meta,
            json!({"ntp_version": 2, "ntp_mode": "control"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // A response with 5 data bytes must be padded to 8.
        let mut a = vec![0x16, 0x82, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 5];
        a.extend_from_slice(b"a=1, ");
        assert_eq!(probe(&a, false).status, Status::No);
        a.extend_from_slice(&[0, 0, 0]);
        assert_eq!(probe(&a, false).status, Status::Match);
    }

    #[test]
    fn private_monlist_request() {
        // ntpdc monlist: VN 2, mode 7, implementation 3 (XNTPD), request 42, no items.
        let mut q = vec![0x17, 0x00, 0x03, 0x2a];
        q.extend_from_slice(&[0u8; 44]);
        assert_eq!(probe(&q, true).status, Status::Match);
        // A response announcing 2 items of 4 bytes must be exactly 16 bytes.
        let resp = [
            0x97, 0x00, 0x03, 0x2a, 0x00, 0x02, 0x00, 0x04, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        assert_eq!(probe(&resp, false).status, Status::Match);
        assert_eq!(probe(&resp[..15], false).status, Status::No);
    }
}
