//! Load and validate signature files (TOML, one protocol per file; format in signatures/README.md).
//!
//! Users write these files by hand, so every error names
//! the file, the line (from the TOML parser's spans) and the field, and a file's errors are all
//! reported, not just the first. Patterns are Python bytes regexes (see `pyregex`).
#![forbid(unsafe_code)]

use super::announce::Parser;
use super::probes;
use super::pyregex::Pattern;
use crate::meta::{json, Value};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

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
    /// A login that gives nothing away (FTP's anonymous user): no `cleartext_login`.
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

/// The built-in set, then each extra directory (or file) in order; a later file with the same
/// `protocol` replaces an earlier one. Sorted by protocol. Every error of every file on failure.
pub fn load_dirs(builtin: &Path, extra: &[PathBuf]) -> Result<Vec<Signature>, Vec<String>> {
    let mut errors = Vec::new();
    let mut sigs = Vec::new();
    load_dir(builtin, "builtin", &mut sigs, &mut errors);
    load_extra(extra, sigs, errors)
}

/// The set embedded in the core at build time (detect/builtin.rs), its patterns compiled at
/// their first use (`Compile::Deferred`), then the extra directories.
pub fn load_builtin_and(extra: &[PathBuf]) -> Result<Vec<Signature>, Vec<String>> {
    load_texts_with(super::builtin::BUILTIN, extra, Compile::Deferred)
}

/// `builtin`: (file name, TOML text) pairs; their source shows as `signatures/<name>`.
pub fn load_texts_and(
    builtin: &[(&str, &str)],
    extra: &[PathBuf],
) -> Result<Vec<Signature>, Vec<String>> {
    load_texts_with(builtin, extra, Compile::Now)
}

