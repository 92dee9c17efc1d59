//! What happened after the first bytes: banners, logins in clear, STARTTLS, CONNECT and
//! WebSocket. A classified flow keeps its protocol (SMTP that
//! upgrades with STARTTLS stays smtp); this adds the facts analysts ask about, from the stream
//! prefixes of both directions. Credentials are never copied, only the fact that they crossed.
//!
//! Keys: `banner`, `smtp_helo` (sanitised, bounded); `cleartext_login: true` when a login
//! crossed before any STARTTLS (anonymous FTP excepted); `upgraded_to` ("tls" when the client
//! asked for TLS and the server agreed, "websocket"/"http2"/the token for a 101 Upgrade);
//! `connect_target` and `tunnel_protocol` for an HTTP CONNECT answered with 2xx.
//!
//! The per-protocol patterns are tables here, as in Python (not yet signature data).
#![forbid(unsafe_code)]

use super::engine::Engine;
use crate::meta::{json, Meta};
use regex::bytes::Regex;
use std::sync::OnceLock;

pub const BANNER_LIMIT: usize = 256;
const HTTP: [&str; 2] = ["http", "http2"];
const GREETING: [&str; 5] = ["smtp", "ftp", "nntp", "pop3", "imap"];
const STARTTLS: [&str; 6] = ["smtp", "ftp", "pop3", "imap", "nntp", "xmpp"];

struct Rx {
    line: Regex,
    greeting: [Regex; 5], // GREETING order
    helo: Regex,
    starttls: [(Regex, Regex); 6], // STARTTLS order
    login: [Regex; 6],             // STARTTLS order
    ftp_anonymous: Regex,
    connect: Regex,
    status: Regex,
    upgrade: Regex,
}

fn rx(p: &str) -> Regex {
    // Fixed patterns, checked by the tests: a failure here is a programming error.
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("fixed pattern")
}

fn rxs() -> &'static Rx {
    static RX: OnceLock<Rx> = OnceLock::new();
    RX.get_or_init(|| Rx {
        line: rx(r"(?-u)\A[^\r\n]{0,1024}\r?\n"),
        greeting: [
            rx(r"(?s-u)\A220[ -]([\x20-\x7e]{0,512})\r?\n"),
            rx(r"(?s-u)\A220[ -]([\x20-\x7e]{0,512})\r?\n"),
            rx(r"(?s-u)\A20[01] ([\x20-\x7e]{0,512})\r?\n"),
            rx(r"(?s-u)\A\+OK ?([\x20-\x7e]{0,512})\r?\n"),
            rx(r"(?is-u)\A\* (?:OK|PREAUTH) ?([\x20-\x7e]{0,512})\r?\n"),
        ],
        helo: rx(r"(?im-u)^(?:EHLO|HELO|LHLO) ([\x21-\x7e]{1,255})\r?$"),
        starttls: [
            (rx(r"(?im-u)^STARTTLS\r?$"), rx(r"(?m-u)^220[ -]")),
            (
                rx(r"(?im-u)^AUTH (?:TLS|SSL|TLS-C)\r?$"),
                rx(r"(?m-u)^234[ -]"),
            ),
            (rx(r"(?im-u)^STLS\r?$"), rx(r"(?m-u)^\+OK")),
            (
                rx(r"(?im-u)^[a-z0-9.]{1,20} STARTTLS\r?$"),
                rx(r"(?im-u)^[a-z0-9.]{1,20} OK"),
            ),
            (rx(r"(?im-u)^STARTTLS\r?$"), rx(r"(?m-u)^382[ -]")),
            (
                rx(r"(?-u)<starttls[\t\n\x0b\x0c\r />]"),
                rx(r"(?-u)<proceed[\t\n\x0b\x0c\r />]"),
            ),
        ],
        login: [
            rx(r"(?im-u)^AUTH (?:PLAIN|LOGIN)\b"),
            rx(r"(?im-u)^PASS\b"),
            rx(r"(?im-u)^(?:PASS\b|AUTH (?:PLAIN|LOGIN)\b)"),
            rx(r"(?im-u)^[a-z0-9.]{1,20} (?:LOGIN\b|AUTHENTICATE (?:PLAIN|LOGIN)\b)"),
            rx(r"(?im-u)^AUTHINFO PASS\b"),
            rx(r#"(?-u)<auth[^>]{0,200}mechanism=['"]PLAIN['"]"#),
        ],
        ftp_anonymous: rx(r"(?im-u)^USER (?:anonymous|ftp)\r?$"),
        connect: rx(r"(?-u)\ACONNECT ([\x21-\x7e]{1,512}) HTTP/1\.[01]\r\n"),
        status: rx(r"(?-u)\AHTTP/1\.[01] ([1-5][0-9][0-9])[ \r]"),
        upgrade: rx(r"(?im-u)^Upgrade: *([\x21-\x7e]{1,64})"),
    })
}

