//! Load and validate signature files (TOML, one protocol per file; format in signatures/README.md).
//!
//! Users write these files by hand, so every error names
//! the file, the line (from the TOML parser's spans) and the field, and a file's errors are all
//! reported, not just the first. Patterns are Python bytes regexes (see `pyregex`).
#![forbid(unsafe_code)]

use spanned::Kind;

use crate::detect::announce::Parser;
use crate::detect::pyregex::Pattern;
use crate::meta::{json, Value};

pub const MAX_DEPTH: usize = 4096;
pub const DEFAULT_DEPTH: usize = 256;
pub const DEFAULT_PATTERN_CONFIDENCE: f64 = 0.8;
pub const DEFAULT_PROBE_CONFIDENCE: f64 = 0.95;
/// A signature file larger than this is refused unread (a hand-written file is a few KiB).
pub const MAX_FILE: u64 = 1 << 20;
/// The longest idle timeout a signature may give (`idle_tcp`, `idle_udp`), in seconds: a day.
pub const MAX_IDLE: f64 = 86_400.0;

const TOP_FIELDS: &[(&str, Kind)] = &[
    ("announces", Kind::Str),
    ("any_port", Kind::Bool),
    ("cleartext_auth", Kind::Bool),
    ("conversation", Kind::Table),
    ("description", Kind::Str),
    ("encrypted", Kind::Bool),
    ("expected", Kind::Bool),
    ("head_stop", Kind::Str),
    ("idle_tcp", Kind::Float),
    ("idle_udp", Kind::Float),
    ("insecure", Kind::Bool),
    ("match", Kind::List),
    ("ports", Kind::List),
    ("prelude", Kind::Bool),
    ("priority", Kind::Int),
    ("protocol", Kind::Str),
    ("require_both_directions", Kind::Bool),
    ("reserved_source_port", Kind::Bool),
    ("secure_when", Kind::Table),
    ("services", Kind::List),
    ("transports", Kind::List),
    ("tunnel", Kind::Bool),
];
/// `[conversation]`: what the rest of a text protocol's conversation tells (detect/upgrades.rs).
const CONVERSATION_FIELDS: &[(&str, Kind)] = &[
    ("anonymous", Kind::Str),
    ("greeting", Kind::Str),
    ("helo", Kind::Str),
    ("login", Kind::Str),
    ("login_asked", Kind::Str),
    ("starttls", Kind::Str),
    ("starttls_ok", Kind::Str),
];
const MATCH_FIELDS: &[(&str, Kind)] = &[
    ("confidence", Kind::Float),
    ("depth", Kind::Int),
    ("direction", Kind::Str),
    ("first_datagram", Kind::Bool),
    ("min_length", Kind::Int),
    ("offset", Kind::Int),
    ("ports", Kind::List),
    ("prefix", Kind::Str),
    ("prefix_hex", Kind::Str),
    ("prelude", Kind::Bool),
    ("probe", Kind::Str),
    ("regex", Kind::Str),
    ("transports", Kind::List),
    ("weak", Kind::Bool),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Tcp, Transport::Udp];
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
    /// Position in per-transport arrays (`ALL`'s order).
    pub fn index(self) -> usize {
        match self {
            Transport::Tcp => 0,
            Transport::Udp => 1,
        }
    }
    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "tcp" => Some(Transport::Tcp),
            "udp" => Some(Transport::Udp),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Client,
    Server,
    Either,
}

impl Direction {
    pub fn client(self) -> bool {
        matches!(self, Direction::Client | Direction::Either)
    }
    pub fn server(self) -> bool {
        matches!(self, Direction::Server | Direction::Either)
    }
}

#[derive(Clone, Debug)]
pub struct Match {
    pub direction: Direction,
    pub transports: Vec<Transport>,
    pub prefix: Option<Vec<u8>>,
    pub offset: usize,
    pub regex: Option<Pattern>,
    pub depth: usize,
    pub probe: Option<String>,
    pub confidence: f64,
    pub min_length: usize,
    /// When set, the match holds only if either endpoint uses one of these ports (sorted).
    pub ports: Vec<u16>,
    /// A short token several protocols share (`QUIT`, `+OK`, `AUTH x`): it never outranks
    /// other evidence nor the port's assignment (engine.rs, "weak evidence").
    pub weak: bool,
    /// UDP: the match reads only a direction's first datagram. For a handshake's opening
    /// message, which no later datagram of the session can be: checked on every datagram, a
    /// few bytes of structure are met by chance somewhere in a long run of encrypted ones.
    pub first_datagram: bool,
    /// What this match recognises only opens a connection another protocol then carries (a
    /// NetBIOS session request before SMB): alone it waits for the final call, as a `prelude`
    /// signature does. Every match of a `prelude` signature is one.
    pub prelude: bool,
}

