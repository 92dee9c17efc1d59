//! FTP data connections (RFC 959, RFC 2428): where the next data connection goes.
//!
//! Server replies: `227 ... (h1,h2,h3,h4,p1,p2)` (PASV; RFC 1123 4.1.2.6 tells clients to scan
//! for the numbers, so the parentheses may be missing) and `229 ... (|||port|)` (EPSV, any
//! delimiter 33-126, no address: the server's own). Client commands: `PORT h1,h2,h3,h4,p1,p2`
//! and `EPRT |af|addr|port|` (active mode: the server connects to that address). Every one names
//! its sender's own address; one naming another host (FTP bounce, or a NATed server announcing
//! its private address) is for the flow layer to refuse.
use super::{address, lines, number, port, tcp, Announced, Owner};
use crate::decode::Addr;

/// One PASV/PORT tuple: an address (None if 0.0.0.0) and a port, and where the numbers ended.
fn six_numbers(s: &[u8]) -> Option<(Option<Addr>, u16, usize)> {
    let mut v = [0u8; 6];
    let mut at = 0usize;
    for (i, slot) in v.iter_mut().enumerate() {
        if i > 0 {
            // "h1,h2": a comma, spaces allowed around it by some servers
            while s.get(at) == Some(&b' ') {
                at += 1;
            }
            if s.get(at) != Some(&b',') {
                return None;
            }
            at += 1;
            while s.get(at) == Some(&b' ') {
                at += 1;
            }
        }
        let (n, len) = number(s.get(at..)?, 3, 255)?;
        *slot = u8::try_from(n).ok()?;
        at += len;
    }
    let p = u16::from(v[4]) << 8 | u16::from(v[5]);
    if p == 0 {
        return None;
    }
    let ip = [v[0], v[1], v[2], v[3]];
    let ip = (ip != [0, 0, 0, 0]).then_some(Addr::V4(ip));
    Some((ip, p, at))
}

/// `227 text (h1,...,p2)` or `227 text h1,...,p2`.
fn pasv(rest: &[u8]) -> Option<(Option<Addr>, u16)> {
    if let Some(open) = rest.iter().position(|&b| b == b'(') {
        let inner = rest.get(open + 1..)?;
        let (ip, p, end) = six_numbers(inner)?;
        return (inner.get(end) == Some(&b')')).then_some((ip, p));
    }
    let first = rest.iter().position(u8::is_ascii_digit)?;
    let s = rest.get(first..)?;
    let (ip, p, end) = six_numbers(s)?;
    // the numbers end the tuple: "1,2,3,4,5,6,7" is not one
    match s.get(end) {
        Some(b) if b.is_ascii_digit() || *b == b',' => None,
        _ => Some((ip, p)),
    }
}

/// `229 text (|||port|)`.
fn epsv(rest: &[u8]) -> Option<u16> {
    let open = rest.iter().position(|&b| b == b'(')?;
    let s = rest.get(open + 1..)?;
    let d = *s.first()?;
    if !(33..=126).contains(&d) || d.is_ascii_digit() {
        return None;
    }
    if s.get(1) != Some(&d) || s.get(2) != Some(&d) {
        return None;
    }
    let (p, len) = port(s.get(3..)?)?;
    (s.get(3 + len) == Some(&d) && s.get(4 + len) == Some(&b')')).then_some(p)
}

/// `EPRT |1|192.0.2.1|6275|` or `EPRT |2|2001:db8::1|5282|`.
fn eprt(arg: &[u8]) -> Option<(Option<Addr>, u16)> {
    let d = *arg.first()?;
    if !(33..=126).contains(&d) || d.is_ascii_digit() {
        return None;
    }
    let mut parts = arg.get(1..)?.split(|&b| b == d);
    let af = parts.next()?;
    let host = parts.next()?;
    let digits = parts.next()?;
    let (p, len) = port(digits)?;
    if len != digits.len() || digits.first() == Some(&b'0') {
        return None;
    }
    let ip = address(host);
    let ok = match (af, ip) {
        (b"1", Some(Addr::V4(_))) | (b"2", Some(Addr::V6(_))) => true,
        (b"1" | b"2", None) => host.is_empty() || address_unspecified(host),
        _ => false,
    };
    ok.then_some((ip, p))
}

fn address_unspecified(host: &[u8]) -> bool {
    matches!(host, b"0.0.0.0" | b"::")
}

fn strip_command<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let head = line.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) || line.get(name.len()) != Some(&b' ') {
        return None;
    }
    line.get(name.len() + 1..)
}

