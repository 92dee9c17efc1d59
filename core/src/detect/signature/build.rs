//! One file's text into a `Signature`: its top-level fields, its conversation and patterns.
use std::ops::Range;

use toml::Spanned;

use super::matching::{match_header_lines, parse_match, parse_secure_when, port_list};
use super::spanned::{format_error, is_name, text_bytes, Ctx, Fields, Lines, SVal};
use super::{Conversation, Signature, Transport, CONVERSATION_FIELDS, MAX_IDLE, TOP_FIELDS};
use crate::detect::announce::Parser;
use crate::detect::pyregex::Pattern;

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
pub(super) fn load_text(
    text: &str,
    path: &str,
    origin: &str,
    compile: Compile,
) -> Result<Signature, Vec<String>> {
    parse_with(text, path, origin, compile).0
}

/// When a signature's patterns are compiled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Compile {
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
    let login_asked = pattern(ctx, "login_asked", false);
    for (key, other) in [("starttls", "starttls_ok"), ("starttls_ok", "starttls")] {
        if let (Some((s, _)), None) = (f.get(key), f.get(other)) {
            ctx.fail(Some(s), &label(key), &format!("needs {other} too"));
        }
    }
    for key in ["anonymous", "login_asked"] {
        if let (Some((s, _)), None) = (f.get(key), f.get("login")) {
            ctx.fail(Some(s), &label(key), "qualifies a login: needs login too");
        }
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
        login_asked,
        anonymous,
    })
}

/// A pattern of a signature file (`text`'s characters stand for bytes), compiled; its problem
/// reported against `field`, and a warning when it is costly.
pub(super) fn compile_pattern(
    ctx: &mut Ctx,
    span: Range<usize>,
    field: &str,
    text: &str,
) -> Option<Pattern> {
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
