//! SOCKS 4/4a (the de-facto spec) and SOCKS 5 (RFC 1928): the greeting and the connect request.
//!
//! `socks`: TCP stream prefix.
//! - client, SOCKS 5: version 5, 1-16 methods (all known or private), and when more bytes
//!   follow, a request (version 5, command 1-3, reserved 0, address type 1, 3 or 4) that must
//!   parse.
//! - client, SOCKS 4: version 4, command 1-2, port, IPv4 address, NUL-terminated user id (and
//!   for 4a, address 0.0.0.x with x != 0, a NUL-terminated host name).
//! - server: SOCKS 5 method selection (5, method) or SOCKS 4 reply (0, status 90-93, 6 bytes).
//!
//!   Between the two, the username/password subnegotiation of RFC 1929 when the greeting offers
//!   that method: version 1, then the user name and the password, in clear.
//!
//! Meta: `socks_version` (4, 5), `socks_target` ("host:port", sanitised), `socks_auth` (the
//! method the server chose: "none", "gssapi", "password"...), `cleartext_login` for an RFC 1929
//! login. The password is never kept: with a subnegotiation the probe gives `client_head`
//! itself, the greeting alone.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};
use crate::text::{clean_text, hex, ipv6_text};
use std::net::Ipv4Addr;

pub static PROBES: &[Probe] = &[Probe::single("socks", probe)];

const TARGET_LIMIT: usize = 300;
const HOST_LIMIT: usize = 255;
/// How far a SOCKS 4 user id or 4a host name is looked for its NUL.
const MAX_FIELD: usize = 256;

fn method_name(m: u8) -> Option<&'static str> {
    Some(match m {
        0 => "none",
        1 => "gssapi",
        2 => "password",
        3 => "chap",
        0xFF => "no-acceptable",
        _ => return None,
    })
}

fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn ipv4(b: &[u8]) -> Option<String> {
    let a: [u8; 4] = b.try_into().ok()?;
    Some(Ipv4Addr::from(a).to_string())
}

/// "host:port" of a SOCKS 5 request, or None.
fn request5(data: &[u8]) -> Option<String> {
    if data.len() < 7 || data[0] != 5 || !(1..=3).contains(&data[1]) || data[2] != 0 {
        return None;
    }
    let (host, end) = match (data[3], data[4]) {
        (1, _) if data.len() >= 10 => (ipv4(data.get(4..8)?)?, 8),
        (4, _) if data.len() >= 22 => (
            format!("[{}]", ipv6_text(data.get(4..20)?.try_into().ok()?)),
            20,
        ),
        (3, n) if n != 0 && data.len() >= 5 + usize::from(n) + 2 => {
            let name = data.get(5..5 + usize::from(n))?;
            if !name.iter().all(|b| (0x21..=0x7E).contains(b)) {
                return None;
            }
            (
                String::from_utf8_lossy(name).into_owned(),
                5 + usize::from(n),
            )
        }
        _ => return None,
    };
    Some(format!("{host}:{}", be16(data, end)?))
}

fn find_nul(data: &[u8], from: usize, to: usize) -> Option<usize> {
    let window = data.get(from..to.min(data.len()))?;
    window.iter().position(|&b| b == 0).map(|i| from + i)
}

/// RFC 1929: the subnegotiation's version, and the method that asks for it.
const PASSWORD_VERSION: u8 = 1;
const PASSWORD_METHOD: u8 = 2;

/// Where an RFC 1929 request (version, user name, password, each name behind its length) ends.
fn login_end(data: &[u8]) -> Option<usize> {
    let user = usize::from(*data.get(1)?);
    let password = usize::from(*data.get(2 + user)?);
    let end = 3 + user + password;
    (user > 0 && end <= data.len()).then_some(end)
}

fn client(data: &[u8]) -> Option<Meta> {
    let mut meta = Meta::new();
    match (data[0], data[1]) {
        (5, n) => {
            let n = usize::from(n);
            let methods = data.get(2..2 + n).filter(|_| (1..=16).contains(&n))?;
            if methods
                .iter()
                .any(|&m| m == 0xFF || (method_name(m).is_none() && !(0x80..=0xFE).contains(&m)))
            {
                return None;
            }
            meta.insert("socks_version".into(), Value::from(5));
            let mut rest = data.get(2 + n..).unwrap_or_default();
            if rest.first() == Some(&PASSWORD_VERSION) && methods.contains(&PASSWORD_METHOD) {
                meta.insert("cleartext_login".into(), Value::from(true));
                meta.insert("client_head".into(), Value::from(hex(&data[..2 + n])));
                // The request follows the login; a stream cut inside the login ends here.
                rest = login_end(rest)
                    .and_then(|end| rest.get(end..))
                    .unwrap_or_default();
            }
            if !rest.is_empty() {
                let target = request5(rest)?;
                meta.insert(
                    "socks_target".into(),
                    Value::from(clean_text(target.as_bytes(), TARGET_LIMIT)),
                );
            }
        }
        (4, 1 | 2) if data.len() >= 9 => {
            let end = find_nul(data, 8, 8 + MAX_FIELD)?;
            let port = be16(data, 2)?;
            let host = if data[4..7] == [0, 0, 0] && data[7] != 0 {
                let host_end =
                    find_nul(data, end + 1, end + 1 + MAX_FIELD).filter(|&e| e > end + 1)?;
                clean_text(data.get(end + 1..host_end)?, HOST_LIMIT)
            } else {
                ipv4(data.get(4..8)?)?
            };
            meta.insert("socks_version".into(), Value::from(4));
            let target = format!("{host}:{port}");
            meta.insert(
                "socks_target".into(),
                Value::from(clean_text(target.as_bytes(), TARGET_LIMIT)),
            );
        }
        _ => return None,
    }
    Some(meta)
}

