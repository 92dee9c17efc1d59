//! Signature patterns are Python bytes regexes (DOTALL); the engine runs them with `regex::bytes`.
//!
//! The pattern is parsed here into a small tree, which (1) is written back out in the Rust
//! crate's syntax with every byte explicit, so that the few places where the two dialects differ
//! (`\Z`, `$`, `{,n}`, a `{` that is not a repeat, `[[`, `&&` in classes, raw bytes >= 0x80) keep
//! Python's meaning, (2) tells which first bytes an anchored pattern can match (the engine's
//! gates), and (3) tells when a pattern is costly.
//! Constructs the Rust crate cannot run (look-around, back-references, possessive repeats,
//! conditionals) are refused with a message. The `regex` crate matches in linear time, so
//! the backtracking guards a Python `re` loader needs become bounds on the compiled size.
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};

use analysis::{anchored, any_byte, first, long_repeats};
use emit::emit;
use parse::Parser;
use regex::bytes::{Regex, RegexBuilder};

/// Bound on the compiled program (the crate's default is 10 MiB): a signature pattern that needs
/// more is refused; one that needs more than a quarter of it is reported as expensive.
pub const SIZE_LIMIT: usize = 2 << 20;
pub const DFA_SIZE_LIMIT: usize = 4 << 20;
/// Longer patterns are refused, as the Python loader did.
pub const MAX_PATTERN: usize = 1024;
/// Groups nested deeper than this are refused (the parser recurses once per level).
const MAX_NEST: usize = 64;
/// A variable repeat whose range exceeds this counts as long (for the `expensive` warning).
const LONG_REPEAT: u32 = 64;
const MAX_LONG_REPEATS: usize = 2;
/// Python's largest repeat count (sre MAXREPEAT - 1).
const MAX_COUNT: u64 = 4_294_967_294;

/// A set of bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ByteSet(pub [u64; 4]);

impl ByteSet {
    pub const EMPTY: ByteSet = ByteSet([0; 4]);
    pub const ALL: ByteSet = ByteSet([u64::MAX; 4]);
    pub fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }
    pub fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
    pub fn range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.insert(b);
        }
    }
    pub fn union(&mut self, o: &ByteSet) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a |= b;
        }
    }
    pub fn negate(&self) -> ByteSet {
        ByteSet(self.0.map(|w| !w))
    }
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|b| self.contains(*b))
    }
    /// Python's ignore-case for bytes patterns: ASCII letters only.
    fn with_cases(mut self) -> ByteSet {
        for b in b'a'..=b'z' {
            if self.contains(b) || self.contains(b.to_ascii_uppercase()) {
                self.insert(b);
                self.insert(b.to_ascii_uppercase());
            }
        }
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    Start,     // ^ without MULTILINE, \A
    StartLine, // ^ with MULTILINE
    End,       // $ without MULTILINE: the end, or before a final \n
    EndLine,   // $ with MULTILINE
    EndText,   // \Z
    Word,
    NotWord,
}

#[derive(Clone, Debug)]
enum Node {
    Empty,
    Byte(u8),
    /// The bytes the class matches, negation and categories resolved (`emit_set` writes them).
    Class {
        set: ByteSet,
    },
    Any,
    Look(Look),
    Group {
        sub: Box<Node>,
        capture: bool,
        /// Scoped flags as written (`i`, `-i`, `m`...): Rust takes them as they are.
        flags: Option<(Flags, Flags)>,
    },
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        sub: Box<Node>,
        min: u32,
        max: Option<u32>,
        lazy: bool,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Flags {
    icase: bool,
    multiline: bool,
    dotall: bool,
}

/// A parsed and compiled signature pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The pattern as written (one char per byte), shown in evidence.
    pub source: Vec<u8>,
    /// What the Rust crate compiles.
    pub translated: String,
    /// Compiled by `new`, or at the first use (`deferred`): ~85% of building the engine is
    /// compiling the built-in set's patterns, most of which a capture never asks for. Shared by
    /// the pattern's clones (an engine with port hints shares its signatures' patterns).
    regex: Arc<OnceLock<Option<Regex>>>,
    root: Node,
    global: Flags,
    /// What a unit must hold for the pattern to match, checked before the regex runs: most
    /// units scored against a pattern fail it at their first byte, and a byte test is cheaper
    /// than the regex crate's search set-up.
    opening: Opening,
}

/// Necessary conditions on a unit's leading bytes, from an anchored pattern's tree.
#[derive(Clone, Debug, Default)]
struct Opening {
    /// The unit's first byte is one of these (`first_bytes`).
    first: Option<ByteSet>,
    /// The byte after a fixed-size opening of arbitrary bytes is one of these (`byte_at`).
    at: Option<(usize, ByteSet)>,
}

impl Opening {
    fn admits(&self, unit: &[u8]) -> bool {
        let first_ok = self
            .first
            .as_ref()
            .is_none_or(|f| unit.first().is_some_and(|b| f.contains(*b)));
        first_ok
            && self
                .at
                .as_ref()
                .is_none_or(|(i, f)| unit.get(*i).is_some_and(|b| f.contains(*b)))
    }
}

impl Pattern {
    /// Parse, translate and compile; `Err` carries the problem.
    pub fn new(source: &[u8]) -> Result<Pattern, String> {
        let p = Self::deferred(source)?;
        let regex = compile(&p.translated, SIZE_LIMIT)
            .map_err(|e| format!("invalid pattern: {}", e.lines().last().unwrap_or("")))?;
        let _ = p.regex.set(Some(regex));
        Ok(p)
    }

