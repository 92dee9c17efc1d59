//! RFB, the VNC protocol (RFC 6143): the ProtocolVersion both sides send first, and the security
//! handshake after it.
//!
//! - ProtocolVersion (7.1.1): exactly `RFB xxx.yyy\n`, three digits each.
//! - The server's security message. From 3.7 on (7.1.2) a count of types, then the types; a
//!   count of 0 is a refusal, a 32-bit reason length and the reason. Version 3.3 (Appendix A.1)
//!   has the server pick one type as a 32-bit word: 1 None, 2 VNC Authentication, 0 a refusal
//!   with its reason. The server frames it by the version the client answered, which its own
//!   bytes do not say: a first byte of 0 starts a 3.3 word of 1 or 2, or a refusal in either
//!   framing (`refusal` tells them apart; a 3.7 reason of 256 to 767 bytes would read as a 3.3
//!   type).
//! - The client's answer from 3.7 on: the one type it chose (7.1.2).
//!
//! - Where VNC Authentication is the only way on (3.3's pick, or the one type offered), the
//!   server's stream goes on in one order: challenge, SecurityResult, ServerInit.
//!
//! Meta (as Zeek's rfb.log): `rfb_version` ("3.8"; the server's is `rfb_version_server`),
//! `rfb_security` (the types the server offers or picked), `rfb_security_choice` (a 3.7+
//! client's pick), `rfb_refused` (the server's reason for refusing, sanitised), and after VNC
//! Authentication `rfb_auth` ("success", "failed"), `rfb_desktop` (the desktop's name,
//! sanitised) and `rfb_geometry` ("1024x768"); `rfb_auth` is "none" where the server leaves no
//! way on but security type None (3.3's pick, or the one type offered).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::decode::bytes::{self, be16};
use crate::meta::{Meta, Value};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("rfb", probe)
    .gated(b"R")
    .answers(answers!["rfb_version"])];

const VERSION_LEN: usize = 12;
/// A reason longer than this is cut (it is shown, not parsed).
const MAX_REASON: usize = 256;
/// A refusal's reason is a line of text, never longer than this.
const MAX_REFUSAL: usize = 4096;

/// IANA's "RFB Security Types" registry, the names its entries give.
fn security_name(t: u8) -> String {
    match t {
        0 => "invalid".into(),
        1 => "none".into(),
        2 => "vnc-auth".into(),
        5 => "ra2".into(),
        6 => "ra2ne".into(),
        16 => "tight".into(),
        17 => "ultra".into(),
        18 => "tls".into(),
        19 => "vencrypt".into(),
        20 => "sasl".into(),
        21 => "md5".into(),
        22 => "xvp".into(),
        23 => "secure-tunnel".into(),
        24 => "integrated-ssh".into(),
        30 => "apple-dh".into(),
        113 => "mslogon-ii".into(),
        // the ranges IANA leaves to RealVNC's own types
        3 | 4 | 7..=15 | 128..=255 => format!("realvnc-{t}"),
        _ => format!("type-{t}"),
    }
}

/// (major, minor) of a ProtocolVersion message.
fn version(data: &[u8]) -> Option<(u32, u32)> {
    let line = data.get(..VERSION_LEN)?;
    if &line[..4] != b"RFB " || line[7] != b'.' || line[11] != b'\n' {
        return None;
    }
    let number = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    Some((number(&line[4..7])?, number(&line[8..11])?))
}

fn be32(data: &[u8], off: usize) -> Option<usize> {
    bytes::be32(data, off).and_then(|v| usize::try_from(v).ok())
}

/// A refusal's reason at `off` (its 32-bit length first): the text, or None while cut.
fn reason(data: &[u8], off: usize) -> Option<String> {
    let len = be32(data, off)?;
    let text = data.get(off + 4..)?;
    if text.len() < len.min(MAX_REASON) {
        return None;
    }
    Some(clean_text(&text[..len.min(MAX_REASON)], MAX_REASON))
}

/// The server's security message after its version: (types, refusal reason, its length), None
/// while cut.
fn server_security(rest: &[u8]) -> Option<(Vec<u8>, Option<String>, usize)> {
    let &count = rest.first()?;
    if count != 0 {
        let end = 1 + usize::from(count);
        return Some((rest.get(1..end)?.to_vec(), None, end));
    }
    match be32(rest, 0)? {
        t @ (1 | 2) => Some((vec![t as u8], None, 4)),
        _ => Some((Vec::new(), Some(refusal(rest)?), rest.len())),
    }
}

