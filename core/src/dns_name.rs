//! A DNS query name split the way the DNS-tunnel policy reads it (`name_shape` in
//! portwatch/policy/dnstunnel.py, which reads one for every DNS record): the registered domain,
//! the characters in front of it, and the longest of the labels they come from.
//!
//! Names come in presentation form (the DNS probe's `dns_query`: a byte past printable ASCII,
//! and a "." or "\" inside a label, written as an escape), so this works on ASCII text. A name
//! with other characters (a record read back from JSON) is the policy's to split: its
//! lowercase and its escaped digits follow Python's Unicode rules.
#![forbid(unsafe_code)]

/// What `split_name` found.
#[derive(Debug, PartialEq, Eq)]
pub struct NameParts {
    /// The registered domain (its last two labels, or three under a country's second level
    /// such as co.uk), lowercase, joined by dots.
    pub domain: String,
    /// The labels in front of the registered domain, lowercase, concatenated, each escape as
    /// one character "x".
    pub data: String,
    /// The length of the longest of those labels, an escape counting one.
    pub longest_label: usize,
}

/// `name` (ASCII) split into its registered domain and the data in front of it; None when it
/// has fewer than two non-empty labels. `second_level(label)`: whether a country registers
/// names under `label` (co, com, ...), asked of the next-to-last label when the last is two
/// characters long. Empty labels (a trailing dot, "a..b") are dropped.
pub fn split_name(name: &str, second_level: impl Fn(&str) -> bool) -> Option<NameParts> {
    let lower = name.to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').filter(|l| !l.is_empty()).collect();
    let count = labels.len();
    if count < 2 {
        return None;
    }
    let registered =
        if count >= 3 && labels[count - 1].len() == 2 && second_level(labels[count - 2]) {
            3
        } else {
            2
        };
    let split = count - registered;
    let mut data = String::with_capacity(labels[..split].iter().map(|l| l.len()).sum());
    let mut longest_label = 0;
    for label in &labels[..split] {
        longest_label = longest_label.max(push_unescaped(label, &mut data));
    }
    Some(NameParts {
        domain: labels[split..].join("."),
        data,
        longest_label,
    })
}

/// `label` onto `out` with each escape as "x" (the policy's `\\(\d{3}|.)`: a backslash and
/// three digits, else a backslash and one character other than a newline; a backslash with
/// neither after it stays); returns the characters written.
fn push_unescaped(label: &str, out: &mut String) -> usize {
    let bytes = label.as_bytes();
    let mut written = 0;
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        let step = if b != b'\\' {
            1
        } else if bytes.len() - at > 3 && bytes[at + 1..at + 4].iter().all(u8::is_ascii_digit) {
            4
        } else if bytes.get(at + 1).is_some_and(|&c| c != b'\n') {
            2
        } else {
            1
        };
        if step == 1 {
            out.push(char::from(b));
        } else {
            out.push('x');
        }
        written += 1;
        at += step;
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sld(label: &str) -> bool {
        ["co", "com", "net", "org"].contains(&label)
    }

    /// A name and its split: (domain, data, longest data label), or None.
    type Case<'a> = (&'a str, Option<(&'a str, &'a str, usize)>);

    fn check(cases: &[Case<'_>]) {
        for &(name, want) in cases {
            let want = want.map(|(domain, data, longest_label)| NameParts {
                domain: domain.into(),
                data: data.into(),
                longest_label,
            });
            assert_eq!(split_name(name, sld), want, "{name:?}");
        }
    }

    #[test]
    fn the_registered_domain_is_the_last_two_labels_or_three_under_a_second_level() {
        check(&[
            ("WWW.Example.COM.", Some(("example.com", "www", 3))),
            ("a.bb.example.co.uk", Some(("example.co.uk", "abb", 2))),
            // Two letters at the end but no second level before them: a plain domain.
            ("a.example.de", Some(("example.de", "a", 1))),
            // Three characters at the end: no second level asked.
            ("x.co.uk2", Some(("co.uk2", "x", 1))),
            ("co.uk", Some(("co.uk", "", 0))),
        ]);
    }

    #[test]
    fn fewer_than_two_labels_is_no_name() {
        check(&[
            ("", None),
            (".", None),
            ("com", None),
            ("com.", None),
            ("..com..", None),
            ("\\.", None),
        ]);
    }

    #[test]
    fn empty_labels_are_dropped() {
        check(&[("A..Bc.example.co.uk.", Some(("example.co.uk", "abc", 2)))]);
    }

    #[test]
    fn an_escape_is_one_character_of_data() {
        check(&[
            (
                "a\\000b\\255.cd.example.com.",
                Some(("example.com", "axbxcd", 4)),
            ),
            // A backslash and a non-digit; three digits only when all three are.
            ("\\a\\12z.example.com", Some(("example.com", "xx2z", 4))),
            // A backslash at a label's end (its "." split off) or before a newline stays.
            ("a\\.b.example.com", Some(("example.com", "a\\b", 2))),
            ("a\\\nb.example.com", Some(("example.com", "a\\\nb", 4))),
            // Escapes in the registered domain are left as written.
            ("\\065.com", Some(("\\065.com", "", 0))),
        ]);
    }
}
