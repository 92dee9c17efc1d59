//! What happened after the first bytes: banners, logins in clear, STARTTLS, CONNECT and
//! WebSocket. A classified flow keeps its protocol (SMTP that upgrades with STARTTLS stays
//! smtp); this adds the facts analysts ask about, from the stream prefixes of both directions.
//! Credentials are never copied, only the fact that they crossed (and `Flow::release_buffers`
//! cuts the client's head at the login line).
//!
//! A text protocol's greeting, STARTTLS and login lines are data: the `[conversation]` table of
//! its signature file (`Conversation`), giving `banner`, `<protocol>_helo`, `upgraded_to: "tls"`
//! and `cleartext_login`, or `anonymous_login` for a login that gives nothing away (FTP's
//! anonymous user). HTTP's CONNECT (`connect_target`, `tunnel_protocol`) and 101 Upgrade
//! (`upgraded_to`) are parsed here, and what a SOCKS proxy carries once its handshake is over
//! (`tunnel_protocol`).
#![forbid(unsafe_code)]

use super::engine::Engine;
use super::probes::socks;
use super::pyregex::Pattern;
use super::signature::{Conversation, Signature};
use crate::meta::{json, FlowMeta, Meta, Value};
use regex::bytes::Regex;
use std::sync::OnceLock;

pub const BANNER_LIMIT: usize = 256;
const HTTP: [&str; 2] = ["http", "http2"];
const SOCKS: &str = "socks";

struct Rx {
    line: Regex,
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
        connect: rx(r"(?-u)\ACONNECT ([\x21-\x7e]{1,512}) HTTP/1\.[01]\r\n"),
        status: rx(r"(?-u)\AHTTP/1\.[01] ([1-5][0-9][0-9])[ \r]"),
        upgrade: rx(r"(?im-u)^Upgrade: *([\x21-\x7e]{1,64})"),
    })
}

fn is_http(sig: &Signature) -> bool {
    HTTP.contains(&sig.protocol.as_str())
}

fn is_socks(sig: &Signature) -> bool {
    sig.protocol == SOCKS
}

/// Whether the later bytes of a flow of `sig`'s protocol may hold these facts (STARTTLS,
/// CONNECT, a login).
pub fn upgrade_watch(sig: &Signature) -> bool {
    is_http(sig) || is_socks(sig) || sig.conversation.is_some()
}

/// Whether the facts can settle before the conversation's end (HTTP's first exchange, the
/// first tunnelled bytes after a SOCKS handshake).
pub fn upgrade_settles(sig: &Signature) -> bool {
    is_http(sig) || is_socks(sig)
}

/// Statuses that ask for credentials: 401 from a server, 407 from a proxy (RFC 9110 15.5.2,
/// 15.5.8). The client's retry with them usually follows on the same connection.
const ASKS_FOR_CREDENTIALS: [u64; 2] = [401, 407];

/// The facts `upgrade_pending` reads: a flow's map as it is inspected, or a plain `Meta`.
pub trait Facts {
    fn has(&self, key: &str) -> bool;
    /// The fact as a whole number, if it is one.
    fn number(&self, key: &str) -> Option<u64>;
}

impl Facts for Meta {
    fn has(&self, key: &str) -> bool {
        self.contains_key(key)
    }
    fn number(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }
}

impl Facts for FlowMeta {
    fn has(&self, key: &str) -> bool {
        self.contains_key(key)
    }
    fn number(&self, key: &str) -> Option<u64> {
        self.value_of(key).and_then(|v| v.as_u64())
    }
}

/// Whether, given what is known of the flow, later bytes may still add one of these facts.
pub fn upgrade_pending(sig: &Signature, facts: &impl Facts) -> bool {
    if is_http(sig) {
        // After a 401 or 407, the request that answers it may carry a login (its signature's
        // `[conversation] login`).
        let challenged = facts
            .number("http_status")
            .is_some_and(|s| ASKS_FOR_CREDENTIALS.contains(&s));
        let login_watched = sig.conversation.as_ref().is_some_and(|c| c.login.is_some());
        return !facts.has("http_status")
            || (facts.has("http_connect_target") && !facts.has("tunnel_protocol"))
            || (challenged && login_watched && !facts.has("cleartext_login"));
    }
    if is_socks(sig) {
        return !facts.has("tunnel_protocol");
    }
    sig.conversation.is_some()
}

