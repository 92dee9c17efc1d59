//! Target `probes`: one probe, chosen by the first input byte, on the rest, in both directions.
//!
//! Input: `[selector][payload...]`. The selector picks the probes whose `tag` (a hash of the
//! name) it is: one, or the few that share it, and none for most bytes. A `single`
//! probe sees the payload cut to `MAX_INPUT`, as the engine cuts it. A `units` probe sees the
//! payload split into datagrams, each `[len: u16 BE][len bytes]` (the last one may be short),
//! at most `MAX_UNITS` of them, each cut to `MAX_INPUT`.
//!
//! Checked, beyond "no panic":
//! - a Match implies the input (one of the units, for a `units` probe) starts with one of the
//!   probe's declared `first_bytes` (the engine skips the probe otherwise, so a match outside
//!   them is a detection the engine would silently lose);
//! - probes are pure: the same input gives the same result twice;
//! - every string in the metadata (keys too) is free of the characters Python's
//!   `sanitize._UNSAFE` escapes and at most 65536 characters long, as in fuzz/targets.py;
//! - the DNS probe's `dns_query` is ASCII (the DNS-tunnel policy splits such a name in the
//!   core); an ASCII `dns_query`'s split (`dns_name::split_name`) is pure, its longest data
//!   label within its data, its registered domain two labels or more;
//! - the announcement parsers (`detect::announce`, FTP/SDP/RTSP) on the whole input, both
//!   directions: pure, at most `MAX_ANNOUNCED` endpoints, no port 0.
use _core::detect::announce::{self, Parser, MAX_ANNOUNCED};
use _core::detect::probes::{lookup, names, Kind, Probe, ProbeResult, Status, MAX_INPUT};
use _core::dns_name::split_name;
use _core::meta::Value;
use std::sync::OnceLock;

/// Units handed to one `units` call (a flow direction's datagrams, as the engine bounds them).
pub const MAX_UNITS: usize = 64;

/// The longest metadata string allowed (fuzz/targets.py's bound).
const MAX_TEXT: usize = 65536;

fn probes() -> &'static [&'static Probe] {
    static ALL: OnceLock<Vec<&'static Probe>> = OnceLock::new();
    ALL.get_or_init(|| names().into_iter().filter_map(lookup).collect())
}

/// Splits `[len: u16 BE][bytes]...` into units (see the module docs).
pub fn split_units(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < MAX_UNITS {
        let (n, rest) = match data {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            [_] => break,
            [] => break,
        };
        let n = n.min(rest.len());
        let (unit, tail) = rest.split_at(n);
        out.push(&unit[..unit.len().min(MAX_INPUT)]);
        data = tail;
    }
    out
}

/// Joins units into the `units` payload format (for seeds and tests).
pub fn join_units(units: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for u in units {
        let u = &u[..u.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(u.len() as u16).to_be_bytes());
        out.extend_from_slice(u);
    }
    out
}

/// A probe's selector byte: the low byte of the FNV-1a hash of its name. A saved input keeps its
/// probe whatever probes are added or renamed (an index into the sorted names moved every input
/// past a new name to another probe); the few names that share a byte are all run.
pub fn tag(name: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.to_le_bytes()[0]
}

/// The selector byte that picks the probe named `name`, if there is one.
pub fn selector(name: &str) -> Option<u8> {
    probes().iter().any(|p| p.name == name).then(|| tag(name))
}

pub fn run(data: &[u8]) {
    for parser in [Parser::Ftp, Parser::Sdp, Parser::Rtsp, Parser::Epm] {
        for from_client in [true, false] {
            let got = announce::scan(parser, from_client, data);
            assert_eq!(
                got,
                announce::scan(parser, from_client, data),
                "{parser:?}: not pure"
            );
            assert!(got.len() <= MAX_ANNOUNCED && got.iter().all(|a| a.port != 0));
        }
    }
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    for probe in probes().iter().filter(|p| tag(p.name) == sel) {
        run_probe(probe, payload);
    }
}