fn index(table: &[&str], protocol: &str) -> Option<usize> {
    table.iter().position(|p| *p == protocol)
}

/// Whether `protocol`'s later bytes may hold these facts (STARTTLS, CONNECT, a login).
pub fn upgrade_watch(protocol: &str) -> bool {
    HTTP.contains(&protocol) || GREETING.contains(&protocol) || STARTTLS.contains(&protocol)
}

/// Whether `protocol`'s facts can settle before the conversation's end (HTTP's first exchange).
pub fn upgrade_settles(protocol: &str) -> bool {
    HTTP.contains(&protocol)
}

/// Whether, given what is known of the flow, later bytes may still add one of these facts.
pub fn upgrade_pending(protocol: &str, meta: &Meta) -> bool {
    if HTTP.contains(&protocol) {
        return !meta.contains_key("http_status")
            || (meta.contains_key("http_connect_target") && !meta.contains_key("tunnel_protocol"));
    }
    GREETING.contains(&protocol) || STARTTLS.contains(&protocol)
}

/// Facts about the rest of a TCP conversation; `client`/`server` are the stream prefixes.
pub fn upgrade_meta(protocol: &str, client: &[&[u8]], server: &[&[u8]], engine: &Engine) -> Meta {
    let c = client.first().copied().unwrap_or(b"");
    let s = server.first().copied().unwrap_or(b"");
    if HTTP.contains(&protocol) {
        return http_meta(c, s, &|ic, is| engine.inner_protocol(ic, is));
    }
    if GREETING.contains(&protocol) || STARTTLS.contains(&protocol) {
        return text_meta(protocol, c, s);
    }
    Meta::new()
}

/// The clear-text part of a direction: everything before the first TLS handshake record.
fn before_tls(data: &[u8]) -> &[u8] {
    match memchr::memmem::find(data, b"\x16\x03") {
        Some(cut) => data.get(..cut).unwrap_or(data),
        None => data,
    }
}

fn text_meta(protocol: &str, client: &[u8], server: &[u8]) -> Meta {
    let r = rxs();
    let mut meta = Meta::new();
    let (client_clear, server_clear) = (before_tls(client), before_tls(server));
    if let Some(g) = index(&GREETING, protocol).and_then(|i| r.greeting.get(i)) {
        if let Some(m) = g.captures(server_clear).and_then(|c| c.get(1)) {
            meta.insert(
                "banner".into(),
                json!(clean_text(m.as_bytes(), BANNER_LIMIT)),
            );
        }
    }
    if protocol == "smtp" {
        if let Some(m) = r.helo.captures(client_clear).and_then(|c| c.get(1)) {
            meta.insert(
                "smtp_helo".into(),
                json!(clean_text(m.as_bytes(), BANNER_LIMIT)),
            );
        }
    }
    let mut asked_at = None;
    if let Some((ask, agree)) = index(&STARTTLS, protocol).and_then(|i| r.starttls.get(i)) {
        if let Some(m) = ask.find(client_clear) {
            asked_at = Some(m.start());
            // The server's yes comes after its greeting; TLS right after the command also proves it.
            let after_greeting = match r.line.find(server_clear) {
                Some(l) if protocol != "xmpp" => server_clear.get(l.end()..).unwrap_or(b""),
                _ => server_clear,
            };
            let rest = client.get(m.end()..).unwrap_or(b"");
            let rest = &rest[rest
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count()..];
            if agree.is_match(after_greeting) || rest.starts_with(b"\x16\x03") {
                meta.insert("upgraded_to".into(), json!("tls"));
            }
        }
    }
    if let Some(login) = index(&STARTTLS, protocol).and_then(|i| r.login.get(i)) {
        let clear_part = match asked_at {
            Some(at) => client_clear.get(..at).unwrap_or(client_clear),
            None => client_clear,
        };
        if login.is_match(clear_part)
            && !(protocol == "ftp" && r.ftp_anonymous.is_match(clear_part))
        {
            meta.insert("cleartext_login".into(), json!(true));
        }
    }
    meta
}

