//! HTTP/1.x probe: request line (client) or status line (server), then the headers present.
//!
//! - client side: `METHOD SP request-target SP HTTP/1.[01]` with METHOD from `METHODS`
//!   (case-sensitive, includes CONNECT and the WebDAV verbs). Meta: `http_method`, `http_path`
//!   (the request target), `http_version` ("1.1"), then `http_host`, `http_user_agent`,
//!   `http_upgrade` in header order and, for CONNECT, `http_connect_target`.
//! - server side: `HTTP/1.[01] SP 3DIGIT [SP reason]`. Meta: `http_version`, `http_status`
//!   (int), then `http_server` and `http_upgrade` in header order.
//! - MORE while the first line is incomplete but still a valid prefix; MATCH once it is complete,
//!   with whatever headers are complete (at most `MAX_HEADERS`), done at the blank line, partial
//!   while the input ends inside the head.
//!
//! Hand-parsed rather than with `httparse`: the Python oracle takes any line ending (LF, CRLF,
//! or several CRs before the LF), stops at the first malformed header but keeps the ones before
//! it, accepts only its own method list, checks the request target's form, and answers MORE on a
//! valid prefix of the first line; `httparse` differs on each (it takes any token as a method,
//! rejects the whole head on a bad header, and reports no partial request line).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{Meta, Value};
use crate::text::{clean_text, MAX_TEXT};

pub static PROBES: &[Probe] = &[Probe::single("http", probe).answers(answers!["http_version"])];

const MAX_INPUT: usize = 65536;
const MAX_LINE: usize = 8192;
const MAX_HEADERS: usize = 64;
const PATH_LIMIT: usize = 1024;

const METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
    b"MKCALENDAR",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"NOTIFY",
    b"PURGE",
];
/// The longest method ("UNSUBSCRIBE").
const MAX_METHOD: usize = 11;
const VERSIONS: [&[u8]; 2] = [b"HTTP/1.0", b"HTTP/1.1"];

fn is_method(m: &[u8]) -> bool {
    METHODS.contains(&m)
}

/// No SP, no CTL (obs-text tolerated), not empty.
fn target_chars(t: &[u8]) -> bool {
    !t.is_empty() && t.iter().all(|&b| matches!(b, 0x21..=0x7E | 0x80..=0xFF))
}

/// A CONNECT target: `host:port` or `[v6]:port`, with 1-5 port digits.
fn authority(t: &[u8]) -> bool {
    let (host_ok, port) = if let Some(inner) = t.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return false;
        };
        let host = &inner[..close];
        let ok = !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        (
            ok,
            inner.get(close + 1..).and_then(|r| r.strip_prefix(b":")),
        )
    } else {
        let Some(colon) = t.iter().position(|&b| b == b':') else {
            return false;
        };
        let host = &t[..colon];
        let ok = !host.is_empty()
            && host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"._~%!$&'()*+,;=-".contains(&b));
        (ok, t.get(colon + 1..))
    };
    host_ok && port.is_some_and(|p| (1..=5).contains(&p.len()) && p.iter().all(u8::is_ascii_digit))
}

fn target_ok(method: &[u8], target: &[u8]) -> bool {
    if !target_chars(target) {
        return false;
    }
    if method == b"CONNECT" {
        return authority(target);
    }
    if target == b"*" {
        return method == b"OPTIONS";
    }
    let head7 = target.get(..7).unwrap_or(target).to_ascii_lowercase();
    let head16 = target.get(..16).unwrap_or(target);
    target.starts_with(b"/")
        || head7 == b"http://"
        || head7 == b"https:/"
        || head16.windows(3).any(|w| w == b"://")
}

fn trim_cr(mut line: &[u8]) -> &[u8] {
    while let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    line
}

fn find(hay: &[u8], b: u8) -> Option<usize> {
    memchr::memchr(b, hay)
}

/// An incomplete first line that can still become a request line.
fn request_prefix_ok(line: &[u8]) -> bool {
    let Some(sp) = find(line, b' ') else {
        return line.len() <= MAX_METHOD && METHODS.iter().any(|m| m.starts_with(line));
    };
    let method = &line[..sp];
    if !is_method(method) {
        return false;
    }
    let rest = &line[sp + 1..];
    let Some(sp2) = find(rest, b' ') else {
        return rest.is_empty() || target_chars(rest);
    };
    let version = trim_cr(&rest[sp2 + 1..]);
    target_ok(method, &rest[..sp2]) && VERSIONS.iter().any(|v| v.starts_with(version))
}

/// An incomplete first line that can still become a status line.
fn status_prefix_ok(line: &[u8]) -> bool {
    let line = trim_cr(line);
    const HEAD: &[u8] = b"HTTP/1.x 000";
    for (i, (&b, &want)) in line.iter().zip(HEAD).enumerate() {
        let ok = match want {
            b'x' => b == b'0' || b == b'1',
            b'0' if i == 9 => (b'1'..=b'5').contains(&b),
            b'0' => b.is_ascii_digit(),
            _ => b == want,
        };
        if !ok {
            return false;
        }
    }
    line.get(HEAD.len()).is_none_or(|&b| b == b' ')
}

