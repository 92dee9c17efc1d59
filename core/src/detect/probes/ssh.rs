//! SSH probe: the identification banner (RFC 4253 §4.2) and the first SSH_MSG_KEXINIT (HASSH).
//!
//! `ssh` looks at the first bytes of one direction of a TCP stream:
//! - client side, the banner must be the first line; server side, up to `MAX_PRE_LINES`
//!   printable lines may come before it (RFC 4253 §4.2 allows them), and while only such lines
//!   are present the answer is MORE.
//! - MATCH as soon as the banner line is complete: meta `ssh_client` or `ssh_server` (the banner
//!   without CR LF, sanitised) and `ssh_protoversion` ("2.0", "1.99", "1.5").
//! - If the binary KEXINIT packet (message 20) that follows is complete, add HASSH per
//!   salesforce/hassh: client `hassh` = md5("kex;enc_c2s;mac_c2s;comp_c2s") and
//!   `hassh_algorithms`; server `hassh_server` = md5("kex;enc_s2c;mac_s2c;comp_s2c") and
//!   `hassh_server_algorithms`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};
use crate::text::{clean_text, MAX_TEXT};
use md5::{Digest, Md5};

pub static PROBES: &[Probe] = &[Probe::single("ssh", probe).answers(answers!["ssh_protoversion"])];

const MAX_INPUT: usize = 65536;
/// Including CR LF (RFC 4253 §4.2).
const MAX_BANNER: usize = 255;
const MAX_PRE_LINE: usize = 1024;
const MAX_PRE_LINES: usize = 16;
/// RFC 4253 §6.1.
const MAX_PACKET: usize = 35000;
const MSG_KEXINIT: u8 = 20;
const ALGORITHMS_LIMIT: usize = 4096;
const PREFIX: &[u8] = b"SSH-";

/// A control byte other than TAB, LF and CR: not in a line before the banner.
fn pre_line_bad(line: &[u8]) -> bool {
    line.iter()
        .any(|&b| matches!(b, 0x00..=0x08 | 0x0B..=0x0C | 0x0E..=0x1F | 0x7F))
}

/// The protocol version of a banner line (without its LF), when the line is
/// `SSH-<digits>.<digits>-<softwareversion>[ SP|TAB comments][CR]`.
fn banner_version(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(PREFIX)?;
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let major = digits(rest);
    let minor = digits(rest.get(major + 1..)?);
    if major == 0 || minor == 0 || rest.get(major) != Some(&b'.') {
        return None;
    }
    let vlen = major + 1 + minor;
    let version = rest.get(..vlen)?;
    let rest = rest.get(vlen..)?.strip_prefix(b"-")?;
    // the software version is the longest run of visible ASCII, so what follows is decided
    let software = rest
        .iter()
        .take_while(|b| (0x21..=0x7E).contains(*b))
        .count();
    if software == 0 {
        return None;
    }
    let tail = rest.get(software..)?;
    let tail = tail.strip_suffix(b"\r").unwrap_or(tail);
    match tail.split_first() {
        None => Some(version),
        Some((b' ' | b'\t', comments))
            if !comments.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) =>
        {
            Some(version)
        }
        _ => None,
    }
}

fn be32(data: &[u8], off: usize) -> Option<usize> {
    let b = data.get(off..off.checked_add(4)?)?;
    usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()
}

/// The first `count` name-lists after message byte + 16-byte cookie, or None if cut/malformed.
fn name_lists(payload: &[u8], count: usize) -> Option<Vec<&[u8]>> {
    let mut off = 17;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let length = be32(payload, off)?;
        off += 4;
        out.push(payload.get(off..off.checked_add(length)?)?);
        off += length;
    }
    Some(out)
}

