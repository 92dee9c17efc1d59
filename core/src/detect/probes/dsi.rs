//! DSI, the Data Stream Interface that carries AFP (the Apple Filing Protocol) over TCP.
//!
//! Every DSI message opens with a 16-byte header (Apple, "AFP over TCP"): flags (0 request,
//! 1 reply), command, request id, an error code (replies) or a data offset (DSIWrite requests;
//! zero in other requests), the length of the data that follows, and 4 reserved zero bytes.
//! The messages are chained through the stream: every header wholly present must check, and the
//! first must be present. The reserved word and the flags and command bytes leave one random
//! header in ~2^44; a stream picked up in its middle is named from the next header it holds.
//!
//! Who sends what: the client sends requests, the server replies, and the server alone asks
//! for the client's attention (DSIAttention); either side may tickle or close the session.
//!
//! Meta: `dsi_first` ("command request", "open-session reply", "attention request"...).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("dsi", probe)
    .gated(&[REQUEST, REPLY])
    .answers(answers!["dsi_first"])];

const REQUEST: u8 = 0;
const REPLY: u8 = 1;
const HEADER: usize = 16;
const MAX_MESSAGES: usize = 16;
/// A message's data length at most: servers offer a request quantum of 1 MiB by default
/// (netatalk's `server quantum`), and a few raise it; 64 MiB leaves room for those.
const MAX_DATA: usize = 64 << 20;
/// Result codes in a reply: none, or an ASP/AFP error (kASPBadVersNum -1066 ... AFP's
/// kFPAccessDenied -5000 and the codes after it).
const ERRORS: std::ops::RangeInclusive<i32> = -6000..=-1000;

const DSI_WRITE: u8 = 6;
const DSI_ATTENTION: u8 = 8;

fn command_name(command: u8) -> Option<&'static str> {
    Some(match command {
        1 => "close-session",
        2 => "command",
        3 => "get-status",
        4 => "open-session",
        5 => "tickle",
        DSI_WRITE => "write",
        DSI_ATTENTION => "attention",
        _ => return None,
    })
}

/// Whether `from_client`'s side may send this message.
fn sent_by(flags: u8, command: u8, from_client: bool) -> bool {
    match (flags, from_client) {
        (REQUEST, true) => command != DSI_ATTENTION,
        (REPLY, false) => command != DSI_ATTENTION,
        // The server's own requests: attention, tickle, close.
        (REQUEST, false) => matches!(command, 1 | 5 | DSI_ATTENTION),
        _ => false,
    }
}