/// `HTTP/1.[01] SP [1-5]DD [SP reason]`: (minor version digit, status).
fn status_line(line: &[u8]) -> Option<(u8, u16)> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    let code = rest.strip_prefix(b" ")?;
    let digits = code.get(..3)?;
    if !matches!(minor, b'0' | b'1')
        || !(b'1'..=b'5').contains(&digits[0])
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let reason = &code[3..];
    if !reason.is_empty() && (reason[0] != b' ' || reason.contains(&b'\r')) {
        return None;
    }
    let status = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    Some((minor, status))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b)
}

/// `name: OWS value OWS` -> (name, value), when the line is a well-formed header.
fn header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = find(line, b':')?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let value = &line[colon + 1..];
    let start = value.iter().position(|b| !ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    let value = value.get(start..end).unwrap_or_default();
    if value.contains(&b'\r') {
        return None;
    }
    Some((name, value))
}

/// Header names kept as facts (any case) and the facts' names.
const WANTED: [(&[u8], &str); 4] = [
    (b"host", "http_host"),
    (b"user-agent", "http_user_agent"),
    (b"upgrade", "http_upgrade"),
    (b"server", "http_server"),
];

fn wanted(name: &[u8]) -> Option<&'static str> {
    // Compared without a lowercase copy: a header line was an allocation each.
    WANTED
        .iter()
        .find(|(header, _)| name.eq_ignore_ascii_case(header))
        .map(|&(_, fact)| fact)
}

/// How far the header block went.
#[derive(PartialEq)]
enum Head {
    /// The blank line that ends it was reached.
    Complete,
    /// The input ends inside it: more headers may follow.
    Cut,
    /// A malformed header, or too many: nothing more will be read.
    Stopped,
}

