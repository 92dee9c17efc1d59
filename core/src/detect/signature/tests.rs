use std::path::Path;

use super::*;
use crate::detect::probes;

fn errors(text: &str) -> Vec<String> {
    match parse(text, "t.toml", "user").0 {
        Ok(_) => vec![],
        Err(e) => e,
    }
}

#[test]
fn every_error_with_its_line() {
    let text = "protocol = \"Bad\"\nports = [0]\nbogus = 1\n[[match]]\ndirection = \"up\"\ndepth = 0\n\n[[match]]\nconfidence = 2\nregex = '(?=x)'\n";
    let e = errors(text);
    let want = [
        "t.toml:3: bogus: unknown field",
        "t.toml:1: protocol: must be a short lowercase name",
        "t.toml:2: ports: must be a list of port numbers 1-65535",
        "t.toml:5: match[0].direction: must be one of client, server, either",
        "t.toml:6: match[0].depth: must be 1..4096",
        "t.toml:4: match[0].match: needs a prefix, prefix_hex, regex or probe",
        "t.toml:10: match[1].regex: look-ahead is not supported",
        "t.toml:9: match[1].confidence: must be in (0, 1]",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn types_and_missing() {
    let e = errors("description = 3\n");
    assert!(
        e.contains(&"t.toml:1: description: must be str, not int".to_owned()),
        "{e:?}"
    );
    assert!(
        e.contains(&"t.toml:1: protocol: missing (every file names its protocol)".to_owned()),
        "{e:?}"
    );
    assert!(
        e.contains(&"t.toml:1: match: at least one [[match]] table is required".to_owned()),
        "{e:?}"
    );
    let e = errors("protocol = \"x\"\n[[match]\n");
    assert!(
        e.first()
            .is_some_and(|x| x.starts_with("t.toml:2: invalid TOML: ")),
        "{e:?}"
    );
}

#[test]
fn good_file() {
    let text = "protocol = \"zabbix\"\nports = [10050]\n[[match]]\nprefix = \"ZBXD\\u0001\"\nconfidence = 1\n[[match]]\nprefix_hex = \"5a 42\"\nregex = '^ZBXD[\\x01\\x03]'\ndirection = \"server\"\n";
    let s = parse(text, "t.toml", "user").0.unwrap();
    assert_eq!(s.matches.len(), 2);
    assert_eq!(s.matches[0].prefix.as_deref(), Some(&b"ZBXD\x01"[..]));
    assert_eq!(s.matches[0].confidence, 1.0);
    assert_eq!(s.matches[1].prefix.as_deref(), Some(&b"ZB"[..]));
    assert_eq!(s.transports, vec![Transport::Tcp]);
    assert_eq!(s.to_json()["ports"], json!([10050]));
}

#[test]
fn announces_and_expected() {
    let s = parse(
        "protocol = \"ftp-data\"\nexpected = true\n",
        "t.toml",
        "user",
    )
    .0
    .unwrap();
    assert!(s.expected && s.matches.is_empty());
    let text = "protocol = \"ftp\"\nannounces = \"ftp\"\n[[match]]\nprefix = \"220\"\n";
    let s = parse(text, "t.toml", "user").0.unwrap();
    assert_eq!(s.announces, Some(Parser::Ftp));
    assert_eq!(s.to_json()["announces"], json!("ftp"));
    let e = errors("protocol = \"x\"\nannounces = \"h323\"\n[[match]]\nprefix = \"a\"\n");
    assert!(
        e.iter().any(|x| x.contains("announces: must be one of")),
        "{e:?}"
    );
    let e = errors("protocol = \"x\"\nexpected = true\n[[match]]\nprefix = \"a\"\n");
    assert!(e.iter().any(|x| x.contains("expected: ")), "{e:?}");
}

#[test]
fn secure_when_names_facts_that_lift_insecure() {
    let text = "protocol = \"x\"\ninsecure = true\nsecure_when = { x_level = [\"auth\", \"priv\"] }\n[[match]]\nprefix = \"a\"\n";
    let s = parse(text, "t.toml", "user").0.unwrap();
    assert_eq!(
        s.secure_when,
        vec![(
            "x_level".to_owned(),
            vec!["auth".to_owned(), "priv".to_owned()]
        )]
    );
    assert_eq!(
        s.to_json()["secure_when"],
        json!({"x_level": ["auth", "priv"]})
    );
    assert_eq!(
        errors("protocol = \"x\"\nsecure_when = { a = [\"b\"] }\n[[match]]\nprefix = \"a\"\n"),
        vec!["t.toml:2: secure_when: only a protocol with insecure = true can be made secure by its facts".to_owned()]
    );
    assert_eq!(
        errors("protocol = \"x\"\ninsecure = true\nsecure_when = { a = [1] }\n[[match]]\nprefix = \"a\"\n"),
        vec!["t.toml:3: secure_when.a: must be a list of 1 to 16 texts (the fact's values)".to_owned()]
    );
}

#[test]
fn first_datagram_needs_udp_and_a_one_datagram_check() {
    let text = "protocol = \"x\"\ntransports = [\"udp\", \"tcp\"]\n[[match]]\nprefix = \"a\"\nfirst_datagram = true\n[[match]]\nprefix = \"b\"\n";
    let s = parse(text, "t.toml", "user").0.unwrap();
    assert!(s.matches[0].first_datagram);
    assert!(!s.matches[1].first_datagram);
    let e = errors("protocol = \"x\"\n[[match]]\nprefix = \"a\"\nfirst_datagram = true\n");
    assert_eq!(
        e,
        vec![
            "t.toml:4: match[0].first_datagram: only UDP has datagrams: the match must run over udp"
                .to_owned()
        ]
    );
    if probes::lookup("rtp").is_some() {
        let e = errors(
            "protocol = \"x\"\ntransports = [\"udp\"]\n[[match]]\nprobe = \"rtp\"\nfirst_datagram = true\n",
        );
        assert_eq!(
            e,
            vec!["t.toml:5: match[0].first_datagram: the probe judges all the datagrams of a direction together".to_owned()]
        );
    }
    let e = errors(
        "protocol = \"x\"\ntransports = [\"udp\"]\n[[match]]\nprefix = \"a\"\nfirst_datagram = 1\n",
    );
    assert!(
        e.iter()
            .any(|x| x.starts_with("t.toml:5: match[0].first_datagram: must be bool")),
        "{e:?}"
    );
}

#[test]
fn idle_timeouts_per_transport() {
    let text = "protocol = \"x\"\ntransports = [\"udp\", \"tcp\"]\nidle_udp = 10\nidle_tcp = 0.5\n[[match]]\nprefix = \"a\"\n";
    let s = parse(text, "t.toml", "user").0.unwrap();
    assert_eq!(s.idle, [Some(0.5), Some(10.0)]);
    assert_eq!(s.to_json()["idle_udp"], json!(10.0));
    let s = parse(
        "protocol = \"x\"\n[[match]]\nprefix = \"a\"\n",
        "t.toml",
        "user",
    )
    .0
    .unwrap();
    assert_eq!(s.idle, [None, None]);
    assert_eq!(s.to_json()["idle_tcp"], Value::Null);
    for (value, problem) in [
        (
            "0",
            "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
        ),
        (
            "-1.5",
            "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
        ),
        (
            "86401",
            "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
        ),
        (
            "nan",
            "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
        ),
        (
            "inf",
            "t.toml:3: idle_udp: must be a number of seconds in (0, 86400]",
        ),
        ("\"10\"", "t.toml:3: idle_udp: must be float, not str"),
    ] {
        let text = format!(
            "protocol = \"x\"\ntransports = [\"udp\"]\nidle_udp = {value}\n[[match]]\nprefix = \"a\"\n"
        );
        assert_eq!(errors(&text), vec![problem.to_owned()], "{value}");
    }
    // A timeout for a transport the protocol does not run over says nothing: refused.
    let e = errors("protocol = \"x\"\nidle_udp = 5\n[[match]]\nprefix = \"a\"\n");
    assert_eq!(
        e,
        vec!["t.toml:2: idle_udp: the protocol does not run over udp".to_owned()]
    );
}

#[test]
fn a_head_stop_is_a_pattern_for_any_transport() {
    let text = "protocol = \"x\"\ntransports = [\"udp\"]\nhead_stop = '\\A[\\x00-\\xff]{4}'\n[[match]]\nprefix = \"a\"\n";
    let s = parse(text, "t.toml", "user").0.unwrap();
    let stop = s.head_stop.expect("a head_stop");
    assert_eq!(
        stop.regex().unwrap().find(b"abcdefgh").map(|m| m.end()),
        Some(4)
    );
    assert!(s.conversation.is_none());
    let e = errors("protocol = \"x\"\nhead_stop = '(?=x)'\n[[match]]\nprefix = \"a\"\n");
    assert_eq!(e, vec!["t.toml:2: head_stop: look-ahead is not supported (the Rust engine matches in linear time)".to_owned()]);
}

#[test]
fn conversation_tables() {
    let head =
        "protocol = \"x\"\ncleartext_auth = true\n[[match]]\nprefix = \"a\"\n[conversation]\n";
    let text = format!(
        "{head}greeting = '\\A\\+OK ([ -~]*)\\r\\n'\nstarttls = '(?m)^GO$'\nstarttls_ok = '(?m)^\\+OK'\nlogin = '(?m)^PASS '\n"
    );
    let s = parse(&text, "t.toml", "user").0.unwrap();
    let c = s.conversation.expect("a conversation");
    assert!(c.greeting.is_some() && c.starttls.is_some() && c.login.is_some());
    assert!(c.helo.is_none() && c.anonymous.is_none() && c.login_asked.is_none());
    for (body, want) in [
        ("greeting = '^220 '\n", "t.toml:6: conversation.greeting: needs a group: its first group is the value reported"),
        ("starttls = 'GO'\n", "t.toml:6: conversation.starttls: needs starttls_ok too"),
        ("starttls_ok = 'OK'\n", "t.toml:6: conversation.starttls_ok: needs starttls too"),
        ("anonymous = 'USER ftp'\n", "t.toml:6: conversation.anonymous: qualifies a login: needs login too"),
        ("login_asked = 'R'\n", "t.toml:6: conversation.login_asked: qualifies a login: needs login too"),
        ("login = '(?=x)'\n", "t.toml:6: conversation.login: look-ahead is not supported"),
        ("banner = 'x'\n", "t.toml:6: conversation.banner: unknown field (known: anonymous, greeting, helo, login, login_asked, starttls, starttls_ok)"),
    ] {
        let e = errors(&format!("{head}{body}"));
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].starts_with(want), "{e:#?} / {want}");
    }
    let e = errors("protocol = \"x\"\nconversation = 3\n[[match]]\nprefix = \"a\"\n");
    assert_eq!(
        e,
        vec!["t.toml:2: conversation: must be dict, not int".to_owned()]
    );
    let e = errors(
        "protocol = \"x\"\ntransports = [\"udp\"]\ncleartext_auth = true\n[[match]]\nprefix = \"a\"\n[conversation]\nlogin = 'PASS'\n",
    );
    assert_eq!(
        e,
        vec!["t.toml:6: conversation: the protocol does not run over tcp".to_owned()]
    );
    // A login found where nothing would report it (xmpp's file lacked the flag).
    let e = errors("protocol = \"x\"\n[[match]]\nprefix = \"a\"\n[conversation]\nlogin = 'PASS'\n");
    assert_eq!(
        e,
        vec!["t.toml:5: conversation.login: a login in clear is reported only for a protocol with cleartext_auth = true".to_owned()]
    );
}

#[test]
fn shipped_set_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../main/signatures");
    let dir = if dir.is_dir() {
        dir
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../signatures")
    };
    if probes::names().is_empty() {
        return; // needs the probes the files name
    }
    let sigs = load_dirs(&dir, &[]).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(sigs.len() > 50);
}