/// After a security message that leaves the client VNC Authentication alone (3.3's pick, or the
/// only type offered): the 16-byte challenge, the SecurityResult (7.1.3: 0 OK, else failed) and,
/// once it is OK, the ServerInit (7.3.2: width, height, pixel format, the desktop's name).
/// Whether this side's facts are all in.
fn after_vnc_auth(data: &[u8], meta: &mut Meta) -> bool {
    const CHALLENGE: usize = 16;
    let Some(result) = be32(data, CHALLENGE) else {
        return false;
    };
    if result != 0 {
        meta.insert("rfb_auth".into(), Value::String("failed".into()));
        return true;
    }
    meta.insert("rfb_auth".into(), Value::String("success".into()));
    let init = CHALLENGE + 4;
    let (Some(width), Some(height)) = (be16(data, init), be16(data, init + 2)) else {
        return false;
    };
    let Some(name_len) = be32(data, init + 20) else {
        return false;
    };
    let Some(name) = data.get(init + 24..) else {
        return false;
    };
    if name.len() < name_len.min(MAX_REASON) {
        return false;
    }
    meta.insert(
        "rfb_geometry".into(),
        Value::String(format!("{width}x{height}")),
    );
    meta.insert(
        "rfb_desktop".into(),
        Value::String(clean_text(&name[..name_len.min(MAX_REASON)], MAX_REASON)),
    );
    true
}

