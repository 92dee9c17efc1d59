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

/// The items after a leading `^`/`\A`, when the sequence starts with one.
fn anchored(n: &Node) -> Option<&[Node]> {
    match n {
        Node::Concat(items) => match items.first() {
            Some(Node::Look(Look::Start)) => items.get(1..),
            _ => None,
        },
        Node::Look(Look::Start) => Some(&[]),
        _ => None,
    }
}

fn any_byte(n: &Node) -> bool {
    match n {
        Node::Class { set } => *set == ByteSet::ALL,
        Node::Any => true,
        _ => false,
    }
}

/// (possible first bytes, whether the sequence can match empty); None when unbounded.
fn first(items: &[Node], icase: bool, depth: usize) -> Option<(ByteSet, bool)> {
    if depth > MAX_NEST {
        return None;
    }
    let mut out = ByteSet::EMPTY;
    for item in items {
        let (set, nullable) = first_one(item, icase, depth + 1)?;
        out.union(&set);
        if !nullable {
            return Some((out, false));
        }
    }
    Some((out, true))
}

fn first_one(n: &Node, icase: bool, depth: usize) -> Option<(ByteSet, bool)> {
    let fold = |s: ByteSet| if icase { s.with_cases() } else { s };
    match n {
        Node::Empty | Node::Look(_) => Some((ByteSet::EMPTY, true)),
        Node::Byte(b) => {
            let mut s = ByteSet::EMPTY;
            s.insert(*b);
            Some((fold(s), false))
        }
        // The class is emitted from `set` (`emit_set`), negations and categories resolved: the
        // set is what the regex matches, folded as the crate folds it under ignore-case.
        Node::Class { set } => Some((fold(*set), false)),
        Node::Any => Some((ByteSet::ALL, false)),
        Node::Group { sub, flags, .. } => {
            let icase = match flags {
                Some((add, del)) => (icase || add.icase) && !del.icase,
                None => icase,
            };
            first_one(sub, icase, depth + 1)
        }
        Node::Concat(items) => first(items, icase, depth + 1),
        Node::Alt(alts) => {
            let mut out = ByteSet::EMPTY;
            let mut nullable = false;
            for a in alts {
                let (s, z) = first_one(a, icase, depth + 1)?;
                out.union(&s);
                nullable |= z;
            }
            Some((out, nullable))
        }
        Node::Repeat { sub, min, .. } => {
            // Unlike prefilter.py, a nullable body makes the repeat nullable: `(?:a?){2}b` may start with b.
            let (s, z) = first_one(sub, icase, depth + 1)?;
            Some((s, *min == 0 || z))
        }
    }
}

fn long_repeats(n: &Node, depth: usize) -> usize {
    if depth > MAX_NEST {
        return 0;
    }
    match n {
        Node::Group { sub, .. } => long_repeats(sub, depth + 1),
        Node::Concat(v) | Node::Alt(v) => v.iter().map(|x| long_repeats(x, depth + 1)).sum(),
        Node::Repeat { sub, min, max, .. } => {
            let long = match max {
                None => true,
                Some(max) => max != min && max - min > LONG_REPEAT,
            };
            usize::from(long) + long_repeats(sub, depth + 1)
        }
        _ => 0,
    }
}

fn push_byte(b: u8, out: &mut String) {
    if b.is_ascii_alphanumeric() || b == b'_' || b == b' ' {
        out.push(char::from(b));
    } else {
        out.push_str(&format!("\\x{b:02X}"));
    }
}

fn emit_set(set: &ByteSet, out: &mut String) {
    if set.is_empty() {
        out.push_str("[^\\x00-\\xFF]");
        return;
    }
    out.push('[');
    let mut b = 0usize;
    while b < 256 {
        if !set.contains(b as u8) {
            b += 1;
            continue;
        }
        let lo = b;
        while b + 1 < 256 && set.contains((b + 1) as u8) {
            b += 1;
        }
        out.push_str(&format!("\\x{lo:02X}"));
        if b > lo {
            out.push_str(&format!("-\\x{b:02X}"));
        }
        b += 1;
    }
    out.push(']');
}

