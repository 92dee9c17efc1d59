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