fn load_texts_with(
    builtin: &[(&str, &str)],
    extra: &[PathBuf],
    compile: Compile,
) -> Result<Vec<Signature>, Vec<String>> {
    let mut errors = Vec::new();
    let mut sigs = Vec::new();
    for (name, text) in builtin {
        match load_text(text, &format!("signatures/{name}"), "builtin", compile) {
            Ok(s) => sigs.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    load_extra(extra, sigs, errors)
}

fn load_extra(
    extra: &[PathBuf],
    mut sigs: Vec<Signature>,
    mut errors: Vec<String>,
) -> Result<Vec<Signature>, Vec<String>> {
    for d in extra {
        if d.is_dir() || d.is_file() {
            load_dir(d, "user", &mut sigs, &mut errors);
        } else {
            errors.push(format!("{}: no such signature directory", d.display()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut by_protocol: std::collections::BTreeMap<String, Signature> = Default::default();
    for s in sigs {
        by_protocol.insert(s.protocol.clone(), s);
    }
    Ok(by_protocol.into_values().collect())
}

fn load_dir(d: &Path, origin: &str, sigs: &mut Vec<Signature>, errors: &mut Vec<String>) {
    let files = if d.is_file() {
        vec![d.to_path_buf()]
    } else {
        match toml_files(d) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e);
                return;
            }
        }
    };
    for f in files {
        match load_file(&f, origin) {
            Ok(sig) => sigs.push(sig),
            Err(mut e) => errors.append(&mut e),
        }
    }
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot read: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Validate files as `portwatch signatures check` does: every error of every file, each one line
/// `file:line: field: problem`. Costly patterns are reported as `...: regex: warning: expensive...`
/// (they load; the caller decides).
pub fn check_files(paths: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        match read(p) {
            Ok(text) => {
                let (res, mut warnings) = parse(&text, &p.display().to_string(), "user");
                if let Err(mut e) = res {
                    out.append(&mut e);
                }
                out.append(&mut warnings);
            }
            Err(e) => out.push(e),
        }
    }
    out
}

pub fn load_file(path: &Path, origin: &str) -> Result<Signature, Vec<String>> {
    let text = read(path).map_err(|e| vec![e])?;
    load_text(&text, &path.display().to_string(), origin, Compile::Now)
}

fn read(path: &Path) -> Result<String, String> {
    let too_big = std::fs::metadata(path)
        .map(|m| m.len() > MAX_FILE)
        .unwrap_or(false);
    if too_big {
        return Err(format!(
            "{}: cannot read: larger than {MAX_FILE} bytes",
            path.display()
        ));
    }
    std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

// ---- TOML with spans -------------------------------------------------------------------------

/// A TOML value whose every part keeps its byte span (toml::Value forgets them).
#[derive(Debug)]
enum SVal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Spanned<SVal>>),
    Table(Vec<(Spanned<String>, Spanned<SVal>)>),
}

impl SVal {
    /// Python's type name for the value tomllib would give.
    fn type_name(&self) -> &'static str {
        match self {
            SVal::Str(_) => "str",
            SVal::Int(_) => "int",
            SVal::Float(_) => "float",
            SVal::Bool(_) => "bool",
            SVal::List(_) => "list",
            SVal::Table(t)
                if t.first()
                    .is_some_and(|(k, _)| k.get_ref().starts_with("$__toml_private")) =>
            {
                "datetime"
            }
            SVal::Table(_) => "dict",
        }
    }
    /// Python's repr, for messages.
    fn repr(&self) -> String {
        match self {
            SVal::Str(s) => py_repr(s),
            SVal::Int(i) => i.to_string(),
            SVal::Float(f) => format!("{f:?}"),
            SVal::Bool(b) => if *b { "True" } else { "False" }.into(),
            SVal::List(_) => "[...]".into(),
            SVal::Table(_) => "{...}".into(),
        }
    }
}

impl<'de> Deserialize<'de> for SVal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SVal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SVal, E> {
                Ok(SVal::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SVal, E> {
                Ok(SVal::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SVal, E> {
                i64::try_from(v)
                    .map(SVal::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SVal, E> {
                Ok(SVal::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SVal, E> {
                Ok(SVal::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<SVal, E> {
                Ok(SVal::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<SVal, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(SVal::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<SVal, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = a.next_key::<Spanned<String>>()? {
                    if k.get_ref().starts_with("$__toml_private") {
                        // A datetime: keep its marker key, skip the value.
                        let _: de::IgnoredAny = a.next_value()?;
                        v.push((k, Spanned::new(0..0, SVal::Bool(false))));
                        continue;
                    }
                    v.push((k, a.next_value()?));
                }
                Ok(SVal::Table(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Byte offset -> 1-based line.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        Lines(text.match_indices('\n').map(|(i, _)| i).collect())
    }
    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

struct Ctx<'a> {
    path: &'a str,
    lines: Lines,
    errors: Vec<String>,
    compile: Compile,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn fail(&mut self, span: Option<Range<usize>>, field: &str, problem: &str) {
        let line = span.map(|s| self.lines.of(s.start));
        self.errors
            .push(format_error(self.path, line, field, problem));
    }
}

fn format_error(path: &str, line: Option<usize>, field: &str, problem: &str) -> String {
    let at = match line {
        Some(l) => format!("{path}:{l}"),
        None => path.to_owned(),
    };
    if field.is_empty() {
        format!("{at}: {problem}")
    } else {
        format!("{at}: {field}: {problem}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Float,
    Bool,
    List,
    Table,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "str",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::List => "list",
            Kind::Table => "dict",
        }
    }
    fn accepts(self, v: &SVal) -> bool {
        matches!(
            (self, v),
            (Kind::Str, SVal::Str(_))
                | (Kind::Int, SVal::Int(_))
                | (Kind::Float, SVal::Float(_) | SVal::Int(_))
                | (Kind::Bool, SVal::Bool(_))
                | (Kind::List, SVal::List(_))
        ) || (matches!((self, v), (Kind::Table, SVal::Table(_))) && v.type_name() == "dict")
    }
}

/// The fields of a table, type-checked: unknown or mistyped ones are reported and left out.
struct Fields<'a> {
    items: Vec<(&'a str, Range<usize>, &'a SVal)>,
}

impl<'a> Fields<'a> {
    fn check(
        ctx: &mut Ctx,
        table: &'a [(Spanned<String>, Spanned<SVal>)],
        known: &[(&str, Kind)],
        label: &dyn Fn(&str) -> String,
    ) -> Fields<'a> {
        let mut items = Vec::new();
        let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
        for (k, v) in table {
            let key = k.get_ref().as_str();
            let span = Some(k.span());
            match known.iter().find(|(n, _)| *n == key) {
                None => ctx.fail(
                    span,
                    &label(key),
                    &format!("unknown field (known: {})", names.join(", ")),
                ),
                Some((_, kind)) if !kind.accepts(v.get_ref()) => ctx.fail(
                    span,
                    &label(key),
                    &format!("must be {}, not {}", kind.name(), v.get_ref().type_name()),
                ),
                Some(_) => items.push((key, k.span(), v.get_ref())),
            }
        }
        Fields { items }
    }
    fn get(&self, key: &str) -> Option<(Range<usize>, &'a SVal)> {
        self.items
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, s, v)| (s.clone(), *v))
    }
    fn str(&self, key: &str) -> Option<(Range<usize>, &'a str)> {
        match self.get(key)? {
            (s, SVal::Str(v)) => Some((s, v)),
            _ => None,
        }
    }
    fn int(&self, key: &str) -> Option<(Range<usize>, i64)> {
        match self.get(key)? {
            (s, SVal::Int(v)) => Some((s, *v)),
            _ => None,
        }
    }
    fn bool(&self, key: &str) -> bool {
        matches!(self.get(key), Some((_, SVal::Bool(true))))
    }
    fn list(&self, key: &str) -> Option<(Range<usize>, &'a [Spanned<SVal>])> {
        match self.get(key)? {
            (s, SVal::List(v)) => Some((s, v)),
            _ => None,
        }
    }
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 32
        && b.first().is_some_and(ok)
        && b.iter().all(|c| ok(c) || matches!(c, b'_' | b'.' | b'-'))
}

/// Signature strings stand for bytes: each code point 0-255 is one byte (TOML's \u00XX).
fn text_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// Parse one file's text: the signature or every error, and warnings (costly patterns).
pub fn parse(
    text: &str,
    path: &str,
    origin: &str,
) -> (Result<Signature, Vec<String>>, Vec<String>) {
    parse_with(text, path, origin, Compile::Checked)
}

/// `parse` for loading: the signature or every error, no warnings looked for (`compile`: `Now`
/// or `Deferred`).
fn load_text(
    text: &str,
    path: &str,
    origin: &str,
    compile: Compile,
) -> Result<Signature, Vec<String>> {
    parse_with(text, path, origin, compile).0
}

/// When a signature's patterns are compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compile {
    /// While loading, each one's problem reported against its field.
    Now,
    /// As `Now`, and a costly pattern warned about (compiling it a second time: only `portwatch
    /// signatures check` wants to pay that).
    Checked,
    /// At the first use (`Pattern::deferred`): the set built into the core, which a test
    /// compiles whole. Compiling its patterns was ~85% of building the engine, paid by every
    /// run, and a capture asks for a fraction of them.
    Deferred,
}

fn parse_with(
    text: &str,
    path: &str,
    origin: &str,
    compile: Compile,
) -> (Result<Signature, Vec<String>>, Vec<String>) {
    let mut ctx = Ctx {
        path,
        lines: Lines::new(text),
        errors: Vec::new(),
        compile,
        warnings: Vec::new(),
    };
    let doc: SVal = match toml::from_str::<SVal>(text) {
        Ok(d) => d,
        Err(e) => {
            let line = e.span().map(|s| ctx.lines.of(s.start));
            let msg = e.message().lines().next().unwrap_or("").to_owned();
            let msg = match e.span() {
                Some(s) => {
                    let l = ctx.lines.of(s.start);
                    let col = s.start
                        - text
                            .get(..s.start)
                            .and_then(|t| t.rfind('\n'))
                            .map_or(0, |n| n + 1)
                        + 1;
                    format!("invalid TOML: {msg} (at line {l}, column {col})")
                }
                None => format!("invalid TOML: {msg}"),
            };
            return (Err(vec![format_error(path, line, "", &msg)]), vec![]);
        }
    };
    let SVal::Table(table) = &doc else {
        return (
            Err(vec![format_error(
                path,
                None,
                "",
                "invalid TOML: not a table",
            )]),
            vec![],
        );
    };
    let top = Fields::check(&mut ctx, table, TOP_FIELDS, &|k| k.to_owned());
    let sig = build(&mut ctx, text, &top, table, path, origin);
    let warnings = std::mem::take(&mut ctx.warnings);
    match sig {
        Some(s) if ctx.errors.is_empty() => (Ok(s), warnings),
        _ => (Err(ctx.errors), warnings),
    }
}

fn build(
    ctx: &mut Ctx,
    text: &str,
    top: &Fields,
    table: &[(Spanned<String>, Spanned<SVal>)],
    path: &str,
    origin: &str,
) -> Option<Signature> {
    let key_known = |k: &str| table.iter().any(|(t, _)| t.get_ref() == k);
    let protocol = match top.str("protocol") {
        Some((s, p)) => {
            if !is_name(p) {
                ctx.fail(
                    Some(s),
                    "protocol",
                    "must be a short lowercase name (a-z, 0-9, '_', '.', '-')",
                );
            }
            Some(p.to_owned())
        }
        None if key_known("protocol") => None, // mistyped: already reported
        None => {
            ctx.errors.push(format_error(
                path,
                Some(1),
                "protocol",
                "missing (every file names its protocol)",
            ));
            None
        }
    };
    let mut transports = Vec::new();
    match top.list("transports") {
        None => transports.push(Transport::Tcp),
        Some((span, items)) => {
            for t in items {
                match t.get_ref() {
                    SVal::Str(s) if Transport::parse(s).is_some() => {
                        transports.extend(Transport::parse(s));
                    }
                    v => ctx.fail(
                        Some(span.clone()),
                        "transports",
                        &format!("{} is not one of ('tcp', 'udp')", v.repr()),
                    ),
                }
            }
        }
    }
    let mut services = Vec::new();
    if let Some((span, items)) = top.list("services") {
        let ok = items
            .iter()
            .all(|s| matches!(s.get_ref(), SVal::Str(x) if !x.is_empty()));
        if ok {
            services = items
                .iter()
                .filter_map(|s| {
                    if let SVal::Str(x) = s.get_ref() {
                        Some(x.clone())
                    } else {
                        None
                    }
                })
                .collect();
        } else {
            ctx.fail(Some(span), "services", "must be a list of service names");
        }
    }
    let ports = match top.list("ports") {
        None => Vec::new(),
        Some((span, items)) => match port_list(items) {
            Some(p) => p,
            None => {
                ctx.fail(
                    Some(span),
                    "ports",
                    "must be a list of port numbers 1-65535",
                );
                Vec::new()
            }
        },
    };
    let match_headers = match_header_lines(text);
    let mut matches = Vec::new();
    match top.get("match") {
        Some((span, SVal::List(items))) if !items.is_empty() => {
            for (i, m) in items.iter().enumerate() {
                let SVal::Table(mt) = m.get_ref() else {
                    ctx.fail(
                        Some(span.clone()),
                        "match",
                        "must be an array of tables ([[match]])",
                    );
                    continue;
                };
                let header = match_headers
                    .get(i)
                    .copied()
                    .or_else(|| Some(ctx.lines.of(m.span().start)));
                if let Some(mut parsed) = parse_match(ctx, mt, i, &transports, header) {
                    parsed.prelude |= top.bool("prelude");
                    matches.push(parsed);
                }
            }
        }
        None if key_known("match") => {}
        None if top.bool("expected") => {}
        _ => {
            let n = text.lines().count().max(1);
            ctx.errors.push(format_error(
                path,
                Some(n),
                "match",
                "at least one [[match]] table is required",
            ));
        }
    }
    let both = top.bool("require_both_directions");
    if both {
        let c = matches.iter().any(|m| m.direction.client());
        let s = matches.iter().any(|m| m.direction.server());
        if !(c && s) {
            let span = top.get("require_both_directions").map(|(s, _)| s);
            ctx.fail(
                span,
                "require_both_directions",
                "needs a client-side and a server-side match",
            );
        }
    }
    if top.bool("expected") && !matches.is_empty() {
        let span = top.get("expected").map(|(s, _)| s);
        ctx.fail(
            span,
            "expected",
            "a protocol named by announcements alone has no [[match]]",
        );
    }
    let announces = match top.str("announces") {
        None => None,
        Some((span, name)) => {
            let p = Parser::by_name(name);
            if p.is_none() {
                ctx.fail(
                    Some(span),
                    "announces",
                    &format!("must be one of {:?}", Parser::NAMES),
                );
            }
            p
        }
    };
    let secure_when = match top.get("secure_when") {
        Some((span, SVal::Table(table))) => {
            parse_secure_when(ctx, span, table, top.bool("insecure"))
        }
        _ => Vec::new(),
    };
    let idle = Transport::ALL.map(|t| idle_of(ctx, top, t, &transports));
    let conversation = match top.get("conversation") {
        Some((span, SVal::Table(table))) => {
            parse_conversation(ctx, span, table, &transports, top.bool("cleartext_auth"))
        }
        _ => None,
    };
    let head_stop = top
        .str("head_stop")
        .and_then(|(span, text)| compile_pattern(ctx, span, "head_stop", text));
    let mut probe_names: Vec<String> = matches.iter().filter_map(|m| m.probe.clone()).collect();
    probe_names.sort();
    probe_names.dedup();
    Some(Signature {
        protocol: protocol?,
        description: top
            .str("description")
            .map(|(_, s)| s.to_owned())
            .unwrap_or_default(),
        transports,
        services,
        ports,
        tunnel: top.bool("tunnel"),
        any_port: top.bool("any_port"),
        encrypted: top.bool("encrypted"),
        cleartext_auth: top.bool("cleartext_auth"),
        insecure: top.bool("insecure"),
        reserved_source_port: top.bool("reserved_source_port"),
        secure_when,
        priority: top.int("priority").map(|(_, p)| p).unwrap_or(0),
        require_both_directions: both,
        matches,
        prelude: top.bool("prelude"),
        source: path.to_owned(),
        origin: origin.to_owned(),
        probe_names,
        announces,
        expected: top.bool("expected"),
        idle,
        conversation,
        head_stop,
    })
}

/// `[conversation]`: each pattern compiled as a match's regex is; a greeting or helo needs the
/// group it reports, STARTTLS needs both halves, a login needs `cleartext_auth` (the policy
/// reports a login in clear only for such a protocol), and the table needs TCP.
fn parse_conversation(
    ctx: &mut Ctx,
    span: Range<usize>,
    table: &[(Spanned<String>, Spanned<SVal>)],
    transports: &[Transport],
    cleartext_auth: bool,
) -> Option<Conversation> {
    let label = |k: &str| format!("conversation.{k}");
    let f = Fields::check(ctx, table, CONVERSATION_FIELDS, &label);
    let before = ctx.errors.len();
    if !transports.contains(&Transport::Tcp) {
        ctx.fail(
            Some(span.clone()),
            "conversation",
            "the protocol does not run over tcp",
        );
    }
    let pattern = |ctx: &mut Ctx, key: &str, groups: bool| -> Option<Pattern> {
        let (s, text) = f.str(key)?;
        let p = compile_pattern(ctx, s.clone(), &label(key), text)?;
        if groups && p.captures_len() < 2 {
            ctx.fail(
                Some(s),
                &label(key),
                "needs a group: its first group is the value reported",
            );
            return None;
        }
        Some(p)
    };
    let greeting = pattern(ctx, "greeting", true);
    let helo = pattern(ctx, "helo", true);
    let ask = pattern(ctx, "starttls", false);
    let ok = pattern(ctx, "starttls_ok", false);
    let login = pattern(ctx, "login", false);
    let anonymous = pattern(ctx, "anonymous", false);
    for (key, other) in [("starttls", "starttls_ok"), ("starttls_ok", "starttls")] {
        if let (Some((s, _)), None) = (f.get(key), f.get(other)) {
            ctx.fail(Some(s), &label(key), &format!("needs {other} too"));
        }
    }
    if let (Some((s, _)), None) = (f.get("anonymous"), f.get("login")) {
        ctx.fail(
            Some(s),
            &label("anonymous"),
            "qualifies a login: needs login too",
        );
    }
    if let (Some((s, _)), false) = (f.get("login"), cleartext_auth) {
        ctx.fail(
            Some(s),
            &label("login"),
            "a login in clear is reported only for a protocol with cleartext_auth = true",
        );
    }
    if ctx.errors.len() > before {
        return None;
    }
    Some(Conversation {
        greeting,
        helo,
        starttls: ask.zip(ok),
        login,
        anonymous,
    })
}

/// A pattern of a signature file (`text`'s characters stand for bytes), compiled; its problem
/// reported against `field`, and a warning when it is costly.
fn compile_pattern(ctx: &mut Ctx, span: Range<usize>, field: &str, text: &str) -> Option<Pattern> {
    let Some(src) = text_bytes(text) else {
        ctx.fail(
            Some(span),
            field,
            "characters above \\u00ff cannot stand for a byte",
        );
        return None;
    };
    let pattern = match ctx.compile {
        Compile::Deferred => Pattern::deferred(&src),
        Compile::Now | Compile::Checked => Pattern::new(&src),
    };
    match pattern {
        Ok(p) => {
            let warn = ctx.compile == Compile::Checked;
            if let Some(why) = warn.then(|| p.expense()).flatten() {
                let line = Some(ctx.lines.of(span.start));
                ctx.warnings.push(format_error(
                    ctx.path,
                    line,
                    field,
                    &format!("warning: {why}"),
                ));
            }
            Some(p)
        }
        Err(e) => {
            ctx.fail(Some(span), field, &e);
            None
        }
    }
}

/// `idle_tcp` or `idle_udp`: seconds in (0, MAX_IDLE], for a transport the protocol runs over.
fn idle_of(ctx: &mut Ctx, top: &Fields, t: Transport, transports: &[Transport]) -> Option<f64> {
    let field = match t {
        Transport::Tcp => "idle_tcp",
        Transport::Udp => "idle_udp",
    };
    let (span, value) = top.get(field)?;
    let secs = match value {
        SVal::Float(f) => *f,
        SVal::Int(i) => *i as f64,
        _ => return None, // mistyped: already reported
    };
    // NaN and the infinities fail the range test too.
    if !(secs > 0.0 && secs <= MAX_IDLE) {
        let problem = format!("must be a number of seconds in (0, {MAX_IDLE}]");
        ctx.fail(Some(span), field, &problem);
        return None;
    }
    if !transports.contains(&t) {
        let problem = format!("the protocol does not run over {}", t.name());
        ctx.fail(Some(span), field, &problem);
        return None;
    }
    Some(secs)
}

/// Lines of the `[[match]]` headers, in order (where a match's own errors point when no field does).
fn match_header_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim().starts_with("[[match]]"))
        .map(|(i, _)| i + 1)
        .collect()
}

fn port_list(items: &[Spanned<SVal>]) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for p in items {
        match p.get_ref() {
            SVal::Int(v) if (1..65536).contains(v) => out.push(u16::try_from(*v).ok()?),
            _ => return None,
        }
    }
    Some(out)
}

fn parse_match(
    ctx: &mut Ctx,
    table: &[(Spanned<String>, Spanned<SVal>)],
    i: usize,
    sig_transports: &[Transport],
    header: Option<usize>,
) -> Option<Match> {
    let label = |k: &str| format!("match[{i}].{k}");
    let f = Fields::check(ctx, table, MATCH_FIELDS, &label);
    let before = ctx.errors.len();
    let direction = match f.str("direction") {
        None => Direction::Either,
        Some((_, "client")) => Direction::Client,
        Some((_, "server")) => Direction::Server,
        Some((_, "either")) => Direction::Either,
        Some((s, _)) => {
            ctx.fail(
                Some(s),
                &label("direction"),
                "must be one of client, server, either",
            );
            Direction::Either
        }
    };
    let transports = match f.list("transports") {
        None => sig_transports.to_vec(),
        Some((s, items)) => {
            let t: Vec<Option<Transport>> = items
                .iter()
                .map(|t| {
                    if let SVal::Str(x) = t.get_ref() {
                        Transport::parse(x)
                    } else {
                        None
                    }
                })
                .collect();
            if t.iter()
                .all(|t| t.is_some_and(|t| sig_transports.contains(&t)))
            {
                t.into_iter().flatten().collect()
            } else {
                ctx.fail(
                    Some(s),
                    &label("transports"),
                    "must be a subset of the signature's transports",
                );
                Vec::new()
            }
        }
    };
    let mut prefix = None;
    match (f.str("prefix"), f.str("prefix_hex")) {
        (Some(_), Some((s, _))) => ctx.fail(
            Some(s),
            &label("prefix_hex"),
            "give prefix or prefix_hex, not both",
        ),
        (Some((s, p)), None) => match text_bytes(p) {
            Some(b) => prefix = Some((s, b)),
            None => ctx.fail(
                Some(s),
                &label("prefix"),
                "characters above \\u00ff cannot stand for a byte",
            ),
        },
        (None, Some((s, h))) => match from_hex(h) {
            Some(b) => prefix = Some((s, b)),
            None => ctx.fail(Some(s), &label("prefix_hex"), "not a hex string"),
        },
        (None, None) => {}
    }
    if let Some((s, p)) = &prefix {
        if p.is_empty() {
            ctx.fail(Some(s.clone()), &label("prefix"), "must not be empty");
        }
    }
    let offset = bounded(
        ctx,
        &f,
        "offset",
        0,
        0,
        MAX_DEPTH as i64 - 1,
        &label,
        &format!("must be 0..{}", MAX_DEPTH - 1),
    );
    let depth = bounded(
        ctx,
        &f,
        "depth",
        DEFAULT_DEPTH as i64,
        1,
        MAX_DEPTH as i64,
        &label,
        &format!("must be 1..{MAX_DEPTH}"),
    );
    let regex = f
        .str("regex")
        .and_then(|(s, r)| compile_pattern(ctx, s, &label("regex"), r));
    let probe = f.str("probe").map(|(s, p)| {
        if probes::lookup(p).is_none() {
            let known = probes::names().join(", ");
            ctx.fail(
                Some(s),
                &label("probe"),
                &format!("unknown probe {} (known: {known})", py_repr(p)),
            );
        }
        p.to_owned()
    });
    let has_regex = f.get("regex").is_some();
    if prefix.is_none()
        && !has_regex
        && probe.is_none()
        && f.get("prefix").is_none()
        && f.get("prefix_hex").is_none()
    {
        ctx.errors.push(format_error(
            ctx.path,
            header,
            &label("match"),
            "needs a prefix, prefix_hex, regex or probe",
        ));
    }
    let default_conf = if probe.is_some() {
        DEFAULT_PROBE_CONFIDENCE
    } else {
        DEFAULT_PATTERN_CONFIDENCE
    };
    let confidence = match f.get("confidence") {
        Some((_, SVal::Float(c))) => Some(*c),
        Some((_, SVal::Int(c))) => Some(*c as f64),
        _ => None,
    };
    let confidence = match confidence {
        None => default_conf,
        Some(c) if c > 0.0 && c <= 1.0 => c,
        Some(_) => {
            let s = f.get("confidence").map(|(s, _)| s);
            ctx.fail(s, &label("confidence"), "must be in (0, 1]");
            default_conf
        }
    };
    let min_length = bounded(
        ctx,
        &f,
        "min_length",
        1,
        1,
        MAX_DEPTH as i64,
        &label,
        &format!("must be 1..{MAX_DEPTH}"),
    );
    let mut ports = Vec::new();
    if let Some((s, items)) = f.list("ports") {
        match port_list(items) {
            Some(p) if !p.is_empty() => ports = p,
            _ => ctx.fail(
                Some(s),
                &label("ports"),
                "must be a non-empty list of port numbers 1-65535",
            ),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    let first_datagram = f.bool("first_datagram");
    if let Some((s, _)) = f.get("first_datagram").filter(|_| first_datagram) {
        if !transports.contains(&Transport::Udp) {
            ctx.fail(
                Some(s),
                &label("first_datagram"),
                "only UDP has datagrams: the match must run over udp",
            );
        } else if probe
            .as_deref()
            .and_then(probes::lookup)
            .is_some_and(|p| p.is_units())
        {
            ctx.fail(
                Some(s),
                &label("first_datagram"),
                "the probe judges all the datagrams of a direction together",
            );
        }
    }
    if ctx.errors.len() > before {
        return None;
    }
    Some(Match {
        direction,
        transports,
        prefix: prefix.map(|(_, p)| p),
        offset,
        regex,
        depth,
        probe,
        confidence,
        min_length,
        ports,
        weak: f.bool("weak"),
        first_datagram,
        prelude: f.bool("prelude"),
    })
}

/// Facts `secure_when` may name, and values per fact.
pub const MAX_SECURE_FACTS: usize = 16;

/// `secure_when = { fact = ["value", ...] }`: meta facts whose values lift `insecure`.
fn parse_secure_when(
    ctx: &mut Ctx,
    span: Range<usize>,
    table: &[(Spanned<String>, Spanned<SVal>)],
    insecure: bool,
) -> Vec<(String, Vec<String>)> {
    if !insecure {
        ctx.fail(
            Some(span.clone()),
            "secure_when",
            "only a protocol with insecure = true can be made secure by its facts",
        );
    }
    if table.len() > MAX_SECURE_FACTS {
        ctx.fail(
            Some(span),
            "secure_when",
            &format!("at most {MAX_SECURE_FACTS} facts"),
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    for (key, value) in table {
        let field = format!("secure_when.{}", key.get_ref());
        let values: Option<Vec<String>> = match value.get_ref() {
            SVal::List(items) if !items.is_empty() && items.len() <= MAX_SECURE_FACTS => items
                .iter()
                .map(|v| match v.get_ref() {
                    SVal::Str(x) if !x.is_empty() => Some(x.clone()),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        match values {
            Some(v) => out.push((key.get_ref().clone(), v)),
            None => ctx.fail(
                Some(value.span()),
                &field,
                &format!("must be a list of 1 to {MAX_SECURE_FACTS} texts (the fact's values)"),
            ),
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn bounded(
    ctx: &mut Ctx,
    f: &Fields,
    key: &str,
    default: i64,
    lo: i64,
    hi: i64,
    label: &dyn Fn(&str) -> String,
    problem: &str,
) -> usize {
    match f.int(key) {
        None => default as usize,
        Some((_, v)) if (lo..=hi).contains(&v) => v as usize,
        Some((s, _)) => {
            ctx.fail(Some(s), &label(key), problem);
            default as usize
        }
    }
}

/// Python's bytes.fromhex: pairs of hex digits, spaces allowed between pairs.
fn from_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
            continue;
        }
        let pair = std::str::from_utf8(b.get(i..i + 2)?).ok()?;
        out.push(u8::from_str_radix(pair, 16).ok()?);
        i += 2;
    }
    Some(out)
}

/// Python's repr of a str (the common cases: quotes and backslashes).
pub(crate) fn py_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse(text, "t.toml", "user").0 {
            Ok(_) => vec![],
            Err(e) => e,
        }
    }

    #[test]
    fn every_error_with_its_line() {
        let text = "protocol = \"Bad\"\nports = [0]\nbogus = 1\n[[match]]\ndirection = \"up\"\ndepth = 0\n\n[[match]]\nconfidence = 2\nregex = '(?=x)'\n";
        let e = errors(text);
        let want = [
            "t.toml:3: bogus: unknown field",
            "t.toml:1: protocol: must be a short lowercase name",
            "t.toml:2: ports: must be a list of port numbers 1-65535",
            "t.toml:5: match[0].direction: must be one of client, server, either",
            "t.toml:6: match[0].depth: must be 1..4096",
            "t.toml:4: match[0].match: needs a prefix, prefix_hex, regex or probe",
            "t.toml:10: match[1].regex: look-ahead is not supported",
            "t.toml:9: match[1].confidence: must be in (0, 1]",
        ];
        for w in want {
            assert!(
                e.iter().any(|x| x.starts_with(w)),
                "missing {w:?} in {e:#?}"
            );
        }
        assert_eq!(e.len(), want.len(), "{e:#?}");
    }

    #[test]
    fn types_and_missing() {
        let e = errors("description = 3\n");
        assert!(
            e.contains(&"t.toml:1: description: must be str, not int".to_owned()),
            "{e:?}"
        );
        assert!(
            e.contains(&"t.toml:1: protocol: missing (every file names its protocol)".to_owned()),
            "{e:?}"
        );
        assert!(
            e.contains(&"t.toml:1: match: at least one [[match]] table is required".to_owned()),
            "{e:?}"
        );
        let e = errors("protocol = \"x\"\n[[match]\n");
        assert!(
            e.first()
                .is_some_and(|x| x.starts_with("t.toml:2: invalid TOML: ")),
            "{e:?}"
        );
    }

    #[test]
    fn good_file() {
        let text = "protocol = \"zabbix\"\nports = [10050]\n[[match]]\nprefix = \"ZBXD\\u0001\"\nconfidence = 1\n[[match]]\nprefix_hex = \"5a 42\"\nregex = '^ZBXD[\\x01\\x03]'\ndirection = \"server\"\n";
        let s = parse(text, "t.toml", "user").0.unwrap();
        assert_eq!(s.matches.len(), 2);
        assert_eq!(s.matches[0].prefix.as_deref(), Some(&b"ZBXD\x01"[..]));
        assert_eq!(s.matches[0].confidence, 1.0);
        assert_eq!(s.matches[1].prefix.as_deref(), Some(&b"ZB"[..]));
        assert_eq!(s.transports, vec![Transport::Tcp]);
        assert_eq!(s.to_json()["ports"], json!([10050]));
    }

    #[test]
    fn announces_and_expected() {
        let s = parse(
            "protocol = \"ftp-data\"\nexpected = true\n",
            "t.toml",
            "user",
        )
        .0
        .unwrap();
        assert!(s.expected && s.matches.is_empty());
        let text = "protocol = \"ftp\"\nannounces = \"ftp\"\n[[match]]\nprefix = \"220\"\n";
        let s = parse(text, "t.toml", "user").0.unwrap();
        assert_eq!(s.announces, Some(Parser::Ftp));
        assert_eq!(s.to_json()["announces"], json!("ftp"));
        let e = errors("protocol = \"x\"\nannounces = \"h323\"\n[[match]]\nprefix = \"a\"\n");
        assert!(
            e.iter().any(|x| x.contains("announces: must be one of")),
            "{e:?}"
        );
        let e = errors("protocol = \"x\"\nexpected = true\n[[match]]\nprefix = \"a\"\n");
        assert!(e.iter().any(|x| x.contains("expected: ")), "{e:?}");
    }

    #[test]
    fn secure_when_names_facts_that_lift_insecure() {
        let text = "protocol = \"x\"\ninsecure = true\nsecure_when = { x_level = [\"auth\", \"priv\"] }\n[[match]]\nprefix = \"a\"\n";
        let s = parse(text, "t.toml", "user").0.unwrap();
        assert_eq!(
            s.secure_when,
            vec![(
                "x_level".to_owned(),
                vec!["auth".to_owned(), "priv".to_owned()]
            )]
        );
        assert_eq!(
            s.to_json()["secure_when"],
            json!({"x_level": ["auth", "priv"]})
        );
        assert_eq!(
            errors("protocol = \"x\"\nsecure_when = { a = [\"b\"] }\n[[match]]\nprefix = \"a\"\n"),
            vec!["t.toml:2: secure_when: only a protocol with insecure = true can be made secure by its facts".to_owned()]
        );
        assert_eq!(
            errors("protocol = \"x\"\ninsecure = true\nsecure_when = { a = [1] }\n[[match]]\nprefix = \"a\"\n"),
            vec!["t.toml:3: secure_when.a: must be a list of 1 to 16 texts (the fact's values)".to_owned()]
        );
    }

    #[test]
    fn first_datagram_needs_udp_and_a_one_datagram_check() {
        let text = "protocol = \"x\"\ntransports = [\"udp\", \"tcp\"]\n[[match]]\nprefix = \"a\"\nfirst_datagram = true\n[[match]]\nprefix = \"b\"\n";
        let s = parse(text, "t.toml", "user").0.unwrap();
        assert!(s.matches[0].first_datagram);
        assert!(!s.matches[1].first_datagram);
        let e = errors("protocol = \"x\"\n[[match]]\nprefix = \"a\"\nfirst_datagram = true\n");
        assert_eq!(
            e,
            vec![
                "t.toml:4: match[0].first_datagram: only UDP has datagrams: the match must run over udp"
                    .to_owned()
            ]
        );
        if probes::lookup("rtp").is_some() {
            let e = errors(
                "protocol = \"x\"\ntransports = [\"udp\"]\n[[match]]\nprobe = \"rtp\"\nfirst_datagram = true\n",
            );
            assert_eq!(
                e,
                vec!["t.toml:5: match[0].first_datagram: the probe judges all the datagrams of a direction together".to_owned()]
            );
        }
        let e = errors("protocol = \"x\"\ntransports = [\"udp\"]\n[[match]]\nprefix = \"a\"\nfirst_datagram = 1\n");
        assert!(
            e.iter()
                .any(|x| x.starts_with("t.toml:5: match[0].first_datagram: must be bool")),
            "{e:?}"
        );
    }

    #[test]
    fn idle_timeouts_per_transport() {
        let text = "protocol = \"x\"\ntransports = [\"udp\", \"tcp\"]\nidle_udp = 10\nidle_tcp = 0.5\n[[match]]\nprefix = \"a\"\n";
        let s = parse(text, "t.toml", "user").0.unwrap();
        assert_eq!(s.idle, [Some(0.5), Some(10.0)]);
        assert_eq!(s.to_json()["idle_udp"], json!(10.0));
        let s = parse(
            "protocol = \"x\"\n[[match]]\nprefix = \"a\"\n",
            "t.toml",
            "user",
        )
        .0
        .unwrap();
        assert_eq!(s.idle, [None, None]);
        assert_eq!(s.to_json()["idle_tcp"], Value::Null);
        for (value, problem) in [
            (
                "0",
                "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
            ),
            (
                "-1.5",
                "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
            ),
            (
                "86401",
                "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
            ),
            (
                "nan",
                "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
            ),
            (
                "inf",
                "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
            ),
            ("\"10\"", "t.toml:3: idle_udp: must be float, not str"),
        ] {
            let text = format!(
                "protocol = \"x\"\ntransports = [\"udp\"]\nidle_udp = {value}\n[[match]]\nprefix = \"a\"\n"
            );
            assert_eq!(errors(&text), vec![problem.to_owned()], "{value}");
        }
        // A timeout for a transport the protocol does not run over says nothing: refused.
        let e = errors("protocol = \"x\"\nidle_udp = 5\n[[match]]\nprefix = \"a\"\n");
        assert_eq!(
            e,
            vec!["t.toml:2: idle_udp: the protocol does not run over udp".to_owned()]
        );
    }

    #[test]
    fn a_head_stop_is_a_pattern_for_any_transport() {
        let text = "protocol = \"x\"\ntransports = [\"udp\"]\nhead_stop = '\\A[\\x00-\\xff]{4}'\n[[match]]\nprefix = \"a\"\n";
        let s = parse(text, "t.toml", "user").0.unwrap();
        let stop = s.head_stop.expect("a head_stop");
        assert_eq!(
            stop.regex().unwrap().find(b"abcdefgh").map(|m| m.end()),
            Some(4)
        );
        assert!(s.conversation.is_none());
        let e = errors("protocol = \"x\"\nhead_stop = '(?=x)'\n[[match]]\nprefix = \"a\"\n");
        assert_eq!(e, vec!["t.toml:2: head_stop: look-ahead is not supported (the Rust engine matches in linear time)".to_owned()]);
    }

    #[test]
    fn conversation_tables() {
        let head =
            "protocol = \"x\"\ncleartext_auth = true\n[[match]]\nprefix = \"a\"\n[conversation]\n";
        let text = format!(
            "{head}greeting = '\\A\\+OK ([ -~]*)\\r\\n'\nstarttls = '(?m)^GO$'\nstarttls_ok = '(?m)^\\+OK'\nlogin = '(?m)^PASS '\n"
        );
        let s = parse(&text, "t.toml", "user").0.unwrap();
        let c = s.conversation.expect("a conversation");
        assert!(c.greeting.is_some() && c.starttls.is_some() && c.login.is_some());
        assert!(c.helo.is_none() && c.anonymous.is_none());
        for (body, want) in [
            ("greeting = '^220 '\n", "t.toml:6: conversation.greeting: needs a group: its first group is the value reported"),
            ("starttls = 'GO'\n", "t.toml:6: conversation.starttls: needs starttls_ok too"),
            ("starttls_ok = 'OK'\n", "t.toml:6: conversation.starttls_ok: needs starttls too"),
            ("anonymous = 'USER ftp'\n", "t.toml:6: conversation.anonymous: qualifies a login: needs login too"),
            ("login = '(?=x)'\n", "t.toml:6: conversation.login: look-ahead is not supported"),
            ("banner = 'x'\n", "t.toml:6: conversation.banner: unknown field (known: anonymous, greeting, helo, login, starttls, starttls_ok)"),
        ] {
            let e = errors(&format!("{head}{body}"));
            assert_eq!(e.len(), 1, "{e:#?}");
            assert!(e[0].starts_with(want), "{e:#?} / {want}");
        }
        let e = errors("protocol = \"x\"\nconversation = 3\n[[match]]\nprefix = \"a\"\n");
        assert_eq!(
            e,
            vec!["t.toml:2: conversation: must be dict, not int".to_owned()]
        );
        let e = errors(
            "protocol = \"x\"\ntransports = [\"udp\"]\ncleartext_auth = true\n[[match]]\nprefix = \"a\"\n[conversation]\nlogin = 'PASS'\n",
        );
        assert_eq!(
            e,
            vec!["t.toml:6: conversation: the protocol does not run over tcp".to_owned()]
        );
        // A login found where nothing would report it (xmpp's file lacked the flag).
        let e =
            errors("protocol = \"x\"\n[[match]]\nprefix = \"a\"\n[conversation]\nlogin = 'PASS'\n");
        assert_eq!(
            e,
            vec!["t.toml:5: conversation.login: a login in clear is reported only for a protocol with cleartext_auth = true".to_owned()]
        );
    }

    #[test]
    fn shipped_set_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../main/signatures");
        let dir = if dir.is_dir() {
            dir
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../signatures")
        };
        if probes::names().is_empty() {
            return; // needs the probes the files name
        }
        let sigs = load_dirs(&dir, &[]).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(sigs.len() > 50);
    }
}