/// A refusal's reason: 3.3 puts its length after the 32-bit zero type, 3.7 after the zero count.
/// A reason has text, and 3.7's text read as 3.3's length is millions (printable bytes), so the
/// reading whose length is a plausible one is the server's.
fn refusal(rest: &[u8]) -> Option<String> {
    let at = [4, 1]
        .into_iter()
        .find(|&off| be32(rest, off).is_some_and(|len| (1..=MAX_REFUSAL).contains(&len)));
    match at {
        Some(off) => reason(rest, off),
        // Cut before a length, or lengths no reason has (an empty one, or a hostile one).
        None if rest.len() < 8 => None,
        None => Some(String::new()),
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() < VERSION_LEN {
        return if b"RFB ".starts_with(&data[..data.len().min(4)]) {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    }
    let Some((major, minor)) = version(data) else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    meta.insert(
        "rfb_version".into(),
        Value::String(format!("{major}.{minor}")),
    );
    let rest = &data[VERSION_LEN..];
    let done = if from_client {
        // 3.3's client sends nothing of the handshake's choosing (the server picks); later
        // versions answer with the type they chose.
        if (major, minor) >= (3, 7) {
            match rest.first() {
                Some(&t) => {
                    meta.insert(
                        "rfb_security_choice".into(),
                        Value::String(security_name(t)),
                    );
                    true
                }
                None => false,
            }
        } else {
            true
        }
    } else {
        match server_security(rest) {
            Some((types, refused, used)) => {
                let names = types.iter().map(|&t| Value::String(security_name(t)));
                meta.insert("rfb_security".into(), Value::Array(names.collect()));
                match refused {
                    Some(why) => {
                        meta.insert("rfb_refused".into(), Value::String(why));
                        true
                    }
                    None if types == [2] => after_vnc_auth(&rest[used..], &mut meta),
                    None if types == [1] => {
                        // None is the only way on: no authentication at all (7.2.1).
                        meta.insert("rfb_auth".into(), Value::String("none".into()));
                        true
                    }
                    None => true,
                }
            }
            None => false,
        }
    };
    ProbeResult::hit_done(meta, done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    fn list(r: &ProbeResult, key: &str) -> Vec<String> {
        r.meta
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_38_server_offers_its_types_and_a_33_server_picks_one() {
        // TigerVNC offering VNC Authentication to a 3.8 client: a count, then the types.
        let r = probe(b"RFB 003.008\n\x02\x02\x10", false);
        assert_eq!((r.status, r.done), (Status::Match, true));
        assert_eq!(text(&r, "rfb_version").as_deref(), Some("3.8"));
        assert_eq!(list(&r, "rfb_security"), ["vnc-auth", "tight"]);
        // The same server after a 3.3 client's answer (Appendix A.1): one 32-bit type, then
        // VNC Authentication's 16-byte challenge.
        let mut picked = b"RFB 003.008\n\x00\x00\x00\x02".to_vec();
        picked.extend([0xaa; 16]);
        assert_eq!(list(&probe(&picked, false), "rfb_security"), ["vnc-auth"]);
    }

    /// Security type None as the only way on (3.3's pick, or the one type a 3.8 server offers) is
    /// a desktop without authentication; None among others is the client's choice to make.
    #[test]
    fn none_as_the_only_way_on_is_no_authentication() {
        for server in [
            &b"RFB 003.008\n\x00\x00\x00\x01"[..],
            b"RFB 003.008\n\x01\x01",
        ] {
            let r = probe(server, false);
            assert_eq!(list(&r, "rfb_security"), ["none"]);
            assert_eq!(text(&r, "rfb_auth").as_deref(), Some("none"));
        }
        let offered = probe(b"RFB 003.008\n\x02\x01\x02", false);
        assert_eq!(text(&offered, "rfb_auth"), None);
        let chosen = probe(b"RFB 003.008\n\x01", true);
        assert_eq!(
            text(&chosen, "rfb_security_choice").as_deref(),
            Some("none")
        );
    }

    #[test]
    fn vnc_authentication_gives_its_result_and_then_the_desktop() {
        let mut ok = b"RFB 003.008\n\x00\x00\x00\x02".to_vec();
        ok.extend([0x5a; 16]); // the challenge
        ok.extend([0, 0, 0, 0]); // SecurityResult OK
        let waiting = probe(&ok, false);
        assert_eq!(text(&waiting, "rfb_auth").as_deref(), Some("success"));
        assert!(!waiting.done, "the ServerInit is still to come");
        ok.extend([0, 64, 0, 48]); // ServerInit: 64x48
        ok.extend([16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0]); // pixel format
        ok.extend(b"\x00\x00\x00\x05pwsrv");
        let r = probe(&ok, false);
        assert!(r.done);
        assert_eq!(text(&r, "rfb_desktop").as_deref(), Some("pwsrv"));
        assert_eq!(text(&r, "rfb_geometry").as_deref(), Some("64x48"));
        let mut bad = b"RFB 003.008\n\x01\x02".to_vec();
        bad.extend([0x5a; 16]);
        bad.extend([0, 0, 0, 1]);
        let r = probe(&bad, false);
        assert_eq!(
            (text(&r, "rfb_auth").as_deref(), r.done),
            (Some("failed"), true)
        );
        // Several types offered: which the client took is in its own bytes, not here.
        let r = probe(b"RFB 003.008\n\x02\x01\x02", false);
        assert_eq!((text(&r, "rfb_auth"), r.done), (None, true));
    }

    #[test]
    fn a_refusal_keeps_its_reason_in_either_framing() {
        let mut v38 = b"RFB 003.008\n\x00\x00\x00\x00\x0etoo many tries".to_vec();
        let r = probe(&v38, false);
        assert_eq!(text(&r, "rfb_refused").as_deref(), Some("too many tries"));
        assert!(list(&r, "rfb_security").is_empty() && r.done);
        v38.truncate(v38.len() - 3);
        let cut = probe(&v38, false);
        assert_eq!((cut.status, cut.done), (Status::Match, false));
        let v33 = b"RFB 003.003\n\x00\x00\x00\x00\x00\x00\x00\x04busy";
        assert_eq!(
            text(&probe(v33, false), "rfb_refused").as_deref(),
            Some("busy")
        );
    }

    #[test]
    fn a_client_says_its_version_and_from_37_on_the_type_it_chose() {
        let r = probe(b"RFB 003.003\n", true);
        assert_eq!((r.status, r.done), (Status::Match, true));
        assert_eq!(text(&r, "rfb_version").as_deref(), Some("3.3"));
        let r = probe(b"RFB 003.008\n\x02", true);
        assert_eq!(text(&r, "rfb_security_choice").as_deref(), Some("vnc-auth"));
        // RealVNC's own types, in the ranges IANA leaves to it
        let r = probe(b"RFB 004.001\n\x0d", true);
        assert_eq!(
            text(&r, "rfb_security_choice").as_deref(),
            Some("realvnc-13")
        );
        let waiting = probe(b"RFB 003.008\n", true);
        assert_eq!((waiting.status, waiting.done), (Status::Match, false));
    }

    #[test]
    fn only_a_whole_version_line_is_rfb() {
        assert_eq!(probe(b"RFB 00", true).status, Status::More);
        assert_eq!(probe(b"RFB 003.008\r\n", true).status, Status::No);
        assert_eq!(probe(b"RFB 3.8.0000\n", true).status, Status::No);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n", true).status, Status::No);
        assert_eq!(probe(b"", true).status, Status::More);
    }

    #[test]
    fn hostile_counts_and_lengths_stay_in_bounds() {
        for cut in 0..=40 {
            let mut data = b"RFB 003.008\n\xff".to_vec();
            data.extend(std::iter::repeat_n(0xff, cut));
            let _ = probe(&data, false);
            // A refusal whose length no reason has: a refusal all the same, its reason empty.
            let mut data = b"RFB 003.008\n\x00\xff\xff\xff\xff".to_vec();
            data.extend(std::iter::repeat_n(b'x', cut));
            let r = probe(&data, false);
            assert_eq!(r.done, data.len() >= VERSION_LEN + 8);
            assert!(text(&r, "rfb_refused").is_none_or(|why| why.is_empty()));
        }
    }
}