/// What the rest of a text protocol's conversation tells, read from the clear-text part of each
/// TCP direction (before a TLS handshake record): `[conversation]` in its file.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// The server's greeting; its first group is the flow's `banner`.
    pub greeting: Option<Pattern>,
    /// The client naming itself; its first group is `<protocol>_helo` (SMTP's EHLO).
    pub helo: Option<Pattern>,
    /// The client asking to switch to TLS, and the server agreeing (after its greeting line,
    /// when the protocol has one): `upgraded_to: "tls"`.
    pub starttls: Option<(Pattern, Pattern)>,
    /// Credentials crossing in clear, before any STARTTLS: `cleartext_login`.
    pub login: Option<Pattern>,
    /// The server asking for the login in clear (PostgreSQL's AuthenticationCleartextPassword),
    /// where the client's bytes alone cannot tell a password from a hash: `login` counts only
    /// once the server's clear text matches this.
    pub login_asked: Option<Pattern>,
    /// A login that gives nothing away (FTP's anonymous user): `anonymous_login`, not
    /// `cleartext_login`.
    pub anonymous: Option<Pattern>,
}

#[derive(Clone, Debug)]
pub struct Signature {
    pub protocol: String,
    pub description: String,
    pub transports: Vec<Transport>,
    pub services: Vec<String>,
    pub ports: Vec<u16>,
    pub tunnel: bool,
    /// Runs on negotiated or arbitrary ports (RTP, BitTorrent): no mismatch off its ports.
    pub any_port: bool,
    pub encrypted: bool,
    pub cleartext_auth: bool,
    pub insecure: bool,
    /// Clients bind a port below 1024 by design: the server trusts it (ONC RPC's AUTH_SYS,
    /// rcmd(3), lpd), so a privileged source port is no sign of a tool's trick.
    pub reserved_source_port: bool,
    /// Facts whose values make a flow of an `insecure` protocol secure after all (SNMPv3 with
    /// authentication and privacy): (fact, values), at most `MAX_SECURE_FACTS`.
    pub secure_when: Vec<(String, Vec<String>)>,
    pub priority: i64,
    pub require_both_directions: bool,
    pub matches: Vec<Match>,
    /// Often only opens a flow another protocol then carries (STUN before DTLS or RTP).
    pub prelude: bool,
    pub source: String,
    /// "builtin" or "user".
    pub origin: String,
    pub probe_names: Vec<String>,
    /// The parser of the endpoints this control protocol announces (FTP's PASV, SIP's SDP):
    /// `flow::expect` names the connections that follow.
    pub announces: Option<Parser>,
    /// Named only by another connection's announcement (ftp-data), never from its own bytes:
    /// such a signature has no `[[match]]`.
    pub expected: bool,
    /// Per transport (`Transport::index`): seconds without a packet after which a flow of this
    /// protocol ends, in place of the analyzer's `idle_tcp`/`idle_udp`. For exchanges whose end
    /// the protocol makes plain (Zeek's `dns_session_timeout`: a DNS flow is over once answered).
    pub idle: [Option<f64>; 2],
    pub conversation: Option<Conversation>,
    /// Where the client's kept head (`meta.client_head`) ends: at the end of the first match,
    /// before what names a person (GTP-C's IMSI). For any transport, and no finding, unlike a
    /// conversation's `login`, which also cuts the head.
    pub head_stop: Option<Pattern>,
}

impl Signature {
    /// The fields the policy and the CLI read (portwatch/policy/rules.py, `signatures list`).
    pub fn to_json(&self) -> Value {
        let t: Vec<&str> = self.transports.iter().map(|t| t.name()).collect();
        json!({
            "protocol": self.protocol,
            "description": self.description,
            "transports": t,
            "services": self.services,
            "ports": self.ports,
            "tunnel": self.tunnel,
            "any_port": self.any_port,
            "encrypted": self.encrypted,
            "cleartext_auth": self.cleartext_auth,
            "insecure": self.insecure,
            "reserved_source_port": self.reserved_source_port,
            "secure_when": self
                .secure_when
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<serde_json::Map<String, Value>>(),
            "priority": self.priority,
            "require_both_directions": self.require_both_directions,
            "prelude": self.prelude,
            "source": self.source,
            "origin": self.origin,
            "matches": self.matches.len(),
            "probe_names": self.probe_names,
            "announces": self.announces.map(|p| p.name()),
            "expected": self.expected,
            "idle_tcp": self.idle[Transport::Tcp.index()],
            "idle_udp": self.idle[Transport::Udp.index()],
        })
    }
}

mod build;
mod files;
mod matching;
mod spanned;

pub use build::parse;
pub use files::{check_files, load_builtin_and, load_dirs, load_file, load_texts_and};
pub use matching::MAX_SECURE_FACTS;

#[cfg(test)]
mod tests;