fn emit(n: &Node, out: &mut String) {
    match n {
        Node::Empty => {}
        Node::Byte(b) => push_byte(*b, out),
        Node::Class { set } => emit_set(set, out),
        Node::Any => out.push_str("[\\x00-\\xFF]"),
        Node::Look(l) => out.push_str(match l {
            Look::Start => "\\A",
            Look::StartLine => "(?m:^)",
            // Python's `$`: the end, or just before a final newline. Rust has no look-ahead: the
            // newline is consumed, which differs only when the pattern goes on after `$`.
            Look::End => "(?:\\n?\\z)",
            Look::EndLine => "(?m:$)",
            Look::EndText => "\\z",
            Look::Word => "\\b",
            Look::NotWord => "\\B",
        }),
        Node::Group {
            sub,
            capture,
            flags: f,
        } => {
            match f {
                Some((add, del)) => {
                    out.push_str("(?");
                    if add.icase {
                        out.push('i');
                    }
                    if del.icase {
                        out.push_str("-i");
                    }
                    out.push(':');
                }
                None if *capture => out.push('('),
                None => out.push_str("(?:"),
            }
            emit(sub, out);
            out.push(')');
        }
        Node::Concat(items) => {
            for i in items {
                emit(i, out);
            }
        }
        Node::Alt(alts) => {
            out.push_str("(?:");
            for (k, a) in alts.iter().enumerate() {
                if k > 0 {
                    out.push('|');
                }
                emit(a, out);
            }
            out.push(')');
        }
        Node::Repeat {
            sub,
            min,
            max,
            lazy,
        } => {
            out.push_str("(?:");
            emit(sub, out);
            out.push(')');
            match max {
                Some(max) => out.push_str(&format!("{{{min},{max}}}")),
                None => out.push_str(&format!("{{{min},}}")),
            }
            if *lazy {
                out.push('?');
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    global: Flags,
}

fn err<T>(msg: impl Into<String>) -> Result<T, String> {
    Err(format!("invalid pattern: {}", msg.into()))
}

fn unsupported<T>(what: &str) -> Result<T, String> {
    Err(format!(
        "{what} is not supported (the Rust engine matches in linear time)"
    ))
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Global flags `(?i)` at the start (Python 3.11 refuses them elsewhere).
    fn leading_flags(&mut self) -> Result<(), String> {
        while self.s.get(self.i..self.i + 2) == Some(b"(?") {
            let mut j = self.i + 2;
            let mut f = self.global;
            while let Some(&c) = self.s.get(j) {
                if !set_flag(&mut f, c)? {
                    break;
                }
                j += 1;
            }
            if j == self.i + 2 || self.s.get(j) != Some(&b')') {
                return Ok(());
            }
            self.global = f;
            self.i = j + 1;
        }
        Ok(())
    }

    fn alt(&mut self, depth: usize, flags: Flags) -> Result<Node, String> {
        if depth > MAX_NEST {
            return err("too many nested groups");
        }
        let mut alts = vec![self.concat(depth, flags)?];
        while self.eat(b'|') {
            alts.push(self.concat(depth, flags)?);
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(alts)
        })
    }

    fn concat(&mut self, depth: usize, flags: Flags) -> Result<Node, String> {
        let mut items: Vec<Node> = Vec::new();
        while let Some(c) = self.peek() {
            if c == b'|' || c == b')' {
                break;
            }
            let start = self.i;
            match self.quantifier()? {
                Some(_) => return err(format!("nothing to repeat at position {start}")),
                None => self.i = start,
            }
            let atom = self.atom(depth, flags)?;
            let mut item = atom;
            let at = self.i;
            if let Some((min, max)) = self.quantifier()? {
                if matches!(item, Node::Look(_) | Node::Empty) {
                    return err(format!("nothing to repeat at position {at}"));
                }
                let lazy = self.eat(b'?');
                if !lazy && self.peek() == Some(b'+') {
                    return unsupported("a possessive repeat");
                }
                item = Node::Repeat {
                    sub: Box::new(item),
                    min,
                    max,
                    lazy,
                };
                let again = self.i;
                if self.quantifier()?.is_some() {
                    return err(format!("multiple repeat at position {again}"));
                }
                self.i = again;
            }
            items.push(item);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Node::Empty)
        } else {
            Node::Concat(items)
        })
    }

    /// A repeat operator at the cursor (consumed), or None (cursor unchanged); a `{` that is not
    /// a repeat is a literal, as in Python.
    fn quantifier(&mut self) -> Result<Option<(u32, Option<u32>)>, String> {
        match self.peek() {
            Some(b'*') => {
                self.i += 1;
                Ok(Some((0, None)))
            }
            Some(b'+') => {
                self.i += 1;
                Ok(Some((1, None)))
            }
            Some(b'?') => {
                self.i += 1;
                Ok(Some((0, Some(1))))
            }
            Some(b'{') => {
                let start = self.i;
                self.i += 1;
                if self.peek() == Some(b'}') {
                    self.i = start;
                    return Ok(None);
                }
                let lo = self.digits();
                let hi = if self.eat(b',') {
                    self.digits()
                } else {
                    lo.clone()
                };
                if !self.eat(b'}') {
                    self.i = start;
                    return Ok(None);
                }
                let min = count(&lo)?.unwrap_or(0);
                let max = count(&hi)?;
                if let Some(max) = max {
                    if max < min {
                        return err(format!(
                            "min repeat greater than max repeat at position {}",
                            start + 1
                        ));
                    }
                }
                Ok(Some((min, max)))
            }
            _ => Ok(None),
        }
    }

    fn digits(&mut self) -> Vec<u8> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or(&[]).to_vec()
    }

    fn atom(&mut self, depth: usize, flags: Flags) -> Result<Node, String> {
        let Some(c) = self.peek() else {
            return Ok(Node::Empty);
        };
        self.i += 1;
        match c {
            b'(' => self.group(depth, flags),
            b'[' => self.class(),
            b'.' => Ok(Node::Any), // DOTALL: any byte
            b'^' => Ok(Node::Look(if flags.multiline {
                Look::StartLine
            } else {
                Look::Start
            })),
            b'$' => Ok(Node::Look(if flags.multiline {
                Look::EndLine
            } else {
                Look::End
            })),
            b'\\' => self.escape(false).map(|e| match e {
                Esc::Byte(b) => Node::Byte(b),
                Esc::Set(set) => Node::Class { set },
                Esc::Look(l) => Node::Look(l),
            }),
            _ => Ok(Node::Byte(c)),
        }
    }

    fn group(&mut self, depth: usize, flags: Flags) -> Result<Node, String> {
        let mut capture = true;
        let mut scoped = None;
        let mut inner = flags;
        if self.eat(b'?') {
            match self.peek() {
                Some(b':') => {
                    self.i += 1;
                    capture = false;
                }
                Some(b'P') if self.peek_at(1) == Some(b'<') => {
                    self.i += 2;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                    {
                        self.i += 1;
                    }
                    if !self.eat(b'>') {
                        return err("bad character in group name");
                    }
                }
                Some(b'P') => return unsupported("a named back-reference (?P=...)"),
                Some(b'=') | Some(b'!') => return unsupported("look-ahead"),
                Some(b'<') => return unsupported("look-behind"),
                Some(b'>') => return unsupported("an atomic group"),
                Some(b'(') => return unsupported("a conditional group"),
                Some(b'#') => {
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        if c == b')' {
                            return Ok(Node::Empty);
                        }
                    }
                    return err("missing ), unterminated comment");
                }
                _ => {
                    let (mut add, mut del) = (Flags::default(), Flags::default());
                    while let Some(c) = self.peek() {
                        if !set_flag(&mut add, c)? {
                            break;
                        }
                        self.i += 1;
                    }
                    if self.eat(b'-') {
                        while let Some(c) = self.peek() {
                            if !set_flag(&mut del, c)? {
                                break;
                            }
                            self.i += 1;
                        }
                    }
                    if self.peek() == Some(b')') {
                        return err("global flags not at the start of the expression");
                    }
                    if !self.eat(b':') {
                        return err("unknown extension ?");
                    }
                    capture = false;
                    inner.icase = (inner.icase || add.icase) && !del.icase;
                    inner.multiline = (inner.multiline || add.multiline) && !del.multiline;
                    scoped = Some((add, del));
                }
            }
        }
        let sub = self.alt(depth + 1, inner)?;
        if !self.eat(b')') {
            return err("missing ), unterminated subpattern");
        }
        Ok(Node::Group {
            sub: Box::new(sub),
            capture,
            flags: scoped,
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let mut set = ByteSet::EMPTY;
        let negate = self.eat(b'^');
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return err("unterminated character set");
            };
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            self.i += 1;
            let lo = if c == b'\\' {
                self.escape(true)?
            } else {
                Esc::Byte(c)
            };
            let lo = match lo {
                Esc::Byte(b) => b,
                Esc::Set(s) => {
                    set.union(&s);
                    continue;
                }
                Esc::Look(_) => return err("bad escape in character set"),
            };
            if self.peek() == Some(b'-') && self.peek_at(1).is_some_and(|n| n != b']') {
                self.i += 1;
                let Some(h) = self.peek() else {
                    return err("unterminated character set");
                };
                self.i += 1;
                let hi = match if h == b'\\' {
                    self.escape(true)?
                } else {
                    Esc::Byte(h)
                } {
                    Esc::Byte(b) => b,
                    _ => return err("bad character range"),
                };
                if hi < lo {
                    return err("bad character range");
                }
                set.range(lo, hi);
            } else {
                set.insert(lo);
            }
        }
        Ok(Node::Class {
            set: if negate { set.negate() } else { set },
        })
    }

    /// After a backslash.
    fn escape(&mut self, in_class: bool) -> Result<Esc, String> {
        let Some(c) = self.peek() else {
            return err("bad escape (end of pattern)");
        };
        self.i += 1;
        let digit = ByteSet::from_ranges(&[(b'0', b'9')]);
        let space = ByteSet::from_ranges(&[(b'\t', b'\r'), (b' ', b' ')]);
        let word = ByteSet::from_ranges(&[(b'0', b'9'), (b'A', b'Z'), (b'_', b'_'), (b'a', b'z')]);
        Ok(match c {
            b'x' => {
                let h = self
                    .s
                    .get(self.i..self.i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        self.i += 2;
                        Esc::Byte(b)
                    }
                    None => return err("incomplete escape \\x"),
                }
            }
            b'a' => Esc::Byte(7),
            b'f' => Esc::Byte(12),
            b'n' => Esc::Byte(b'\n'),
            b'r' => Esc::Byte(b'\r'),
            b't' => Esc::Byte(b'\t'),
            b'v' => Esc::Byte(11),
            b'b' if in_class => Esc::Byte(8),
            b'd' => Esc::Set(digit),
            b'D' => Esc::Set(digit.negate()),
            b's' => Esc::Set(space),
            b'S' => Esc::Set(space.negate()),
            b'w' => Esc::Set(word),
            b'W' => Esc::Set(word.negate()),
            b'A' | b'Z' | b'b' | b'B' if in_class => {
                return err(format!("bad escape \\{}", char::from(c)))
            }
            b'A' => Esc::Look(Look::Start),
            b'Z' => Esc::Look(Look::EndText),
            b'b' => Esc::Look(Look::Word),
            b'B' => Esc::Look(Look::NotWord),
            b'0'..=b'9' => {
                // Octal (\0, \0NN, \NNN up to \377) or a group reference.
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                let three = c <= b'3'
                    && self.peek().is_some_and(|d| (b'0'..=b'7').contains(&d))
                    && self.peek_at(1).is_some_and(|d| (b'0'..=b'7').contains(&d));
                if c == b'0' || three {
                    while n < 3 && self.peek().is_some_and(|d| (b'0'..=b'7').contains(&d)) {
                        v = v * 8 + u32::from(self.peek().unwrap_or(b'0') - b'0');
                        self.i += 1;
                        n += 1;
                    }
                    match u8::try_from(v) {
                        Ok(b) => Esc::Byte(b),
                        Err(_) => return err("octal escape value outside of range 0-0o377"),
                    }
                } else if in_class {
                    return err(format!("bad escape \\{}", char::from(c)));
                } else {
                    return unsupported("a back-reference");
                }
            }
            c if c.is_ascii_alphabetic() => return err(format!("bad escape \\{}", char::from(c))),
            c => Esc::Byte(c),
        })
    }
}

