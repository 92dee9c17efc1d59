//! MySQL / MariaDB client-server protocol: the server's initial handshake packet (protocol 10).
//!
//! Server side only. A 3-byte little-endian payload length that fits, sequence id 0, protocol
//! version 10, a NUL-terminated printable server version, a 4-byte connection id and 8 bytes of
//! auth-plugin data followed by a NUL filler. A server refusing the host sends an ERR packet
//! (0xFF, error code, message) with sequence 0 instead, which matches too.
//!
//! Meta: `mysql_version` (MariaDB's without the "5.5.5-" it sends first) and `banner` (the server
//! version string as sent, sanitised), or `mysql_error`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("mysql", probe)];

const MAX_PAYLOAD: usize = 1024;
/// How far the version's NUL is looked for (from offset 5).
const VERSION_SPAN: usize = 80;

/// `[0-9]{1,2}\.[0-9][\x21-\x7e]{0,78}`, the whole of `v`.
fn is_version(v: &[u8]) -> bool {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count().min(2);
    if digits == 0 || v.get(digits) != Some(&b'.') {
        return false;
    }
    let after = v.get(digits + 1..).unwrap_or_default();
    match after.split_first() {
        Some((d, rest)) => {
            d.is_ascii_digit() && rest.len() <= 78 && rest.iter().all(|b| (0x21..=0x7e).contains(b))
        }
        None => false,
    }
}

/// MariaDB 10+ puts "5.5.5-" ahead of its version in the greeting, for replication clients that
/// read the first digit as the major version; MariaDB's own connectors strip it. The banner
/// keeps what the server sent.
fn server_version(version: &str) -> &str {
    match version.strip_prefix("5.5.5-") {
        Some(real) if real.contains("MariaDB") => real,
        _ => version,
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let [l0, l1, l2, seq, kind, ..] = *data else {
        return ProbeResult::no();
    };
    if from_client {
        return ProbeResult::no();
    }
    let length = usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16;
    if seq != 0 || !(3..=MAX_PAYLOAD).contains(&length) {
        return ProbeResult::no();
    }
    if kind == 0xff {
        // ERR before the handshake: error code, then text.
        if length < 4 || 4 + length > data.len() + 512 {
            return ProbeResult::no();
        }
        let text = data
            .get(7..(4 + length).min(data.len()))
            .unwrap_or_default();
        if text.is_empty() || text.iter().take(64).any(|b| !(0x20..=0x7e).contains(b)) {
            return ProbeResult::no();
        }
        let mut meta = Meta::new();
        meta.insert("mysql_error".into(), json!(clean_text(text, 128)));
        return ProbeResult::hit(meta);
    }
    if kind != 10 || length < 40 {
        return ProbeResult::no();
    }
    let window = data
        .get(5..(5 + VERSION_SPAN).min(data.len()))
        .unwrap_or_default();
    let Some(nul) = window.iter().position(|&b| b == 0) else {
        return ProbeResult::no();
    };
    let end = 5 + nul;
    let version = window.get(..nul).unwrap_or_default();
    if !is_version(version) || data.get(end + 13) != Some(&0) {
        return ProbeResult::no();
    }
    let version = clean_text(version, 80);
    let mut meta = Meta::new();
    meta.insert("mysql_version".into(), json!(server_version(&version)));
    meta.insert("banner".into(), json!(version));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadbs_compatibility_prefix_is_not_its_version() {
        assert_eq!(
            server_version("5.5.5-10.11.19-MariaDB-0+deb12u1"),
            "10.11.19-MariaDB-0+deb12u1"
        );
        assert_eq!(server_version("5.5.5-log"), "5.5.5-log");
        assert_eq!(server_version("8.0.36"), "8.0.36");
    }
    use crate::detect::probes::Status;

    /// A protocol-10 handshake (MySQL Internals "Initial Handshake Packet").
    fn handshake(version: &[u8]) -> Vec<u8> {
        let mut body = vec![10];
        body.extend_from_slice(version);
        body.push(0);
        body.extend_from_slice(&7u32.to_le_bytes()); // connection id
        body.extend_from_slice(b"abcdefgh"); // auth-plugin-data part 1
        body.push(0); // filler
        body.extend_from_slice(&0xf7ffu16.to_le_bytes()); // capability flags (lower)
        body.push(0x21); // character set
        body.extend_from_slice(&2u16.to_le_bytes()); // status flags
        body.extend_from_slice(&0x81ffu16.to_le_bytes()); // capability flags (upper)
        body.push(21); // auth-plugin-data length
        body.extend_from_slice(&[0; 10]); // reserved
        body.extend_from_slice(b"ijklmnopqrst\0");
        body.extend_from_slice(b"mysql_native_password\0");
        let mut out = (body.len() as u32).to_le_bytes()[..3].to_vec();
        out.push(0);
        out.extend(body);
        out
    }

    #[test]
    fn handshake_from_spec() {
        let r = probe(&handshake(b"8.0.36-0ubuntu0.22.04.1"), false);
        assert!(r.is_match());
        assert_eq!(r.meta["mysql_version"], "8.0.36-0ubuntu0.22.04.1");
        assert_eq!(r.meta["banner"], "8.0.36-0ubuntu0.22.04.1");
        assert_eq!(probe(&handshake(b"8.0.36"), true).status, Status::No);
        assert_eq!(probe(&handshake(b"123.0"), false).status, Status::No);
        assert_eq!(probe(&handshake(b"5."), false).status, Status::No);
        assert!(probe(&handshake(b"10.11.6-MariaDB"), false).is_match());
    }

    #[test]
    fn err_packet() {
        // ERR 1130 "Host ... is not allowed to connect", sequence 0.
        let msg = b"Host '10.0.0.9' is not allowed to connect to this MySQL server";
        let mut pkt = ((msg.len() + 3) as u32).to_le_bytes()[..3].to_vec();
        pkt.extend_from_slice(&[0, 0xff, 0x6a, 0x04]);
        pkt.extend_from_slice(msg);
        let r = probe(&pkt, false);
        assert_eq!(r.meta["mysql_error"], std::str::from_utf8(msg).unwrap());
    }

    #[test]
    fn version_grammar() {
        assert!(is_version(b"5.7.44"));
        assert!(is_version(b"10.5"));
        assert!(!is_version(b"1"));
        assert!(!is_version(b".5"));
        assert!(!is_version(b"5.x"));
        assert!(!is_version(b"5.7 4"));
        let long = [b"1.2".as_slice(), &[b'a'; 78]].concat();
        assert!(is_version(&long));
        assert!(!is_version(&[long.as_slice(), b"a"].concat()));
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("mysql");
    }
}