/// The ten name-lists of an unencrypted binary packet carrying SSH_MSG_KEXINIT, else None.
pub fn parse_kexinit(data: &[u8]) -> Option<Vec<&[u8]>> {
    let packet_length = be32(data, 0)?;
    let padding = usize::from(*data.get(4)?);
    if !(12..=MAX_PACKET).contains(&packet_length) || padding < 4 || padding + 1 >= packet_length {
        return None;
    }
    if data.len() < 4 + packet_length {
        return None; // the padding too must be in
    }
    let payload = data.get(5..4 + packet_length - padding)?;
    if payload.first() != Some(&MSG_KEXINIT) {
        return None;
    }
    name_lists(payload, 10)
}

/// HASSH (client) or HASSH-server from KEXINIT name-lists, per salesforce/hassh.
pub fn hassh_meta(lists: &[&[u8]], from_client: bool, meta: &mut Meta) {
    let [kex, _hostkey, enc_cs, enc_sc, mac_cs, mac_sc, comp_cs, comp_sc, ..] = lists else {
        return;
    };
    let chosen = if from_client {
        [kex, enc_cs, mac_cs, comp_cs]
    } else {
        [kex, enc_sc, mac_sc, comp_sc]
    };
    let raw = chosen.map(|l| *l).join(&b';');
    let digest = crate::text::hex(&Md5::digest(&raw));
    let text = clean_text(&raw, ALGORITHMS_LIMIT);
    let (hash_key, text_key) = if from_client {
        ("hassh", "hassh_algorithms")
    } else {
        ("hassh_server", "hassh_server_algorithms")
    };
    meta.insert(hash_key.into(), Value::from(digest));
    meta.insert(text_key.into(), Value::from(text));
}

/// An incomplete last line that can still become a banner.
fn could_be_banner(rest: &[u8]) -> bool {
    if rest.len() < PREFIX.len() {
        return PREFIX.starts_with(rest);
    }
    rest.starts_with(PREFIX) && rest.len() < MAX_BANNER && !rest.contains(&0)
}

