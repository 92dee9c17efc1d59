//! Python's bytes-regex syntax into the pattern tree, refusing what the Rust crate cannot run.

use super::{ByteSet, Flags, Look, Node, MAX_COUNT, MAX_NEST};

pub(super) struct Parser<'a> {
    pub(super) s: &'a [u8],
    pub(super) i: usize,
    pub(super) global: Flags,
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
    pub(super) fn leading_flags(&mut self) -> Result<(), String> {
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

    pub(super) fn alt(&mut self, depth: usize, flags: Flags) -> Result<Node, String> {
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