pub fn announced(bytes: &[u8], from_client: bool) -> Vec<Announced> {
    let mut out = Vec::new();
    for line in lines(bytes) {
        let found = if from_client {
            if let Some(arg) = strip_command(line, b"PORT") {
                six_numbers(arg)
                    .filter(|&(_, _, end)| arg.get(end).is_none_or(|b| *b == b' '))
                    .map(|(ip, p, _)| (ip, p, "PORT"))
            } else if let Some(arg) = strip_command(line, b"EPRT") {
                eprt(arg).map(|(ip, p)| (ip, p, "EPRT"))
            } else {
                None
            }
        } else if let Some(rest) = line.strip_prefix(b"227") {
            pasv(rest).map(|(ip, p)| (ip, p, "PASV"))
        } else if let Some(rest) = line.strip_prefix(b"229") {
            epsv(rest).map(|p| (None, p, "EPSV"))
        } else {
            None
        };
        if let Some((ip, port, by)) = found {
            out.push(Announced {
                ip,
                port,
                proto: tcp(),
                protocol: "ftp-data",
                by,
                owner: Owner::Sender,
            });
        }
        if out.len() >= super::MAX_ANNOUNCED {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8], from_client: bool) -> Option<(Option<Addr>, u16, &'static str)> {
        let v = announced(bytes, from_client);
        assert!(v.len() <= 1, "{v:?}");
        v.first().map(|a| (a.ip, a.port, a.by))
    }

    const V4: Option<Addr> = Some(Addr::V4([10, 77, 0, 1]));

    #[test]
    fn pasv_with_and_without_parentheses() {
        let want = Some((V4, 50000, "PASV"));
        assert_eq!(
            one(b"227 Entering Passive Mode (10,77,0,1,195,80).\r\n", false),
            want
        );
        assert_eq!(
            one(b"227 Entering Passive Mode 10,77,0,1,195,80\r\n", false),
            want
        );
        assert_eq!(one(b"227 =10,77,0,1,195,80\r\n", false), want);
        assert_eq!(one(b"227 ok (10, 77, 0, 1, 195, 80)\r\n", false), want);
        // 0,0,0,0: the control connection's address
        assert_eq!(
            one(b"227 (0,0,0,0,195,80)\r\n", false),
            Some((None, 50000, "PASV"))
        );
    }

    #[test]
    fn pasv_refuses_hostile_tuples() {
        for bad in [
            &b"227 (10,77,0,256,195,80)\r\n"[..], // octet > 255
            b"227 (10,77,0,1,195,800)\r\n",       // port byte > 255
            b"227 (10,77,0,1,0,0)\r\n",           // port 0
            b"227 (10,77,0,1,195)\r\n",           // five numbers
            b"227 (10,77,0,1,195,80\r\n",         // unclosed
            b"227 (10,77,0,1,195,80,7)\r\n",      // seven numbers
            b"227 10,77,0,1,195,80,7\r\n",        // seven, no parentheses
            b"227 (99999999999999999999,1,1,1,1,1)\r\n",
            b"227 (0010,77,0,1,195,80)\r\n", // four digits
            b"227 Entering Passive Mode\r\n",
            b"226 (10,77,0,1,195,80)\r\n", // another reply code
        ] {
            assert_eq!(one(bad, false), None, "{}", String::from_utf8_lossy(bad));
        }
        // a reply is the server's: the client saying it means nothing
        assert_eq!(one(b"227 (10,77,0,1,195,80)\r\n", true), None);
    }

    #[test]
    fn epsv_any_delimiter() {
        let want = Some((None, 50000, "EPSV"));
        assert_eq!(
            one(b"229 Entering Extended Passive Mode (|||50000|)\r\n", false),
            want
        );
        assert_eq!(one(b"229 ok (!!!50000!)\r\n", false), want);
        for bad in [
            &b"229 (|||0|)\r\n"[..],
            b"229 (|||65536|)\r\n",
            b"229 (|||123456789012|)\r\n",
            b"229 (||50000|)\r\n",
            b"229 (|||50000)\r\n",
            b"229 (|||50000|\r\n",
            b"229 |||50000|\r\n",
            b"229 (111500001)\r\n",
            b"229 ( |||50000|)\r\n",
        ] {
            assert_eq!(one(bad, false), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn port_and_eprt_commands() {
        let c = Some(Addr::V4([10, 77, 0, 2]));
        assert_eq!(
            one(b"PORT 10,77,0,2,156,65\r\n", true),
            Some((c, 40001, "PORT"))
        );
        assert_eq!(
            one(b"port 10,77,0,2,156,65\r\n", true),
            Some((c, 40001, "PORT"))
        );
        assert_eq!(
            one(b"EPRT |1|10.77.0.2|40001|\r\n", true),
            Some((c, 40001, "EPRT"))
        );
        let v6 = one(b"EPRT |2|fd77::2|5282|\r\n", true).expect("v6");
        assert!(matches!(v6, (Some(Addr::V6(_)), 5282, "EPRT")));
        for bad in [
            &b"PORT 10,77,0,2,156\r\n"[..],
            b"PORT 10,77,0,300,156,65\r\n",
            b"PORT 10,77,0,2,0,0\r\n",
            b"PORT 10,77,0,2,156,65,1\r\n",
            b"PORTS 10,77,0,2,156,65\r\n",
            b"EPRT |1|fd77::2|5282|\r\n", // family 1 with an IPv6 address
            b"EPRT |2|10.77.0.2|5282|\r\n",
            b"EPRT |3|10.77.0.2|5282|\r\n",
            b"EPRT |1|10.77.0.2|0|\r\n",
            b"EPRT |1|10.77.0.2|65536|\r\n",
            b"EPRT |1|10.77.0.2|00080|\r\n",
            b"EPRT |1|10.77.0.999|80|\r\n",
            b"EPRT 1|10.77.0.2|80|\r\n",
        ] {
            assert_eq!(one(bad, true), None, "{}", String::from_utf8_lossy(bad));
        }
        // a command is the client's
        assert_eq!(one(b"PORT 10,77,0,2,156,65\r\n", false), None);
    }

    #[test]
    fn a_third_host_is_reported_as_named() {
        // FTP bounce: the parser says what the bytes say; the flow layer refuses it.
        let a = one(b"PORT 192,0,2,99,0,25\r\n", true).expect("parsed");
        assert_eq!(a, (Some(Addr::V4([192, 0, 2, 99])), 25, "PORT"));
    }

    #[test]
    fn a_long_line_is_skipped_whole() {
        let mut line = b"227 ".to_vec();
        line.extend(std::iter::repeat_n(b' ', super::super::MAX_LINE));
        line.extend_from_slice(b"(10,77,0,1,195,80)\r\n");
        assert_eq!(one(&line, false), None);
    }
}