/// One probe on `payload`, both directions, with the checks above.
fn run_probe(probe: &Probe, payload: &[u8]) {
    for from_client in [true, false] {
        match probe.kind {
            Kind::Single(f) => {
                let input = &payload[..payload.len().min(MAX_INPUT)];
                let got = f(input, from_client);
                assert_eq!(got, f(input, from_client), "{}: not pure", probe.name);
                if got.status == Status::Match {
                    check_gate(probe, input.first().copied().into_iter());
                }
                check_result(probe.name, &got);
            }
            Kind::Units(f) => {
                let units = split_units(payload);
                let got = f(&units, from_client);
                assert_eq!(got, f(&units, from_client), "{}: not pure", probe.name);
                if got.status == Status::Match {
                    check_gate(probe, units.iter().filter_map(|u| u.first().copied()));
                }
                check_result(probe.name, &got);
            }
        }
    }
}

/// A match must start (in at least one unit) with a declared first byte.
fn check_gate(probe: &Probe, mut firsts: impl Iterator<Item = u8>) {
    if let Some(gate) = probe.first_bytes {
        assert!(
            firsts.any(|b| gate.contains(&b)),
            "{}: matched an input whose first byte is outside first_bytes {gate:02x?}",
            probe.name
        );
    }
}

fn check_result(name: &str, r: &ProbeResult) {
    for (k, v) in &r.meta {
        check_text(name, k);
        check_value(name, k, v, 0);
    }
    if let Some(Value::String(query)) = r.meta.get("dns_query") {
        check_query_split(name, query);
    }
}

/// The policy's split of a query name the probe wrote (see the module docs).
fn check_query_split(name: &str, query: &str) {
    // mDNS and LLMNR names may be UTF-8 (RFC 6762 16): the policy reads those by Python's rules.
    assert!(
        name != "dns" || query.is_ascii(),
        "{name}: dns_query past ASCII {query:?}"
    );
    if !query.is_ascii() {
        return;
    }
    let second_level = |label: &str| label == "co" || label == "com";
    let got = split_name(query, second_level);
    assert_eq!(
        got,
        split_name(query, second_level),
        "{name}: split not pure"
    );
    if let Some(parts) = got {
        assert!(parts.longest_label <= parts.data.len(), "{name}: {parts:?}");
        assert!(parts.domain.contains('.'), "{name}: {parts:?}");
    }
}

fn check_value(name: &str, key: &str, v: &Value, depth: usize) {
    assert!(depth < 64, "{name}.{key}: metadata nested too deep");
    match v {
        Value::String(s) => check_text(name, s),
        Value::Array(a) => a.iter().for_each(|x| check_value(name, key, x, depth + 1)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            check_text(name, k);
            check_value(name, key, x, depth + 1)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Python's `sanitize._UNSAFE`: C0, DEL, C1, zero-width and bidi controls, separators, BOM.
fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

fn check_text(name: &str, s: &str) {
    assert!(
        !s.chars().any(is_unsafe),
        "{name}: unsanitised text {:?}",
        s.chars().take(80).collect::<String>()
    );
    assert!(
        s.chars().count() <= MAX_TEXT,
        "{name}: unbounded text ({} chars)",
        s.chars().count()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_trip() {
        let units: [&[u8]; 3] = [b"ab", b"", b"xyz"];
        assert_eq!(split_units(&join_units(&units)), units);
        assert_eq!(split_units(&[0, 5, 1, 2]), [&[1u8, 2][..]]);
        assert!(split_units(&[7]).is_empty());
    }

    #[test]
    fn every_probe_survives_empty_and_short_inputs() {
        for sel in 0..=u8::MAX {
            run(&[sel]);
            run(&[sel, 0]);
            run(&[sel, 0xff, 0xff, 0xff]);
        }
    }

    /// Every probe has a selector that picks it, a name's selector does not depend on the other
    /// names (FNV-1a's published value for "a"), and an unknown name has none.
    #[test]
    fn selectors_are_the_names_own() {
        for p in probes() {
            let sel = selector(p.name).unwrap();
            assert!(probes()
                .iter()
                .any(|q| q.name == p.name && tag(q.name) == sel));
        }
        assert_eq!(tag("a"), 0x8c); // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c
        assert_eq!(selector("no-such-probe"), None);
    }
}
