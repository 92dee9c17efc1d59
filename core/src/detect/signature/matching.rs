//! A signature's `[[match]]` tables: pattern, offset, depth, direction, probe, ports.
use std::ops::Range;

use toml::Spanned;

use super::build::compile_pattern;
use super::spanned::{format_error, py_repr, text_bytes, Ctx, Fields, SVal};
use super::{
    Direction, Match, Transport, DEFAULT_DEPTH, DEFAULT_PATTERN_CONFIDENCE,
    DEFAULT_PROBE_CONFIDENCE, MATCH_FIELDS, MAX_DEPTH,
};
use crate::detect::probes;

/// Lines of the `[[match]]` headers, in order (where a match's own errors point when no field does).
pub(super) fn match_header_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim().starts_with("[[match]]"))
        .map(|(i, _)| i + 1)
        .collect()
}

pub(super) fn port_list(items: &[Spanned<SVal>]) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for p in items {
        match p.get_ref() {
            SVal::Int(v) if (1..65536).contains(v) => out.push(u16::try_from(*v).ok()?),
            _ => return None,
        }
    }
    Some(out)
}

pub(super) fn parse_match(
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
pub(super) fn parse_secure_when(
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