    /// Parse and translate; compiled at its first use (`regex`). Only for patterns known to
    /// compile, the set built into the core (a test compiles every one of them): a pattern the
    /// crate then refused would match nothing (`regex` None) instead of being reported.
    pub fn deferred(source: &[u8]) -> Result<Pattern, String> {
        if source.len() > MAX_PATTERN {
            return Err(format!("pattern longer than {MAX_PATTERN} characters"));
        }
        let mut p = Parser {
            s: source,
            i: 0,
            global: Flags::default(),
        };
        p.leading_flags()?;
        let root = p.alt(0, p.global)?;
        if p.i < source.len() {
            return Err(format!(
                "invalid pattern: unbalanced parenthesis at position {}",
                p.i
            ));
        }
        let global = p.global;
        let mut translated = String::from(if global.icase { "(?is-u)" } else { "(?s-u)" });
        emit(&root, &mut translated);
        let mut p = Pattern {
            source: source.to_vec(),
            translated,
            regex: Arc::default(),
            root,
            global,
            opening: Opening::default(),
        };
        p.opening = Opening {
            first: p.first_bytes().filter(|f| f.len() < 256),
            at: p.byte_at(),
        };
        Ok(p)
    }

    /// The compiled pattern (compiled now if it was `deferred`); None only for a deferred
    /// pattern the crate refused.
    pub fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| compile(&self.translated, SIZE_LIMIT).ok())
            .as_ref()
    }

    /// Capture groups, the whole match counted (`Regex::captures_len`), from the pattern's
    /// tree: asked while loading, before anything is compiled.
    pub fn captures_len(&self) -> usize {
        1 + groups(&self.root)
    }

    /// Python's `rx.search(unit, 0, depth) is not None`.
    pub fn search(&self, unit: &[u8], depth: usize) -> bool {
        let unit = unit.get(..depth.min(unit.len())).unwrap_or(unit);
        self.opening.admits(unit) && self.regex().is_some_and(|r| r.is_match(unit))
    }

    /// Why the pattern is costly to run, if it is: near the size bound, or many long variable
    /// repeats (`.*.*.*x`: linear here, but they defeat the lazy DFA's cache).
    pub fn expense(&self) -> Option<String> {
        if compile(&self.translated, SIZE_LIMIT / 4).is_err() {
            return Some(format!(
                "expensive: compiles to more than {} KiB",
                SIZE_LIMIT / 4 / 1024
            ));
        }
        let n = long_repeats(&self.root, 0);
        (n > MAX_LONG_REPEATS)
            .then(|| format!("expensive: {n} long variable repeats (like .*.*.*x)"))
    }

    /// The bytes a unit must start with for the pattern to match (an anchored pattern), or None
    /// when any byte may (prefilter.regex_first_bytes).
    pub fn first_bytes(&self) -> Option<ByteSet> {
        if self.global.multiline {
            return None;
        }
        let alts: Vec<&Node> = match &self.root {
            Node::Alt(alts) => alts.iter().collect(),
            n => vec![n],
        };
        let mut out = ByteSet::EMPTY;
        for alt in alts {
            let items = anchored(alt)?;
            let (first, nullable) = first(items, self.global.icase, 0)?;
            if nullable {
                return None;
            }
            out.union(&first);
        }
        // Every byte tells nothing (a length field first: `byte_at` looks further).
        (out.len() < 256).then_some(out)
    }

    /// For an anchored pattern opening with a fixed number of arbitrary bytes (a length field),
    /// the offset after them and the bytes the unit must hold there (prefilter.regex_byte_at).
    pub fn byte_at(&self) -> Option<(usize, ByteSet)> {
        if self.global.multiline {
            return None;
        }
        let items = anchored(&self.root)?;
        let mut offset = 0usize;
        for (i, item) in items.iter().enumerate() {
            match item {
                Node::Repeat {
                    sub,
                    min,
                    max: Some(max),
                    ..
                } if min == max && any_byte(sub) => {
                    offset = offset.saturating_add(*min as usize);
                    continue;
                }
                n if any_byte(n) => {
                    offset += 1;
                    continue;
                }
                _ => {}
            }
            if offset == 0 {
                return None;
            }
            let (set, nullable) = first(items.get(i..).unwrap_or(&[]), self.global.icase, 0)?;
            return (!nullable).then_some((offset, set));
        }
        None
    }
}

fn compile(pattern: &str, size: usize) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(size)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .nest_limit(MAX_NEST as u32 * 2)
        .build()
        .map_err(|e| e.to_string())
}

/// Capturing groups in `n` (a scoped-flags group captures nothing: `emit` writes `(?i:...)`).
/// Recursion bounded by the parser's nesting limit (`MAX_NEST`).
fn groups(n: &Node) -> usize {
    match n {
        Node::Group {
            sub,
            capture,
            flags,
        } => usize::from(*capture && flags.is_none()) + groups(sub),
        Node::Concat(items) | Node::Alt(items) => items.iter().map(groups).sum(),
        Node::Repeat { sub, .. } => groups(sub),
        Node::Empty | Node::Byte(_) | Node::Class { .. } | Node::Any | Node::Look(_) => 0,
    }
}

mod analysis;
mod emit;
mod parse;

#[cfg(test)]
mod tests;
