//! Facts about a parsed pattern: where an anchored one starts, which first bytes it can match
//! (the engine's gates), and how many long repeats it holds (its cost).

use super::{ByteSet, Look, Node, LONG_REPEAT, MAX_NEST};

/// The items after a leading `^`/`\A`, when the sequence starts with one.
pub(super) fn anchored(n: &Node) -> Option<&[Node]> {
    match n {
        Node::Concat(items) => match items.first() {
            Some(Node::Look(Look::Start)) => items.get(1..),
            _ => None,
        },
        Node::Look(Look::Start) => Some(&[]),
        _ => None,
    }
}

pub(super) fn any_byte(n: &Node) -> bool {
    match n {
        Node::Class { set } => *set == ByteSet::ALL,
        Node::Any => true,
        _ => false,
    }
}

/// (possible first bytes, whether the sequence can match empty); None when unbounded.
pub(super) fn first(items: &[Node], icase: bool, depth: usize) -> Option<(ByteSet, bool)> {
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

pub(super) fn long_repeats(n: &Node, depth: usize) -> usize {
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