/// The header at `data[off..]`: its description and where the next message starts.
fn header(data: &[u8], off: usize, from_client: bool) -> Option<(&'static str, u8, usize)> {
    let h: &[u8; HEADER] = data.get(off..off + HEADER)?.try_into().ok()?;
    let (flags, command) = (h[0], h[1]);
    let name = command_name(command)?;
    if !sent_by(flags, command, from_client) {
        return None;
    }
    let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (code, length, reserved) = (word(4), word(8) as usize, word(12));
    if reserved != 0 || length > MAX_DATA {
        return None;
    }
    let code_ok = if flags == REPLY {
        let code = code as i32;
        code == 0 || ERRORS.contains(&code)
    } else if command == DSI_WRITE {
        code as usize <= length
    } else {
        code == 0
    };
    code_ok.then_some((name, flags, off + HEADER + length))
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some((name, flags, mut off)) = header(data, 0, from_client) else {
        return ProbeResult::no();
    };
    for _ in 1..MAX_MESSAGES {
        if off + HEADER > data.len() {
            break;
        }
        match header(data, off, from_client) {
            Some((_, _, next)) => off = next,
            None => return ProbeResult::no(),
        }
    }
    let kind = if flags == REPLY { "reply" } else { "request" };
    let mut meta = Meta::new();
    meta.insert("dsi_first".into(), json!(format!("{name} {kind}")));
    ProbeResult::hit_done(meta, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    /// A header: flags, command, request id, error code or data offset, data length.
    fn msg(flags: u8, command: u8, id: u16, code: u32, data: &[u8]) -> Vec<u8> {
        let mut m = vec![flags, command];
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(&(data.len() as u32).to_be_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(data);
        m
    }

    /// FPGetVolParms (17) for volume 2, bitmap 0x0e1c, and its reply.
    fn get_vol_parms() -> (Vec<u8>, Vec<u8>) {
        let req = msg(0, 2, 0x22c6, 0, &[0x11, 0x00, 0x00, 0x02, 0x0e, 0x1c]);
        let reply = msg(1, 2, 0x22c6, 0, &[0x0e, 0x1c, 0, 0, 0, 0, 0, 0, 0, 0]);
        (req, reply)
    }

    fn first(r: &ProbeResult) -> Option<&str> {
        r.is_match().then(|| r.meta["dsi_first"].as_str()).flatten()
    }

    #[test]
    fn requests_and_replies_chained() {
        let (req, reply) = get_vol_parms();
        assert_eq!(first(&probe(&req, true)), Some("command request"));
        assert_eq!(first(&probe(&reply, false)), Some("command reply"));
        let two = [req.clone(), req.clone(), req[..10].to_vec()].concat();
        assert_eq!(first(&probe(&two, true)), Some("command request"));
        // The server's attention request (2 bytes of attention code) and its tickle.
        let attention = msg(0, 8, 0x46, 0, &[0x30, 0x01]);
        assert_eq!(first(&probe(&attention, false)), Some("attention request"));
        assert_eq!(probe(&attention, true).status, Status::No);
        // An error reply: kFPObjectNotFound.
        let err = msg(1, 2, 7, (-5018i32) as u32, &[]);
        assert_eq!(first(&probe(&err, false)), Some("command reply"));
        // A write's data offset (the AFP command in front of the bytes written) lies within
        // the data it announces.
        let write = msg(0, 6, 9, 12, &[0x21; 64]);
        assert_eq!(
            first(&probe(&write[..HEADER + 20], true)),
            Some("write request")
        );
        assert_eq!(
            probe(&msg(0, 6, 9, 65, &[0x21; 64]), true).status,
            Status::No
        );
    }

    #[test]
    fn what_a_header_may_not_hold() {
        let (req, reply) = get_vol_parms();
        assert_eq!(probe(&req, false).status, Status::No, "a client request");
        assert_eq!(probe(&reply, true).status, Status::No, "a server reply");
        let mut r = req.clone();
        r[15] = 1;
        assert_eq!(probe(&r, true).status, Status::No, "reserved");
        let mut r = req.clone();
        r[1] = 7;
        assert_eq!(probe(&r, true).status, Status::No, "command 7");
        let mut r = req.clone();
        r[7] = 1;
        assert_eq!(probe(&r, true).status, Status::No, "a code in a request");
        assert_eq!(probe(&msg(1, 2, 1, 5, &[]), false).status, Status::No);
        assert_eq!(probe(&req[..HEADER - 1], true).status, Status::No);
        // A bad header after a good one.
        let mut two = [req.clone(), req.clone()].concat();
        two[req.len() + 12] = 0xff;
        assert_eq!(probe(&two, true).status, Status::No);
        let mut huge = req.clone();
        huge[8] = 0x10;
        assert_eq!(probe(&huge, true).status, Status::No, "a 256 MiB message");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for n in 0..40 {
            for fill in [0u8, 1, 2, 0xff] {
                let _ = probe(&vec![fill; n], true);
                let _ = probe(&vec![fill; n], false);
            }
        }
        // Lengths that would overflow an offset on 32-bit sums.
        let mut m = msg(0, 2, 1, 0, &[]);
        m[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(probe(&m, true).status, Status::No);
    }

    #[test]
    fn gate_is_necessary() {
        let (req, reply) = get_vol_parms();
        let gate = PROBES[0].first_bytes.unwrap_or(&[]);
        assert!(gate.contains(&req[0]) && gate.contains(&reply[0]));
    }
}