/// Facts about the rest of a TCP conversation; `client`/`server` are the stream prefixes.
pub fn upgrade_meta(sig: &Signature, client: &[&[u8]], server: &[&[u8]], engine: &Engine) -> Meta {
    let c = client.first().copied().unwrap_or(b"");
    let s = server.first().copied().unwrap_or(b"");
    if is_http(sig) {
        let mut meta = http_meta(c, s, &|ic, is| engine.inner_protocol(ic, is));
        // A login in clear (Basic authentication) is the signature's data, as for text protocols.
        if let Some(conv) = &sig.conversation {
            for (k, v) in text_meta(&sig.protocol, conv, c, s) {
                meta.insert(k, v);
            }
        }
        return meta;
    }
    if is_socks(sig) {
        return socks_meta(c, s, &|ic, is| engine.inner_protocol(ic, is));
    }
    match &sig.conversation {
        Some(conv) => text_meta(&sig.protocol, conv, c, s),
        None => Meta::new(),
    }
}

/// What rides inside a SOCKS connection: the protocol of the bytes after both sides'
/// handshakes (the server granted it), as for HTTP's CONNECT.
fn socks_meta(client: &[u8], server: &[u8], classify: &dyn Fn(&[u8], &[u8]) -> String) -> Meta {
    let mut meta = Meta::new();
    let (Some(c_end), Some(s_end)) = (
        socks::client_handshake_end(client),
        socks::server_handshake_end(server),
    ) else {
        return meta;
    };
    let inner_c = client.get(c_end..).unwrap_or(b"");
    let inner_s = server.get(s_end..).unwrap_or(b"");
    if !inner_c.is_empty() || !inner_s.is_empty() {
        let inner = classify(inner_c, inner_s);
        if inner != "unknown" {
            meta.insert("tunnel_protocol".into(), json!(inner));
        }
    }
    meta
}

/// The clear-text part of a direction: everything before the first TLS handshake record.
fn before_tls(data: &[u8]) -> &[u8] {
    match memchr::memmem::find(data, b"\x16\x03") {
        Some(cut) => data.get(..cut).unwrap_or(data),
        None => data,
    }
}

/// Group 1 of `pattern`'s first match in `data`, sanitised and bounded.
fn first_group(pattern: Option<&Pattern>, data: &[u8]) -> Option<Value> {
    let m = pattern?.regex()?.captures(data)?.get(1)?;
    Some(json!(clean_text(m.as_bytes(), BANNER_LIMIT)))
}

fn text_meta(protocol: &str, conv: &Conversation, client: &[u8], server: &[u8]) -> Meta {
    let mut meta = Meta::new();
    let client_clear = before_tls(client);
    // Only a greeting, a STARTTLS or a login the server asks for reads the server's side (HTTP's
    // login table does not: its server side holds whole responses).
    let server_clear =
        if conv.greeting.is_some() || conv.starttls.is_some() || conv.login_asked.is_some() {
            before_tls(server)
        } else {
            b""
        };
    if let Some(banner) = first_group(conv.greeting.as_ref(), server_clear) {
        meta.insert("banner".into(), banner);
    }
    if let Some(name) = first_group(conv.helo.as_ref(), client_clear) {
        meta.insert(format!("{protocol}_helo").into(), name);
    }
    let mut asked_at = None;
    if let Some((ask, agree)) = &conv.starttls {
        if let Some(m) = ask.regex().and_then(|r| r.find(client_clear)) {
            asked_at = Some(m.start());
            // The server's yes comes after its greeting line, if the protocol has one (a 220
            // greeting is not SMTP's 220 to STARTTLS); TLS right after the command also proves it.
            let after_greeting = match rxs().line.find(server_clear) {
                Some(l) if conv.greeting.is_some() => server_clear.get(l.end()..).unwrap_or(b""),
                _ => server_clear,
            };
            let rest = client.get(m.end()..).unwrap_or(b"");
            let rest = &rest[rest
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count()..];
            if agree.regex().is_some_and(|r| r.is_match(after_greeting))
                || rest.starts_with(b"\x16\x03")
            {
                meta.insert("upgraded_to".into(), json!("tls"));
            }
        }
    }
    if let Some(login) = &conv.login {
        // A login after a STARTTLS the server agreed to went inside TLS; after one it refused
        // (FTP's 530 to AUTH TLS, RFC 4217 4), the client goes on in clear.
        let clear_part = match asked_at {
            Some(at) if meta.contains_key("upgraded_to") => {
                client_clear.get(..at).unwrap_or(client_clear)
            }
            _ => client_clear,
        };
        let asked = conv
            .login_asked
            .as_ref()
            .is_none_or(|a| a.regex().is_some_and(|r| r.is_match(server_clear)));
        let (real, anonymous) = logins(login, conv.anonymous.as_ref(), clear_part);
        if real && asked {
            meta.insert("cleartext_login".into(), json!(true));
        }
        if anonymous {
            meta.insert("anonymous_login".into(), json!(true));
        }
    }
    meta
}

