use super::*;
use crate::detect::signature::parse;

fn sig(text: &str) -> Signature {
    parse(text, "t.toml", "builtin")
        .0
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// The tests below that name `fake_ping`/`fake_seq` run where those stand-in probes are
/// registered (the scratch crate); in the core, the replay of the Python engine's answers on
/// real captures (tests/engine_parity.rs) covers the same paths with the real probes.
fn fakes() -> bool {
    probes::lookup("fake_ping").is_some()
}

fn engine(texts: &[&str]) -> Engine {
    let mut sigs: Vec<Signature> = texts.iter().map(|t| sig(t)).collect();
    sigs.sort_by(|a, b| a.protocol.cmp(&b.protocol));
    Engine::new(sigs, HashMap::new())
}

const PING: &str = "protocol = \"ping\"\nports = [7000]\n[[match]]\ndirection = \"client\"\nprobe = \"fake_ping\"\n[[match]]\ndirection = \"server\"\nprefix = \"PONG\"\n";
const PONGISH: &str =
    "protocol = \"pongish\"\n[[match]]\ndirection = \"server\"\nregex = '^PO'\nconfidence = 0.6\n";
const STUNNY: &str = "protocol = \"stunny\"\ntransports = [\"udp\"]\nprelude = true\n[[match]]\nprefix_hex = \"0001\"\nconfidence = 0.9\n";
const SEQ: &str = "protocol = \"seq\"\ntransports = [\"udp\"]\nany_port = true\n[[match]]\nregex = '^\\x80'\nprobe = \"fake_seq\"\n";

#[test]
fn scores_both_sides_and_merges_probe_meta() {
    if !fakes() {
        return;
    }
    let e = engine(&[PING, PONGISH]);
    let d = e
        .classify(
            Transport::Tcp,
            &[b"PING 1\n"],
            &[b"PONG"],
            7000,
            false,
            false,
            None,
        )
        .ok()
        .unwrap();
    assert_eq!(&*d.protocol, "ping");
    assert!((d.confidence - (1.0 - 0.05 * 0.2)).abs() < 1e-12);
    assert_eq!(d.meta["ping"], "1");
    assert_eq!(d.done, 1);
    assert_eq!(
        &*d.evidence,
        "client bytes confirmed by the fake_ping probe; server bytes start with 'PONG'"
    );
    let (meta, done, _) = e.extract(d.sig.unwrap(), Transport::Tcp, &[b"PING 2"], &[]);
    assert_eq!((meta["ping"].as_str(), done), (Some("2"), false));
}

#[test]
fn weak_evidence_waits_then_falls_back() {
    if !fakes() {
        return;
    }
    let e = engine(&[PING, PONGISH]);
    assert!(e
        .classify(Transport::Tcp, &[], &[b"POX"], 80, false, false, None)
        .ok()
        .is_none());
    let d = e
        .classify(Transport::Tcp, &[], &[b"POX"], 80, false, true, None)
        .ok()
        .unwrap();
    assert_eq!(&*d.protocol, "pongish", "down to FALLBACK at the end");
    let weak = "protocol = \"weak\"\n[[match]]\nprefix = \"W\"\nconfidence = 0.2\n";
    let d = engine(&[weak])
        .classify(Transport::Tcp, &[b"W"], &[], 80, false, true, None)
        .ok()
        .unwrap();
    assert_eq!(
        (&*d.protocol, &*d.evidence),
        ("unknown", "only weak evidence for weak (0.20)")
    );
    let d = e
        .classify(Transport::Tcp, &[], &[b"xx"], 80, false, true, None)
        .ok()
        .unwrap();
    assert_eq!(&*d.evidence, "no signature matched");
}

#[test]
fn swaps_roles_when_allowed() {
    if !fakes() {
        return;
    }
    let e = engine(&[PING, PONGISH]);
    let d = e
        .classify(
            Transport::Tcp,
            &[b"PONG"],
            &[b"PING 1"],
            7000,
            true,
            false,
            None,
        )
        .ok()
        .unwrap();
    assert!(d.swapped);
    assert_eq!(&*d.protocol, "ping");
}

#[test]
fn prelude_waits_and_gives_way() {
    if !fakes() {
        return;
    }
    let e = engine(&[STUNNY, SEQ]);
    assert!(e
        .classify(
            Transport::Udp,
            &[b"\x00\x01xx"],
            &[],
            3478,
            false,
            false,
            None
        )
        .ok()
        .is_none());
    let d = e
        .classify(
            Transport::Udp,
            &[b"\x00\x01xx"],
            &[],
            3478,
            false,
            true,
            None,
        )
        .ok()
        .unwrap();
    assert_eq!(&*d.protocol, "stunny");
    // The units probe sees all units, and one does not start with 0x80: the prelude is alone.
    let d = e
        .classify(
            Transport::Udp,
            &[b"\x00\x01xx", b"\x80a", b"\x80b"],
            &[],
            3478,
            false,
            false,
            None,
        )
        .ok();
    assert!(d.is_none());
    let d = e
        .classify(
            Transport::Udp,
            &[b"\x80a", b"\x80b"],
            &[b"\x00\x01"],
            5000,
            false,
            false,
            None,
        )
        .ok();
    let d = d.expect("seq");
    assert_eq!(
        (&*d.protocol, d.meta["seq_units"].as_u64()),
        ("seq", Some(2))
    );
}

#[test]
fn name_order_matches_python() {
    // Equal ranks: Python's max over negated code points picks "ab" over "b", "abc" over "ab".
    let a = "protocol = \"ab\"\n[[match]]\nprefix = \"X\"\n";
    let b = "protocol = \"b\"\n[[match]]\nprefix = \"X\"\n";
    let c = "protocol = \"abc\"\n[[match]]\nprefix = \"X\"\n";
    assert_eq!(
        engine(&[a, b])
            .classify(Transport::Tcp, &[b"Xtoken"], &[], 1, false, false, None)
            .ok()
            .unwrap()
            .protocol
            .to_string(),
        "ab"
    );
    assert_eq!(
        engine(&[a, c])
            .classify(Transport::Tcp, &[b"Xtoken"], &[], 1, false, false, None)
            .ok()
            .unwrap()
            .protocol
            .to_string(),
        "abc"
    );
}

#[test]
fn gates_never_change_answers() {
    if !fakes() {
        return;
    }
    // Every signature gated or not: scoring all candidates gives the same decision.
    let e = engine(&[PING, PONGISH, STUNNY, SEQ]);
    let inputs: &[&[u8]] = &[b"PING 1", b"PONG", b"POX", b"\x00\x01", b"\x80", b"", b"zz"];
    for c in inputs {
        for s in inputs {
            let cl: Vec<&[u8]> = if c.is_empty() { vec![] } else { vec![c] };
            let sv: Vec<&[u8]> = if s.is_empty() { vec![] } else { vec![s] };
            for t in Transport::ALL {
                let got = e
                    .classify(t, &cl, &sv, 7000, true, true, Some(3478))
                    .ok()
                    .map(|d| decision_json(&d));
                let ungated = ungated(&e, t, &cl, &sv);
                assert_eq!(got, ungated, "{c:?} {s:?} {t:?}");
            }
        }
    }
}

fn ungated(e: &Engine, t: Transport, c: &[&[u8]], s: &[&[u8]]) -> Option<Value> {
    let sigs = e.signatures().to_vec();
    let mut e2 = Engine::new(sigs, HashMap::new());
    for a in &mut e2.admission {
        let n = a.n;
        *a = Admission::of(&vec![None; n]);
    }
    e2.classify(t, c, s, 7000, true, true, Some(3478))
        .ok()
        .map(|d| decision_json(&d))
}

#[test]
fn port_hints_added_later_break_ties_as_hints_given_at_build() {
    let tie = |name: &str| {
        format!("protocol = \"{name}\"\n[[match]]\ndirection = \"server\"\nregex = '^XX'\nconfidence = 0.6\n")
    };
    let (a, b) = (tie("aaa"), tie("bbb"));
    let plain = engine(&[&a, &b]);
    let decide = |e: &Engine, port: u16| {
        e.classify(
            Transport::Tcp,
            &[b"hi"],
            &[b"XX yes"],
            port,
            false,
            true,
            None,
        )
        .ok()
        .map(|d| d.protocol.to_string())
    };
    assert_eq!(decide(&plain, 5000).as_deref(), Some("aaa"));
    let hints: HashMap<(u16, Transport), Vec<String>> =
        [((5000, Transport::Tcp), vec!["bbb".to_string()])].into();
    let later = plain.with_port_hints(hints.clone());
    let mut sigs = vec![sig(&a), sig(&b)];
    sigs.sort_by(|x, y| x.protocol.cmp(&y.protocol));
    let at_build = Engine::new(sigs, hints);
    for port in [5000, 5001] {
        assert_eq!(decide(&later, port), decide(&at_build, port));
    }
    assert_eq!(decide(&later, 5000).as_deref(), Some("bbb"));
    assert_eq!(decide(&later, 5001).as_deref(), Some("aaa"));
    assert_eq!(
        decide(&plain, 5000).as_deref(),
        Some("aaa"),
        "the original keeps its hints"
    );
}

#[test]
fn a_first_datagram_match_reads_only_the_first_datagram() {
    let opener = "protocol = \"opener\"\ntransports = [\"udp\"]\n[[match]]\nprefix = \"HELLO\"\nfirst_datagram = true\n";
    let anywhere =
        "protocol = \"anywhere\"\ntransports = [\"udp\"]\n[[match]]\nprefix = \"HOWDY\"\n";
    let e = engine(&[opener, anywhere]);
    let named = |units: &[&[u8]]| {
        e.classify(Transport::Udp, units, &[], 9999, false, true, None)
            .ok()
            .map(|d| d.protocol.to_string())
    };
    assert_eq!(named(&[b"HELLO there", b"x"]).as_deref(), Some("opener"));
    // The same bytes later in the direction are a chance match, not the opening.
    assert_eq!(
        named(&[b"\x17\x03", b"HELLO there"]).as_deref(),
        Some("unknown")
    );
    assert_eq!(
        named(&[b"\x17\x03", b"HOWDY partner"]).as_deref(),
        Some("anywhere")
    );
}

#[test]
fn a_long_pattern_is_quoted_whole_escapes_and_an_ellipsis() {
    assert_eq!(shortened("^abc", 60), "^abc");
    let long = format!("^{}", "x".repeat(70));
    assert_eq!(shortened(&long, 60), format!("{}\u{2026}", &long[..60]));
    // The cut would fall inside \x50: the escape goes whole.
    let text = format!("{}\\x50tail", "a".repeat(57));
    assert_eq!(shortened(&text, 60), format!("{}\u{2026}", "a".repeat(57)));
    // A whole escape just before the cut stays.
    let text = format!("{}\\x50tail", "a".repeat(56));
    assert_eq!(
        shortened(&text, 60),
        format!("{}\\x50\u{2026}", "a".repeat(56))
    );
}