impl ByteSet {
    fn from_ranges(r: &[(u8, u8)]) -> ByteSet {
        let mut s = ByteSet::EMPTY;
        for (lo, hi) in r {
            s.range(*lo, *hi);
        }
        s
    }
}

enum Esc {
    Byte(u8),
    Set(ByteSet),
    Look(Look),
}

fn count(digits: &[u8]) -> Result<Option<u32>, String> {
    if digits.is_empty() {
        return Ok(None);
    }
    let v: u64 = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(u64::MAX);
    if v > MAX_COUNT {
        return err("the repetition number is too large");
    }
    u32::try_from(v)
        .map(Some)
        .map_err(|_| "invalid pattern: the repetition number is too large".into())
}

/// Apply one inline flag letter; false when `c` is not a flag.
fn set_flag(f: &mut Flags, c: u8) -> Result<bool, String> {
    match c {
        b'i' => f.icase = true,
        b'm' => f.multiline = true,
        b's' => f.dotall = true,
        b'a' => {} // bytes patterns are ASCII already
        b'x' => return unsupported("verbose mode (?x)"),
        b'L' => return unsupported("locale mode (?L)"),
        b'u' => return err("bad inline flags: cannot use 'u' flag with a bytes pattern"),
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::new(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn opening_read_from_the_anchored_tree() {
        let tls = p(r"^\x16\x03[\x00-\x04]");
        assert_eq!(
            tls.opening.first.map(|f| f.bytes().collect::<Vec<_>>()),
            Some(vec![0x16])
        );
        assert!(!tls.search(b"\x17\x03\x03", 99));
        assert!(tls.search(b"\x16\x03\x01", 99));
        let length_first = p(r"\A..\x05");
        assert!(length_first.opening.first.is_none());
        let at = length_first
            .opening
            .at
            .map(|(i, f)| (i, f.bytes().collect::<Vec<_>>()));
        assert_eq!(at, Some((2, vec![5])));
        assert!(
            !length_first.search(b"ab", 99),
            "too short for the byte after the field"
        );
        assert!(length_first.search(b"ab\x05", 99));
        // Unanchored, multiline or able to match nothing: no condition, the regex decides.
        for s in [r"foo", r"(?m)^foo", r"^(?:foo)?bar|^", r"^x*"] {
            let q = p(s);
            assert!(q.opening.first.is_none() && q.opening.at.is_none(), "{s}");
        }
        let optional_first = p(r"^x*y");
        let first = optional_first
            .opening
            .first
            .map(|f| f.bytes().collect::<Vec<_>>());
        assert_eq!(first, Some(vec![b'x', b'y']));
        assert!(optional_first.search(b"y", 99));
        assert!(p(r"(?i)^get").search(b"GeT", 99));
    }

    /// The condition spares the regex, never changes its answer: every built-in pattern, on
    /// units that vary their first bytes over all 256 values ahead of tails of many protocols.
    #[test]
    fn opening_never_changes_an_answer() {
        let sigs = crate::detect::signature::load_builtin_and(&[]).expect("built-in signatures");
        let mut patterns: Vec<(&Pattern, usize)> = Vec::new();
        for s in &sigs {
            for m in &s.matches {
                if let Some(r) = &m.regex {
                    patterns.push((r, m.depth));
                }
            }
        }
        assert!(patterns.len() > 100, "{}", patterns.len());
        let conditioned = patterns
            .iter()
            .filter(|(r, _)| r.opening.first.is_some() || r.opening.at.is_some())
            .count();
        assert!(conditioned * 2 > patterns.len(), "{conditioned}");
        let tails: [&[u8]; 9] = [
            b"",
            b"ET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"20 mail.example ESMTP ready\r\n",
            b"SH-2.0-OpenSSH_9.6\r\n",
            b"\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"\x00\x00\x00\x10\x04\xd2\x16\x2f\x00\x00",
            b"OK Dovecot ready.\r\n",
            b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00",
            b"\x81\x00\x00\x00\x00\x00\x00\x00\x00",
        ];
        let mut units: Vec<Vec<u8>> = Vec::new();
        for tail in tails {
            for b in 0..=255u8 {
                let mut u = vec![b];
                u.extend_from_slice(tail);
                units.push(u);
                // The byte after a fixed-size opening (a length field) varied as well.
                for at in 1..6 {
                    if at < tail.len() {
                        let mut v = vec![tail.first().copied().unwrap_or(0)];
                        v.extend_from_slice(tail);
                        if let Some(x) = v.get_mut(at) {
                            *x = b;
                        }
                        units.push(v);
                    }
                }
            }
        }
        let mut matched = 0;
        for (r, depth) in &patterns {
            for u in &units {
                let plain = r
                    .regex()
                    .expect("compiles")
                    .is_match(u.get(..(*depth).min(u.len())).unwrap_or(u));
                assert_eq!(r.search(u, *depth), plain, "{} on {u:?}", r.translated);
                matched += usize::from(plain);
            }
        }
        assert!(matched > 0);
    }

    /// Every pattern of the built-in set, which the engine compiles only when a capture first
    /// asks for it (`Pattern::deferred`), compiles, and the group count read from its tree is the
    /// crate's.
    #[test]
    fn every_built_in_pattern_compiles_and_counts_its_groups() {
        let sigs = crate::detect::signature::load_builtin_and(&[]).expect("built-in signatures");
        let mut patterns: Vec<&Pattern> = Vec::new();
        for s in &sigs {
            patterns.extend(s.matches.iter().filter_map(|m| m.regex.as_ref()));
            patterns.extend(s.head_stop.as_ref());
            if let Some(c) = &s.conversation {
                patterns.extend(
                    [&c.greeting, &c.helo, &c.login, &c.anonymous]
                        .into_iter()
                        .flatten(),
                );
                patterns.extend(c.starttls.iter().flat_map(|(a, b)| [a, b]));
            }
        }
        assert!(patterns.len() > 100, "{}", patterns.len());
        assert!(
            patterns.iter().all(|p| p.regex.get().is_none()),
            "compiled while loading"
        );
        for p in patterns {
            let compiled = Pattern::new(&p.source).expect("compiles");
            let regex = p.regex().expect("compiles when asked");
            assert_eq!(p.captures_len(), regex.captures_len(), "{}", p.translated);
            assert_eq!(compiled.captures_len(), regex.captures_len());
        }
    }

    #[test]
    fn groups_are_counted_as_the_crate_counts_them() {
        for (src, want) in [
            (r"abc", 1),
            (r"(a)(?:b)(c)", 3),
            (r"((a|b)+)?x", 3),
            (r"(?i:ab)(c)", 2),
            (r"(?P<name>a)|(b)", 3),
            (r"[()]\(", 1),
        ] {
            let p = Pattern::new(src.as_bytes()).unwrap();
            assert_eq!(p.captures_len(), want, "{src}");
            assert_eq!(p.regex().unwrap().captures_len(), want, "{src}");
        }
    }

    #[test]
    fn a_deferred_pattern_is_compiled_once_for_its_clones() {
        let p = Pattern::deferred(b"^ab").unwrap();
        let clone = p.clone();
        assert!(p.regex.get().is_none());
        assert!(clone.search(b"abc", 9));
        assert!(p.regex.get().is_some_and(|r| r.is_some()));
    }

    /// A deferred pattern the crate refuses (beyond its size bound) matches nothing; `new`
    /// reports it.
    #[test]
    fn a_deferred_pattern_the_crate_refuses_matches_nothing() {
        let huge = b"(?:a{1000}){1000}";
        assert!(Pattern::new(huge).is_err());
        let p = Pattern::deferred(huge).expect("parses");
        assert!(p.regex().is_none());
        assert!(!p.search(&[b'a'; 2000], 4096));
    }

    #[test]
    fn python_meanings_kept() {
        assert!(p(r"ab\Z").search(b"xab", 99));
        assert!(!p(r"ab\Z").search(b"xab\n", 99));
        assert!(p(r"ab$").search(b"xab\n", 99));
        assert!(!p(r"ab$").search(b"xab\nc", 99));
        assert!(p(r"(?m)ab$").search(b"xab\nc", 99));
        assert!(p(r"^a{,2}b").search(b"aab", 99));
        assert!(p(r"^a{b").search(b"a{b", 99));
        assert!(p(r"^[[]").search(b"[", 99));
        assert!(p(r"^[&&]").search(b"&", 99));
        assert!(Pattern::new(b"^\xe9").is_ok_and(|p| p.search(b"\xe9", 9)));
        assert!(p(r"^\0\012").search(b"\x00\n", 99));
        assert!(p(r"(?i)^abc").search(b"ABC", 99));
        assert!(!p(r"(?i)^\xe9").search(b"\xc9", 99));
        assert!(p(r"^.b").search(b"\nb", 99));
        assert!(p(r"\bfoo\b").search(b"a foo.", 99));
        assert!(!p(r"^abc").search(b"abc", 2), "only the first depth bytes");
    }

    #[test]
    fn refuses_what_rust_cannot_run() {
        for s in [r"(?=a)", r"(?<=a)b", r"(a)\1", r"a++", r"(?x)a", r"(?P=n)"] {
            assert!(Pattern::new(s.as_bytes()).is_err(), "{s}");
        }
        for s in [
            r"*a",
            r"a**",
            r"(a",
            r"[a",
            r"\q",
            r"a{3,2}",
            r"a{99999999999}",
            r"^*",
        ] {
            assert!(Pattern::new(s.as_bytes()).is_err(), "{s}");
        }
        let deep = "(".repeat(500) + &")".repeat(500);
        assert!(Pattern::new(deep.as_bytes()).is_err());
    }

    #[test]
    fn first_bytes_and_byte_at() {
        let set = |s: &str| p(s).first_bytes().map(|b| b.bytes().collect::<Vec<_>>());
        assert_eq!(set(r"^SSH-"), Some(vec![b'S']));
        assert_eq!(set(r"(?i)^ab"), Some(vec![b'A', b'a']));
        assert_eq!(set(r"^[\x01\x02]|^\x05"), Some(vec![1, 2, 5]));
        assert_eq!(set(r"^(?:a?)?b"), Some(vec![b'a', b'b']));
        assert_eq!(set(r"SSH-"), None);
        assert_eq!(set(r"^.a"), None, "any byte first");
        // Categories and negations are resolved into the set the regex is given.
        assert_eq!(set(r"^\d"), Some((b'0'..=b'9').collect()));
        assert_eq!(set(r"^\s{0,2}<"), Some(vec![9, 10, 11, 12, 13, b' ', b'<']));
        assert_eq!(set(r"^[^\x00-\xfd]"), Some(vec![0xfe, 0xff]));
        let at = p(r"^[\x00-\xff]{2}\x00\x01").byte_at().unwrap();
        assert_eq!((at.0, at.1.bytes().collect::<Vec<_>>()), (2, vec![0]));
    }

    #[test]
    fn expense() {
        assert!(p(r".*a.*b.*c").expense().is_some());
        assert!(p(r"^SSH-").expense().is_none());
    }
}
