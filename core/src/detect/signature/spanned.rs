//! TOML with spans: values that keep their byte ranges, the fields of a table by kind, and the
//! error context that turns a span into `file:line: field: problem`.
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::build::Compile;

/// A TOML value whose every part keeps its byte span (toml::Value forgets them).
#[derive(Debug)]
pub(super) enum SVal {
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
    pub(super) fn repr(&self) -> String {
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
pub(super) struct Lines(Vec<usize>);

impl Lines {
    pub(super) fn new(text: &str) -> Lines {
        Lines(text.match_indices('\n').map(|(i, _)| i).collect())
    }
    pub(super) fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

pub(super) struct Ctx<'a> {
    pub(super) path: &'a str,
    pub(super) lines: Lines,
    pub(super) errors: Vec<String>,
    pub(super) compile: Compile,
    pub(super) warnings: Vec<String>,
}

impl Ctx<'_> {
    pub(super) fn fail(&mut self, span: Option<Range<usize>>, field: &str, problem: &str) {
        let line = span.map(|s| self.lines.of(s.start));
        self.errors
            .push(format_error(self.path, line, field, problem));
    }
}

pub(super) fn format_error(path: &str, line: Option<usize>, field: &str, problem: &str) -> String {
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
pub(super) enum Kind {
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
pub(super) struct Fields<'a> {
    items: Vec<(&'a str, Range<usize>, &'a SVal)>,
}

impl<'a> Fields<'a> {
    pub(super) fn check(
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
    pub(super) fn get(&self, key: &str) -> Option<(Range<usize>, &'a SVal)> {
        self.items
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, s, v)| (s.clone(), *v))
    }
    pub(super) fn str(&self, key: &str) -> Option<(Range<usize>, &'a str)> {
        match self.get(key)? {
            (s, SVal::Str(v)) => Some((s, v)),
            _ => None,
        }
    }
    pub(super) fn int(&self, key: &str) -> Option<(Range<usize>, i64)> {
        match self.get(key)? {
            (s, SVal::Int(v)) => Some((s, *v)),
            _ => None,
        }
    }
    pub(super) fn bool(&self, key: &str) -> bool {
        matches!(self.get(key), Some((_, SVal::Bool(true))))
    }
    pub(super) fn list(&self, key: &str) -> Option<(Range<usize>, &'a [Spanned<SVal>])> {
        match self.get(key)? {
            (s, SVal::List(v)) => Some((s, v)),
            _ => None,
        }
    }
}

pub(super) fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 32
        && b.first().is_some_and(ok)
        && b.iter().all(|c| ok(c) || matches!(c, b'_' | b'.' | b'-'))
}

/// Signature strings stand for bytes: each code point 0-255 is one byte (TOML's \u00XX).
pub(super) fn text_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
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