/// Classify the first bytes of one SSH direction (see the module docs).
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let data = data.get(..MAX_INPUT).unwrap_or(data);
    let mut off = 0;
    for lineno in 0..=MAX_PRE_LINES {
        let rest = data.get(off..).unwrap_or_default();
        let window = rest.get(..MAX_BANNER.max(MAX_PRE_LINE)).unwrap_or(rest);
        let Some(len) = memchr::memchr(b'\n', window) else {
            if could_be_banner(rest) {
                return ProbeResult::more();
            }
            let pre_line = !from_client
                && lineno < MAX_PRE_LINES
                && rest.len() < MAX_PRE_LINE
                && !rest.starts_with(PREFIX)
                && !pre_line_bad(rest);
            return if pre_line {
                ProbeResult::more()
            } else {
                ProbeResult::no()
            };
        };
        let line = &rest[..len];
        if line.starts_with(PREFIX) {
            if len + 1 > MAX_BANNER {
                return ProbeResult::no();
            }
            let Some(version) = banner_version(line) else {
                return ProbeResult::no();
            };
            let banner = line.strip_suffix(b"\r").unwrap_or(line);
            let mut meta = Meta::new();
            let key = if from_client {
                "ssh_client"
            } else {
                "ssh_server"
            };
            meta.insert(key.into(), Value::from(clean_text(banner, MAX_TEXT)));
            meta.insert(
                "ssh_protoversion".into(),
                Value::from(String::from_utf8_lossy(version).into_owned()),
            );
            let mut done = false;
            if version == b"2.0" || version == b"1.99" {
                if let Some(lists) = parse_kexinit(rest.get(len + 1..).unwrap_or_default()) {
                    hassh_meta(&lists, from_client, &mut meta);
                    done = true;
                }
            }
            return ProbeResult::hit_done(meta, done);
        }
        if from_client || pre_line_bad(line) {
            return ProbeResult::no();
        }
        off += len + 1;
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("ssh");
    }

    #[test]
    fn banner_forms() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"SSH-2.0-OpenSSH_9.6", b"2.0"),
            (b"SSH-2.0-OpenSSH_9.6\r", b"2.0"),
            (b"SSH-1.99-Cisco-1.25 comment here\r", b"1.99"),
            (b"SSH-2.0-x\t", b"2.0"),
            (b"SSH-2.0-x \r", b"2.0"),
            (b"SSH-10.25-x", b"10.25"),
        ];
        for (line, want) in ok {
            assert_eq!(banner_version(line), Some(*want), "{line:?}");
        }
        let bad: &[&[u8]] = &[
            b"SSH-2.0-",
            b"SSH-2-x",
            b"SSH-.0-x",
            b"SSH-2.-x",
            b"SSH-2.0-x\r\r",
            b"SSH-2.0-x y\rz",
            b"SSH-2.0-x y\0",
            b"SSH-2.0 x",
        ];
        for line in bad {
            assert_eq!(banner_version(line), None, "{line:?}");
        }
    }

    /// A banner and a KEXINIT built per RFC 4253 §6 and §7.1; HASSH as salesforce/hassh.
    #[test]
    fn kexinit_hassh() {
        let lists: [&[u8]; 10] = [
            b"curve25519-sha256,diffie-hellman-group14-sha256",
            b"ssh-ed25519",
            b"aes128-ctr",
            b"aes256-ctr",
            b"hmac-sha2-256",
            b"hmac-sha2-512",
            b"none",
            b"zlib@openssh.com,none",
            b"",
            b"",
        ];
        let mut payload = vec![MSG_KEXINIT];
        payload.extend([0x55; 16]);
        for l in lists {
            payload.extend((l.len() as u32).to_be_bytes());
            payload.extend(l);
        }
        payload.extend([0, 0, 0, 0, 0]); // first_kex_packet_follows, reserved
        let padding = 8 - (payload.len() + 5) % 8 + 8;
        let mut packet = ((payload.len() + padding + 1) as u32)
            .to_be_bytes()
            .to_vec();
        packet.push(padding as u8);
        packet.extend(&payload);
        packet.extend(vec![0; padding]);
        let data = [b"SSH-2.0-OpenSSH_9.6\r\n".as_slice(), &packet].concat();
        let client = probe(&data, true);
        assert!(client.done);
        let raw = "curve25519-sha256,diffie-hellman-group14-sha256;aes128-ctr;hmac-sha2-256;none";
        assert_eq!(
            client.meta["hassh"],
            const_hex::encode(Md5::digest(raw.as_bytes()))
        );
        assert_eq!(client.meta["hassh_algorithms"], raw);
        let server = probe(&data, false);
        assert_eq!(
            server.meta["hassh_server_algorithms"],
            "curve25519-sha256,diffie-hellman-group14-sha256;aes256-ctr;hmac-sha2-512;zlib@openssh.com,none"
        );
        assert_eq!(server.meta["ssh_server"], "SSH-2.0-OpenSSH_9.6");
        // the packet cut: banner facts only, not done
        let cut = probe(&data[..data.len() - 1], true);
        assert_eq!(
            (cut.status, cut.done, cut.meta.len()),
            (Status::Match, false, 2)
        );
    }

    #[test]
    fn server_pre_lines() {
        assert_eq!(probe(b"Welcome\r\n", false).status, Status::More);
        assert_eq!(probe(b"Welcome\r\n", true).status, Status::No);
        assert_eq!(
            probe(b"Welcome\r\nSSH-2.0-x\r\n", false).meta["ssh_server"],
            "SSH-2.0-x"
        );
        assert_eq!(
            probe(b"Wel\x1bcome\r\nSSH-2.0-x\r\n", false).status,
            Status::No
        );
        assert_eq!(probe(&b"x\n".repeat(17), false).status, Status::No);
        assert_eq!(
            probe(
                &[b"x\n".repeat(16), b"SSH-1.5-y\n".to_vec()].concat(),
                false
            )
            .status,
            Status::Match
        );
        assert_eq!(probe(b"SS", true).status, Status::More);
        assert_eq!(probe(b"", true).status, Status::More);
    }
}