/// The length of a SOCKS 5 request or reply (version, command or status, reserved, address,
/// port: RFC 1928 §4, §6), when all of it is in `data`.
fn message5_len(data: &[u8]) -> Option<usize> {
    let len = match *data.get(3)? {
        1 => 4 + 4 + 2,
        4 => 4 + 16 + 2,
        3 => 4 + 1 + usize::from(*data.get(4)?) + 2,
        _ => return None,
    };
    (data.len() >= len).then_some(len)
}

/// Where the client's side of a SOCKS handshake ends (greeting, RFC 1929 login, request; or a
/// SOCKS 4 request): the tunnelled bytes start there. None when it is not all there.
pub fn client_handshake_end(data: &[u8]) -> Option<usize> {
    match *data.first()? {
        5 => {
            let n = usize::from(*data.get(1)?);
            let methods = data.get(2..2 + n)?;
            let mut at = 2 + n;
            let rest = data.get(at..)?;
            if rest.first() == Some(&PASSWORD_VERSION) && methods.contains(&PASSWORD_METHOD) {
                at += login_end(rest)?;
            }
            let request = data.get(at..)?;
            request5(request)?;
            Some(at + message5_len(request)?)
        }
        4 => {
            let end = find_nul(data, 8, 8 + MAX_FIELD)?;
            if data.get(4..7)? == [0, 0, 0] && *data.get(7)? != 0 {
                return Some(find_nul(data, end + 1, end + 1 + MAX_FIELD)? + 1);
            }
            Some(end + 1)
        }
        _ => None,
    }
}