/// Collect the wanted headers in order, first one of a name wins.
fn headers(data: &[u8], mut off: usize, found: &mut Vec<(&'static str, String)>) -> Head {
    for _ in 0..MAX_HEADERS {
        let rest = data.get(off..).unwrap_or_default();
        let Some(nl) = find(rest.get(..MAX_LINE).unwrap_or(rest), b'\n') else {
            return if rest.len() < MAX_LINE {
                Head::Cut
            } else {
                Head::Stopped
            };
        };
        let line = trim_cr(&rest[..nl]);
        if line.is_empty() {
            return Head::Complete;
        }
        let Some((name, value)) = header(line) else {
            return Head::Stopped;
        };
        if let Some(key) = wanted(name) {
            if !found.iter().any(|(k, _)| *k == key) {
                found.push((key, clean_text(value, MAX_TEXT)));
            }
        }
        off += nl + 1;
    }
    Head::Stopped
}

/// Classify the first bytes of one HTTP/1.x direction (see the module docs).
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let data = data.get(..MAX_INPUT).unwrap_or(data);
    let Some(nl) = find(data.get(..MAX_LINE).unwrap_or(data), b'\n') else {
        if data.len() >= MAX_LINE {
            return ProbeResult::no();
        }
        let ok = if from_client {
            request_prefix_ok(data)
        } else {
            status_prefix_ok(data)
        };
        return if ok {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    let line = trim_cr(&data[..nl]);
    let mut meta = Meta::new();
    if from_client {
        let mut parts = line.split(|&b| b == b' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return ProbeResult::no();
        };
        if !is_method(method) || !VERSIONS.contains(&version) || !target_ok(method, target) {
            return ProbeResult::no();
        }
        meta.insert(
            "http_method".into(),
            Value::from(String::from_utf8_lossy(method).into_owned()),
        );
        meta.insert(
            "http_path".into(),
            Value::from(clean_text(target, PATH_LIMIT)),
        );
        meta.insert(
            "http_version".into(),
            Value::from(String::from_utf8_lossy(&version[5..]).into_owned()),
        );
        if method == b"CONNECT" {
            meta.insert(
                "http_connect_target".into(),
                Value::from(clean_text(target, MAX_TEXT)),
            );
        }
    } else {
        let Some((minor, status)) = status_line(line) else {
            return ProbeResult::no();
        };
        meta.insert(
            "http_version".into(),
            Value::from(format!("1.{}", char::from(minor))),
        );
        meta.insert("http_status".into(), Value::from(status));
    }
    let mut found = Vec::new();
    let head = headers(data, nl + 1, &mut found);
    for (key, value) in found {
        let side_ok = if from_client {
            key != "http_server"
        } else {
            key != "http_host" && key != "http_user_agent"
        };
        if side_ok {
            meta.insert(key.into(), Value::from(value));
        }
    }
    // the body adds nothing to these facts
    let mut result = ProbeResult::hit_done(meta, head == Head::Complete);
    // a head cut between segments (a proxy relaying it a line at a time) may still name the server
    result.partial = head == Head::Cut;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn wanted_headers_match_in_any_case_and_only_whole() {
        assert_eq!(wanted(b"Host"), Some("http_host"));
        assert_eq!(wanted(b"USER-AGENT"), Some("http_user_agent"));
        assert_eq!(wanted(b"upgrade"), Some("http_upgrade"));
        assert_eq!(wanted(b"sErVeR"), Some("http_server"));
        for other in [
            &b"hosts"[..],
            b"hos",
            b"",
            b"x-host",
            b"server ",
            b"user_agent",
        ] {
            assert_eq!(wanted(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_head_cut_between_header_lines_is_partial() {
        // tinyproxy relays a response head a line at a time: the Server header may come later.
        let cut = probe(b"HTTP/1.1 200 OK\r\nVia: 1.1 tinyproxy\r\n", false);
        assert_eq!(
            (cut.status, cut.done, cut.partial),
            (Status::Match, false, true)
        );
        let whole = probe(
            b"HTTP/1.1 200 OK\r\nVia: 1.1 tinyproxy\r\nServer: nginx\r\n\r\n",
            false,
        );
        assert_eq!((whole.done, whole.partial), (true, false));
        assert_eq!(
            whole.meta.get("http_server").and_then(Value::as_str),
            Some("nginx")
        );
        // A malformed header ends the reading: neither done nor partial.
        let bad = probe(b"HTTP/1.1 200 OK\r\nno colon here\r\nServer: x\r\n", false);
        assert_eq!((bad.done, bad.partial), (false, false));
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("http");
    }

    #[test]
    fn request_with_headers() {
        let req = b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com \r\nUser-Agent:\tcurl/8.5.0\r\nServer: no\r\nhost: second\r\n\r\nbody";
        let got = probe(req, true);
        assert!(got.done);
        let want = serde_json::json!({
            "http_method": "GET", "http_path": "/index.html?q=1", "http_version": "1.1",
            "http_host": "example.com", "http_user_agent": "curl/8.5.0",
        });
        assert_eq!(Value::from(got.meta), want);
        // a malformed header ends the collection: the ones before it stay, not done
        let bad = probe(
            b"GET / HTTP/1.0\nHost: a\nbad header\nUser-Agent: x\n\n",
            true,
        );
        assert_eq!((bad.status, bad.done), (Status::Match, false));
        assert_eq!(
            Value::from(bad.meta),
            serde_json::json!({"http_method": "GET", "http_path": "/", "http_version": "1.0", "http_host": "a"})
        );
        assert_eq!(probe(b"GET / HTTP/1.1\r\r\n", true).status, Status::Match);
        assert_eq!(probe(b"get / HTTP/1.1\r\n", true).status, Status::No);
        assert_eq!(probe(b"GET  / HTTP/1.1\r\n", true).status, Status::No);
        assert_eq!(probe(b"GET * HTTP/1.1\r\n", true).status, Status::No);
        assert_eq!(probe(b"OPTIONS * HTTP/1.1\r\n", true).status, Status::Match);
        assert_eq!(
            probe(b"GET ftp://x/ HTTP/1.1\r\n", true).status,
            Status::Match
        );
        assert_eq!(probe(b"GET x HTTP/1.1\r\n", true).status, Status::No);
    }

    #[test]
    fn connect_targets() {
        for (t, ok) in [
            (&b"example.com:443"[..], true),
            (b"[2001:db8::1]:443", true),
            (b"10.0.0.1:123456", false),
            (b"example.com", false),
            (b"[]:1", false),
            (b"a:b:1", false),
            (b":443", false),
        ] {
            let req = [b"CONNECT ", t, b" HTTP/1.1\r\n"].concat();
            assert_eq!(probe(&req, true).is_match(), ok, "{t:?}");
        }
        let got = probe(b"CONNECT host:22 HTTP/1.1\r\nUpgrade: h2c\r\n", true);
        assert_eq!(got.meta["http_connect_target"], "host:22");
        assert_eq!(got.meta["http_upgrade"], "h2c");
    }

    #[test]
    fn response_and_prefixes() {
        let got = probe(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nServer: ng\x1b[0mx\r\n\r\n",
            false,
        );
        assert_eq!(
            Value::from(got.meta),
            serde_json::json!({"http_version": "1.1", "http_status": 101, "http_upgrade": "websocket", "http_server": "ng\\x1b[0mx"})
        );
        assert!(probe(b"HTTP/1.0 200\n", false).is_match());
        assert_eq!(probe(b"HTTP/1.0 600 x\n", false).status, Status::No);
        assert_eq!(probe(b"HTTP/1.0 200x\n", false).status, Status::No);
        let full = b"HTTP/1.1 404 Not Found\r";
        for cut in 0..=full.len() {
            assert_eq!(probe(&full[..cut], false).status, Status::More, "cut {cut}");
        }
        assert_eq!(probe(b"HTTP/1.2", false).status, Status::No);
        let req = b"PROPFIND /dav/ HTTP/1.1\r";
        for cut in 0..=req.len() {
            assert_eq!(probe(&req[..cut], true).status, Status::More, "cut {cut}");
        }
        assert_eq!(probe(b"PROPFINDX", true).status, Status::No);
        assert_eq!(probe(&vec![b'/'; MAX_LINE], true).status, Status::No);
    }
}