fn http_meta(client: &[u8], server: &[u8], classify: &dyn Fn(&[u8], &[u8]) -> String) -> Meta {
    let r = rxs();
    let mut meta = Meta::new();
    let code: Option<u16> = r
        .status
        .captures(server)
        .and_then(|c| c.get(1))
        .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
        .and_then(|s| s.parse().ok());
    if let Some(target) = r.connect.captures(client).and_then(|c| c.get(1)) {
        meta.insert(
            "connect_target".into(),
            json!(clean_text(target.as_bytes(), BANNER_LIMIT)),
        );
        let c_end = memchr::memmem::find(client, b"\r\n\r\n");
        let s_end = memchr::memmem::find(server, b"\r\n\r\n");
        if let (Some(code), Some(c_end), Some(s_end)) = (code, c_end, s_end) {
            if (200..300).contains(&code) {
                let inner_c = client.get(c_end + 4..).unwrap_or(b"");
                let inner_s = server.get(s_end + 4..).unwrap_or(b"");
                if !inner_c.is_empty() || !inner_s.is_empty() {
                    let inner = classify(inner_c, inner_s);
                    if inner != "unknown" {
                        meta.insert("tunnel_protocol".into(), json!(inner));
                    }
                }
            }
        }
        return meta;
    }
    let head_end = memchr::memmem::find(client, b"\r\n\r\n").unwrap_or(client.len());
    let head = client.get(..head_end).unwrap_or(client);
    if let (Some(token), Some(101)) = (r.upgrade.captures(head).and_then(|c| c.get(1)), code) {
        let token = token.as_bytes().to_ascii_lowercase();
        match token.as_slice() {
            b"websocket" => {
                meta.insert("upgraded_to".into(), json!("websocket"));
                meta.insert("websocket".into(), json!(true));
            }
            b"h2c" => {
                meta.insert("upgraded_to".into(), json!("http2"));
            }
            t => {
                meta.insert("upgraded_to".into(), json!(clean_text(t, 64)));
            }
        }
    }
    meta
}

pub use crate::text::clean_text;

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: &str, c: &[u8], s: &[u8]) -> serde_json::Value {
        serde_json::Value::from(text_meta(p, c, s))
    }

    #[test]
    fn smtp_starttls_and_login() {
        let s = b"220 mx.example ESMTP Postfix\r\n250-mx\r\n250 STARTTLS\r\n220 2.0.0 Ready\r\n";
        let c = b"EHLO client.example\r\nSTARTTLS\r\n\x16\x03\x01";
        assert_eq!(
            text("smtp", c, s),
            json!({"banner": "mx.example ESMTP Postfix", "smtp_helo": "client.example", "upgraded_to": "tls"})
        );
        let c = b"EHLO x\r\nAUTH PLAIN AGFhAGI=\r\n";
        assert_eq!(
            text("smtp", c, b"220 hi\r\n")["cleartext_login"],
            json!(true)
        );
    }

    #[test]
    fn ftp_anonymous_is_no_login() {
        let c = b"USER anonymous\r\nPASS me@\r\n";
        assert!(text("ftp", c, b"220 FTP\r\n")
            .get("cleartext_login")
            .is_none());
        let c = b"USER bob\r\nPASS x\r\n";
        assert_eq!(
            text("ftp", c, b"220 FTP\r\n")["cleartext_login"],
            json!(true)
        );
    }

    #[test]
    fn http_upgrade_and_connect() {
        let c = b"GET /chat HTTP/1.1\r\nUpgrade: WebSocket\r\n\r\n";
        let m = http_meta(c, b"HTTP/1.1 101 Switching\r\n\r\n", &|_, _| "x".into());
        assert_eq!(
            serde_json::Value::from(m),
            json!({"upgraded_to": "websocket", "websocket": true})
        );
        let c = b"CONNECT a.example:443 HTTP/1.1\r\n\r\n\x16\x03\x01";
        let m = http_meta(c, b"HTTP/1.1 200 OK\r\n\r\n", &|c, _| {
            if c.starts_with(b"\x16") {
                "tls".into()
            } else {
                "unknown".into()
            }
        });
        assert_eq!(
            serde_json::Value::from(m),
            json!({"connect_target": "a.example:443", "tunnel_protocol": "tls"})
        );
    }

    #[test]
    fn clean_text_like_python() {
        assert_eq!(clean_text(b"a\x1bb\xff", 256), "a\\x1bb\u{fffd}");
        assert_eq!(clean_text(b"abcdef", 4), "abc…");
        assert_eq!(clean_text("a\u{202e}b".as_bytes(), 9), "a\\u202eb");
    }

    #[test]
    fn pending() {
        let mut m = Meta::new();
        assert!(upgrade_pending("http", &m));
        m.insert("http_status".into(), json!(200));
        assert!(!upgrade_pending("http", &m));
        assert!(upgrade_pending("smtp", &m) && upgrade_watch("xmpp") && !upgrade_settles("smtp"));
        assert!(!upgrade_watch("ssh"));
    }
}