/// Where the server's side of a SOCKS handshake ends when it granted the connection (method
/// choice, login status, a success reply; or a SOCKS 4 grant). None otherwise.
pub fn server_handshake_end(data: &[u8]) -> Option<usize> {
    match *data.first()? {
        5 => {
            let mut at = 2;
            if *data.get(1)? == PASSWORD_METHOD {
                // RFC 1929: version 1, status 0 for success.
                if data.get(2..4)? != [PASSWORD_VERSION, 0] {
                    return None;
                }
                at = 4;
            }
            let reply = data.get(at..)?;
            if reply.get(..3)? != [5, 0, 0] {
                return None;
            }
            Some(at + message5_len(reply)?)
        }
        0 => (*data.get(1)? == 90 && data.len() >= 8).then_some(8),
        _ => None,
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() < 2 {
        return ProbeResult::no();
    }
    if from_client {
        return client(data).map_or_else(ProbeResult::no, ProbeResult::hit);
    }
    let mut meta = Meta::new();
    if data[0] == 5 && (method_name(data[1]).is_some() || (0x80..=0xFE).contains(&data[1])) {
        // after the method: a password sub-negotiation (1) or a reply (5)
        if data.len() > 2 && (data.len() < 4 || !matches!(data[2], 1 | 5)) {
            return ProbeResult::no();
        }
        meta.insert("socks_version".into(), Value::from(5));
        meta.insert(
            "socks_auth".into(),
            Value::from(method_name(data[1]).unwrap_or("private")),
        );
        return ProbeResult::hit(meta);
    }
    if data[0] == 0 && (90..=93).contains(&data[1]) && data.len() >= 8 {
        meta.insert("socks_version".into(), Value::from(4));
        return ProbeResult::hit(meta);
    }
    ProbeResult::no()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("socks");
    }

    fn meta_of(data: &[u8], from_client: bool) -> Value {
        let got = probe(data, from_client);
        assert_eq!(got.status, Status::Match, "{data:?}");
        Value::from(got.meta)
    }

    /// The real exchanges of captures/socks-1080.pcap (dante and curl): each side's handshake
    /// ends where the tunnelled HTTP begins.
    #[test]
    fn handshakes_end_where_the_tunnelled_bytes_begin() {
        let get = b"GET / HTTP/1.1\r\n";
        let ok = b"HTTP/1.0 200 OK\r\n";
        let cases: [(&[u8], &[u8]); 3] = [
            (
                &[5, 2, 0, 1, 5, 1, 0, 1, 10, 77, 0, 1, 0x1f, 0x90],
                &[5, 0, 5, 0, 0, 1, 10, 77, 0, 1, 0xeb, 0x26],
            ),
            (
                b"\x05\x03\x00\x01\x02\x01\x05pwcap\x0cpwcap-secret\x05\x01\x00\x01\x0a\x4d\x00\x01\x1f\x90",
                &[5, 2, 1, 0, 5, 0, 0, 1, 10, 77, 0, 1, 0xeb, 0x28],
            ),
            (
                &[4, 1, 0x1f, 0x90, 10, 77, 0, 1, 0],
                &[0, 90, 0xeb, 0x2c, 10, 77, 0, 1],
            ),
        ];
        for (client_side, server_side) in cases {
            let c = [client_side, get].concat();
            let s = [server_side, ok].concat();
            assert_eq!(client_handshake_end(&c), Some(client_side.len()));
            assert_eq!(server_handshake_end(&s), Some(server_side.len()));
            // Cut anywhere inside, the handshake is not there yet.
            for i in 0..client_side.len() {
                assert_eq!(client_handshake_end(&c[..i]), None, "{i}");
            }
            for i in 0..server_side.len() {
                assert_eq!(server_handshake_end(&s[..i]), None, "{i}");
            }
        }
        // Refused: a failed login, a SOCKS 5 failure reply, a SOCKS 4 rejection.
        assert_eq!(server_handshake_end(&[5, 2, 1, 1]), None);
        assert_eq!(
            server_handshake_end(&[5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0]),
            None
        );
        assert_eq!(server_handshake_end(&[0, 91, 0, 0, 0, 0, 0, 0]), None);
        // A SOCKS 4a request: the host name follows the user id.
        let socks4a = b"\x04\x01\x01\xbb\x00\x00\x00\x01user\x00example.com\x00";
        assert_eq!(client_handshake_end(socks4a), Some(socks4a.len()));
    }

    /// RFC 1928 §3 greeting (no auth, password), then a §4 CONNECT to a domain name.
    #[test]
    fn socks5_client() {
        let mut c = vec![5, 2, 0, 2];
        assert_eq!(meta_of(&c, true), serde_json::json!({"socks_version": 5}));
        c.extend([5, 1, 0, 3, 11]);
        c.extend(b"example.com");
        c.extend(443u16.to_be_bytes());
        assert_eq!(
            meta_of(&c, true),
            serde_json::json!({"socks_version": 5, "socks_target": "example.com:443"})
        );
        let v6: Vec<u8> = [
            &[5u8, 1, 0, 5, 1, 0, 4][..],
            &[0x20, 1, 0xd, 0xb8],
            &[0; 11],
            &[1, 0, 80],
        ]
        .concat();
        assert_eq!(meta_of(&v6, true)["socks_target"], "[2001:db8::1]:80");
        assert_eq!(probe(&c[..c.len() - 1], true).status, Status::No);
        assert_eq!(probe(&[5, 1, 0xFF], true).status, Status::No);
    }

    /// RFC 1929: the greeting offers username/password, the login follows in clear, then the
    /// request. The kept head is the greeting alone, without the password.
    #[test]
    fn socks5_login_in_clear() {
        let greeting = [5u8, 2, 0, 2];
        let login = [&[1u8, 1, b'u', 8][..], b"Secr3tPw"].concat();
        let request = [&[5u8, 1, 0, 1, 10, 0, 0, 1][..], &80u16.to_be_bytes()].concat();
        let c = [&greeting[..], &login, &request].concat();
        assert_eq!(
            meta_of(&c, true),
            serde_json::json!({"socks_version": 5, "cleartext_login": true,
                               "client_head": "05020002", "socks_target": "10.0.0.1:80"})
        );
        // Cut inside the login: still SOCKS, and still no password kept.
        let cut = [&greeting[..], &login[..6]].concat();
        assert_eq!(meta_of(&cut, true)["client_head"], "05020002");
        // Version 1 after a greeting that did not offer the method is no login.
        assert_eq!(
            probe(&[&[5u8, 1, 0][..], &login].concat(), true).status,
            Status::No
        );
    }

    /// SOCKS 4 CONNECT with a user id, and 4a with a host name holding an escape sequence.
    #[test]
    fn socks4_client() {
        let c = [&[4u8, 1, 0, 80, 192, 0, 2, 1][..], b"fred\0"].concat();
        assert_eq!(
            meta_of(&c, true),
            serde_json::json!({"socks_version": 4, "socks_target": "192.0.2.1:80"})
        );
        let a = [&[4u8, 1, 0x1F, 0x90, 0, 0, 0, 9][..], b"\0ev\x1b[2Jil\0"].concat();
        assert_eq!(meta_of(&a, true)["socks_target"], "ev\\x1b[2Jil:8080");
        assert_eq!(probe(&a[..a.len() - 1], true).status, Status::No);
    }

    #[test]
    fn server_replies() {
        assert_eq!(
            meta_of(&[5, 0], false),
            serde_json::json!({"socks_version": 5, "socks_auth": "none"})
        );
        assert_eq!(meta_of(&[5, 0x85, 1, 0], false)["socks_auth"], "private");
        assert_eq!(probe(&[5, 2, 1], false).status, Status::No);
        assert_eq!(
            meta_of(&[0, 90, 0, 0, 0, 0, 0, 0], false),
            serde_json::json!({"socks_version": 4})
        );
    }
}
