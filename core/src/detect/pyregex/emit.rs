//! A parsed pattern written back in the Rust crate's syntax, every byte explicit, so that the
//! two dialects' differences keep Python's meaning.

use super::{ByteSet, Look, Node};

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

pub(super) fn emit(n: &Node, out: &mut String) {
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