/// Whether `clear` holds a real login and an anonymous one. Each `login` match is anonymous when
/// `anonymous` matches between it and the previous one (FTP's `USER anonymous` before its
/// `PASS`), so a real login after an anonymous one in the same session still counts; an
/// anonymous user named after the last login line (its password not seen yet) counts too.
fn logins(login: &Pattern, anonymous: Option<&Pattern>, clear: &[u8]) -> (bool, bool) {
    let anonymous = anonymous.and_then(Pattern::regex);
    let named_anonymous = |part: &[u8]| anonymous.is_some_and(|a| a.is_match(part));
    let (mut real, mut anon, mut from) = (false, false, 0);
    for m in login.regex().into_iter().flat_map(|r| r.find_iter(clear)) {
        let before = clear.get(from..m.start()).unwrap_or(b"");
        if named_anonymous(before) {
            anon = true;
        } else {
            real = true;
        }
        from = m.end();
    }
    anon |= named_anonymous(clear.get(from..).unwrap_or(b""));
    (real, anon)
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

    /// The shipped signature of `protocol`.
    fn shipped(protocol: &str) -> Signature {
        let sigs = crate::detect::signature::load_texts_and(crate::detect::builtin::BUILTIN, &[])
            .expect("shipped signatures load");
        sigs.into_iter()
            .find(|s| s.protocol == protocol)
            .expect("a shipped signature")
    }

    fn text(p: &str, c: &[u8], s: &[u8]) -> serde_json::Value {
        let sig = shipped(p);
        let conv = sig.conversation.as_ref().expect("a [conversation] table");
        serde_json::Value::from(text_meta(p, conv, c, s))
    }

    #[test]
    fn a_login_after_a_refused_starttls_is_in_clear() {
        // curl --ssl against a server without TLS: AUTH SSL and AUTH TLS refused, then USER/PASS.
        let c = b"AUTH SSL\r\nAUTH TLS\r\nUSER pwcap\r\nPASS secret\r\n";
        let s = b"220 ready\r\n530 Please login with USER and PASS.\r\n530 Please login with USER and PASS.\r\n331 ok\r\n";
        let m = text("ftp", c, s);
        assert_eq!(m["cleartext_login"], json!(true));
        assert!(m.get("upgraded_to").is_none());
        // Accepted (234), the login that follows is inside TLS.
        let c = b"AUTH TLS\r\n\x16\x03\x01\x00\x05USER x";
        let m = text("ftp", c, b"220 ready\r\n234 Proceed\r\n");
        assert_eq!(
            (m.get("upgraded_to"), m.get("cleartext_login")),
            (Some(&json!("tls")), None)
        );
    }

    #[test]
    fn amqp_and_stomp_logins_in_clear() {
        // AMQP 0-9-1 Connection.Start-Ok: ... mechanism "PLAIN", response "\0guest\0guest", locale.
        let start_ok = b"AMQP\x00\x00\x09\x01\x01\x00\x00\x00\x00\x00\x30\x00\x0a\x00\x0b\x00\x00\x00\x00\x05PLAIN\x00\x00\x00\x0c\x00guest\x00guest\x05en_US\xce";
        assert_eq!(text("amqp", start_ok, b"")["cleartext_login"], json!(true));
        let amqplain = b"\x08AMQPLAIN\x00\x00\x00\x23\x05LOGINS\x00\x00\x00\x05guest";
        assert_eq!(text("amqp", amqplain, b"")["cleartext_login"], json!(true));
        // AMQP 1.0 sasl-init: the mechanism as a symbol, the response as binary (vbin8).
        let sasl_init = b"AMQP\x03\x01\x00\x00\x00\x00\x00\x20\x02\x01\x00\x00\x00\x53\x41\xc0\x12\x02\xa3\x05PLAIN\xa0\x0c\x00guest\x00guest";
        assert_eq!(text("amqp", sasl_init, b"")["cleartext_login"], json!(true));
        // EXTERNAL (a client certificate) sends no secret.
        let external = b"\x08EXTERNAL\x00\x00\x00\x00\x05en_US";
        assert_eq!(text("amqp", external, b""), json!({}));
        let connect = b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\x00";
        assert_eq!(
            text("stomp", connect, b"CONNECTED\n")["cleartext_login"],
            json!(true)
        );
        assert_eq!(
            text("stomp", b"CONNECT\naccept-version:1.2\nhost:/\n\n\x00", b""),
            json!({})
        );
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
        assert_eq!(
            text("ftp", c, b"220 FTP\r\n"),
            json!({"banner": "FTP", "anonymous_login": true})
        );
        // The user's name is enough: the password line may not have been captured.
        assert_eq!(
            text("ftp", b"USER ftp\r\n", b"")["anonymous_login"],
            json!(true)
        );
        let c = b"USER bob\r\nPASS x\r\n";
        assert_eq!(
            text("ftp", c, b"220 FTP\r\n")["cleartext_login"],
            json!(true)
        );
        // A real login after an anonymous one in the same session is still one.
        assert_eq!(
            text(
                "ftp",
                b"USER ftp\r\nPASS a@b\r\nUSER bob\r\nPASS x\r\n",
                b""
            ),
            json!({"cleartext_login": true, "anonymous_login": true})
        );
        // A user's name with no password after it (a client that gave up): no credentials.
        assert_eq!(
            text("ftp", b"USER bob\r\nSYST\r\nQUIT\r\n", b"220 FTP\r\n"),
            json!({"banner": "FTP"})
        );
    }

    /// PostgreSQL's PasswordMessage is a login in clear only after the server asked for the
    /// password in clear (AuthenticationCleartextPassword); after md5's request it is a hash.
    #[test]
    fn postgresql_password_in_clear_only_when_asked() {
        let startup = b"\x00\x00\x00\x16\x00\x03\x00\x00user\x00pw\x00\x00";
        let client = [&startup[..], b"p\x00\x00\x00\x0epw-secret\x00"].concat();
        let asked = |code: u8| [&b"R\x00\x00\x00\x08\x00\x00\x00"[..], &[code]].concat();
        assert_eq!(
            text("postgresql", &client, &asked(3))["cleartext_login"],
            json!(true)
        );
        let refused_ssl_first = [&b"N"[..], &asked(3)].concat();
        assert_eq!(
            text("postgresql", &client, &refused_ssl_first)["cleartext_login"],
            json!(true)
        );
        assert_eq!(text("postgresql", &client, &asked(5)), json!({})); // md5
        assert_eq!(text("postgresql", startup, &asked(3)), json!({})); // no answer yet
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
    fn what_a_socks_proxy_carries_once_it_granted_the_connection() {
        let inner = |c: &[u8], s: &[u8]| -> String {
            if c.starts_with(b"GET ") && s.starts_with(b"HTTP/") {
                "http".into()
            } else {
                "unknown".into()
            }
        };
        let c = b"\x05\x01\x00\x05\x01\x00\x01\x0a\x4d\x00\x01\x1f\x90GET / HTTP/1.1\r\n\r\n";
        let s = b"\x05\x00\x05\x00\x00\x01\x0a\x4d\x00\x01\xeb\x26HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            serde_json::Value::from(socks_meta(c, s, &inner)),
            json!({"tunnel_protocol": "http"})
        );
        // Refused (general failure): nothing was tunnelled.
        let refused = b"\x05\x00\x05\x01\x00\x01\x00\x00\x00\x00\x00\x00";
        assert!(socks_meta(c, refused, &inner).is_empty());
        // The shipped socks signature watches for it until it is known.
        let sig = shipped("socks");
        assert!(upgrade_watch(&sig) && upgrade_settles(&sig));
        assert!(upgrade_pending(&sig, &Meta::new()));
        let mut known = Meta::new();
        known.insert("tunnel_protocol".into(), json!("http"));
        assert!(!upgrade_pending(&sig, &known));
    }

    #[test]
    fn clean_text_like_python() {
        assert_eq!(clean_text(b"a\x1bb\xff", 256), "a\\x1bb\u{fffd}");
        assert_eq!(clean_text(b"abcdef", 4), "abc…");
        assert_eq!(clean_text("a\u{202e}b".as_bytes(), 9), "a\\u202eb");
    }

    /// Basic authentication to a server or a proxy is a login in clear; Digest is not, nor
    /// credentials inside a tunnel's TLS. After a 401 or 407 the flow is watched for the retry.
    #[test]
    fn http_basic_authentication() {
        let facts = |c: &[u8], s: &[u8]| {
            let sig = shipped("http");
            let engine = Engine::new(vec![sig.clone()], Default::default());
            serde_json::Value::from(upgrade_meta(&sig, &[c], &[s], &engine))
        };
        let ok = b"HTTP/1.1 200 OK\r\n\r\n";
        let basic = b"GET /private/ HTTP/1.1\r\nHost: h\r\nAuthorization: Basic cHc6cHc=\r\n\r\n";
        assert_eq!(facts(basic, ok)["cleartext_login"], json!(true));
        let retry = b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nauthorization: basic x\r\n\r\n";
        assert_eq!(
            facts(retry, b"HTTP/1.1 401 Unauthorized\r\n\r\n")["cleartext_login"],
            json!(true)
        );
        let proxy =
            b"CONNECT h:443 HTTP/1.1\r\nProxy-Authorization: Basic eDp5\r\n\r\n\x16\x03\x01";
        assert_eq!(
            facts(proxy, b"HTTP/1.1 200 OK\r\n\r\n")["cleartext_login"],
            json!(true)
        );
        let digest =
            b"GET / HTTP/1.1\r\nAuthorization: Digest username=\"u\", response=\"0a\"\r\n\r\n";
        assert_eq!(facts(digest, ok).get("cleartext_login"), None);
        let inside_tls = b"CONNECT h:443 HTTP/1.1\r\n\r\n\x16\x03\x01Authorization: Basic x \r\n";
        assert_eq!(facts(inside_tls, ok).get("cleartext_login"), None);

        let http = shipped("http");
        let mut m = Meta::new();
        m.insert("http_status".into(), json!(401));
        assert!(upgrade_pending(&http, &m));
        m.insert("cleartext_login".into(), json!(true));
        assert!(!upgrade_pending(&http, &m));
        m.insert("http_status".into(), json!(404));
        m.remove("cleartext_login");
        assert!(!upgrade_pending(&http, &m));
    }

    #[test]
    fn pending() {
        let mut m = Meta::new();
        let http = shipped("http");
        assert!(upgrade_pending(&http, &m));
        m.insert("http_status".into(), json!(200));
        assert!(!upgrade_pending(&http, &m));
        let (smtp, xmpp) = (shipped("smtp"), shipped("xmpp"));
        assert!(upgrade_pending(&smtp, &m) && upgrade_watch(&xmpp));
        assert!(!upgrade_settles(&smtp));
        assert!(!upgrade_watch(&shipped("ssh")));
    }

    #[test]
    fn every_text_protocol_of_the_shipped_set() {
        // pop3: STLS agreed, a PASS before it; imap: a tagged STARTTLS and OK, LOGIN before.
        let m = text(
            "pop3",
            b"USER a\r\nPASS b\r\nSTLS\r\n",
            b"+OK ready\r\n+OK go\r\n",
        );
        assert_eq!(
            m,
            json!({"banner": "ready", "upgraded_to": "tls", "cleartext_login": true})
        );
        let m = text(
            "imap",
            b"a1 LOGIN u p\r\na2 STARTTLS\r\n",
            b"* OK IMAP4rev1 ready\r\na2 OK begin\r\n",
        );
        assert_eq!(
            m,
            json!({"banner": "IMAP4rev1 ready", "upgraded_to": "tls", "cleartext_login": true})
        );
        // nntp: 382 agrees, not the 200 greeting.
        let m = text("nntp", b"STARTTLS\r\n", b"200 news ready\r\n");
        assert_eq!(m, json!({"banner": "news ready"}));
        let m = text("nntp", b"STARTTLS\r\n", b"200 news ready\r\n382 go\r\n");
        assert_eq!(m["upgraded_to"], json!("tls"));
        // xmpp: no greeting line, so <proceed/> counts wherever it comes; PLAIN auth in clear.
        let m = text("xmpp", b"<starttls xmlns='x'/>", b"<proceed xmlns='x'/>");
        assert_eq!(m, json!({"upgraded_to": "tls"}));
        let m = text(
            "xmpp",
            b"<auth xmlns='x' mechanism='PLAIN'>AGE=</auth>",
            b"",
        );
        assert_eq!(m, json!({"cleartext_login": true}));
        // ftp: AUTH TLS answered 234; the login after it is not in clear.
        let m = text(
            "ftp",
            b"AUTH TLS\r\nUSER bob\r\nPASS x\r\n",
            b"220 ftp\r\n234 ok\r\n",
        );
        assert_eq!(m, json!({"banner": "ftp", "upgraded_to": "tls"}));
    }
}
