use hashbrown::HashSet;
use serde_json::json;

use super::*;
use crate::meta::Meta;

fn record(protocol: &str, src_port: u16, dst_port: u16, meta: serde_json::Value) -> FlowRecord {
    FlowRecord {
        ts_start: 1.5,
        ts_end: 2.25,
        transport: "tcp",
        src_ip: "10.0.0.1".into(),
        src_port,
        dst_ip: "10.0.0.2".into(),
        dst_port,
        orientation: "handshake",
        protocol: protocol.into(),
        confidence: 0.95,
        packets_c2s: 3,
        packets_s2c: 2,
        bytes_c2s: 10,
        bytes_s2c: 20,
        meta: Meta::from(meta.as_object().cloned().unwrap_or_default()).into(),
        pcap: Some("a \"b\".pcap".into()),
        flow_id: 7,
        community_id: "1:abc".into(),
        duration: 0.75,
        state: "SF",
        history: "ShADadFf".into(),
    }
}

fn table() -> QuietLines {
    let listed = vec![
        (
            "tls_version_server".to_string(),
            HashSet::from(["1.0".to_string()]),
        ),
        (
            "smb_dialect_server".to_string(),
            HashSet::from(["1".to_string()]),
        ),
    ];
    let names = vec![
        (443, "tcp".to_string(), vec!["https".to_string()]),
        (
            80,
            "tcp".to_string(),
            vec!["http".to_string(), "www".to_string()],
        ),
        (9, "sctp".to_string(), vec!["discard".to_string()]),
        (1234, "tcp".to_string(), vec![]),
    ];
    let mut q = QuietLines::new(names, listed, true, 1024);
    assert!(q.teach("tls", 443, "tcp"));
    assert!(q.teach("http", 80, "tcp"));
    q
}

#[test]
fn a_taught_key_is_quiet_with_its_names() {
    let q = table();
    let names = q.quiet(&record("http", 40000, 80, json!({}))).unwrap();
    assert_eq!(names, ["http", "www"]);
    assert!(q.quiet(&record("tls", 40000, 80, json!({}))).is_none());
    assert!(q.quiet(&record("ssh", 40000, 443, json!({}))).is_none());
}

#[test]
fn keys_need_a_named_port_and_a_known_transport() {
    let mut q = table();
    assert!(!q.teach("sctp-thing", 9, "sctp"));
    assert!(!q.teach("tls", 1234, "tcp"));
    assert!(!q.teach("unknown", 443, "tcp"));
    assert!(!q.teach("tls", 8443, "tcp"));
}

#[test]
fn the_table_is_bounded() {
    let names = (1..=u16::MAX).map(|p| (p, "udp".to_string(), vec!["x".to_string()]));
    let mut q = QuietLines::new(names, Vec::new(), false, 1024);
    let taught = ["p", "q"]
        .iter()
        .flat_map(|proto| (1..=u16::MAX).map(move |port| (*proto, port)))
        .filter(|(proto, port)| q.teach(proto, *port, "udp"))
        .count();
    assert_eq!(taught, MAX_QUIET_KEYS);
    assert!(q.teach("p", 1, "udp"), "a key already there stays taught");
    assert!(!q.teach("q", u16::MAX, "udp"));
    let rec = |port| {
        let mut r = record("q", 40000, port, json!({}));
        r.transport = "udp";
        r
    };
    assert!(q.quiet(&rec(1)).is_some());
    assert!(q.quiet(&rec(u16::MAX)).is_none());
}

#[test]
fn facts_a_rule_reads_make_a_record_loud() {
    let q = table();
    for fact in LOUD_FACTS {
        let mut meta = serde_json::Map::new();
        meta.insert(fact.to_string(), json!(false));
        let rec = record("http", 40000, 80, serde_json::Value::Object(meta));
        assert!(q.quiet(&rec).is_none(), "{fact}");
    }
    let listed = record("tls", 40000, 443, json!({"tls_version_server": "1.0"}));
    assert!(q.quiet(&listed).is_none());
    let fine = record("tls", 40000, 443, json!({"tls_version_server": "1.3"}));
    assert!(q.quiet(&fine).is_some());
    let dialect = record("tls", 40000, 443, json!({"smb_dialect_server": 1}));
    assert!(q.quiet(&dialect).is_none(), "an int is listed by its text");
    let float = record("tls", 40000, 443, json!({"smb_dialect_server": 1.0}));
    assert!(
        q.quiet(&float).is_none(),
        "a float's text is Python's to write"
    );
    let null = record("tls", 40000, 443, json!({"smb_dialect_server": null}));
    assert!(q.quiet(&null).is_some());
}

#[test]
fn a_trusted_client_port_is_a_rules_question() {
    let q = table();
    assert!(q.quiet(&record("http", 1023, 80, json!({}))).is_none());
    let mut inferred = record("http", 1023, 80, json!({}));
    inferred.orientation = "inferred";
    assert!(q.quiet(&inferred).is_some());
    let mut udp = record("http", 1023, 80, json!({}));
    udp.transport = "udp";
    assert!(q.quiet(&udp).is_none(), "the key is tcp's");
}

#[test]
fn an_unknown_flow_is_quiet_only_unanswered_and_without_entropy() {
    let q = table();
    let mut rec = record("unknown", 40000, 80, json!({}));
    assert!(q.quiet(&rec).is_none(), "answered");
    rec.bytes_s2c = 0;
    assert!(q.quiet(&rec).is_none(), "client bytes acknowledged");
    rec.packets_s2c = 0;
    assert_eq!(q.quiet(&rec).unwrap(), ["http", "www"]);
    rec.dst_port = 5555;
    assert!(q.quiet(&rec).unwrap().is_empty());
    let mut entropy = record("unknown", 40000, 5555, json!({"entropy_client": {}}));
    entropy.bytes_s2c = 0;
    entropy.packets_s2c = 0;
    assert!(q.quiet(&entropy).is_none());
    let mut udp = record("unknown", 40000, 5555, json!({}));
    (udp.transport, udp.bytes_s2c) = ("udp", 0);
    assert!(
        q.quiet(&udp).is_some(),
        "a UDP datagram acknowledged by nothing"
    );
    let strict = QuietLines::new(Vec::new(), Vec::new(), false, 1024);
    assert!(
        strict.quiet(&udp).is_none(),
        "a signature named unknown speaks"
    );
}

#[test]
fn the_line_has_the_records_fields_in_order() {
    let rec = record("http", 40000, 80, json!({"http_host": "é\u{1}"}));
    let mut out = Vec::new();
    push_line(&mut out, &rec, &["http".into()], None);
    let line = String::from_utf8(out.clone()).unwrap();
    assert!(line.ends_with("}\n"));
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, crate::record::LINE_FIELDS);
    assert_eq!(value["pcap"], "a \"b\".pcap");
    assert_eq!(value["meta"]["http_host"], "é\u{1}");
    assert_eq!(value["findings"], json!([]));
    let mut given = Vec::new();
    push_line(&mut given, &rec, &["http".into()], Some(b"{\"x\":1}"));
    assert!(String::from_utf8(given)
        .unwrap()
        .contains(",\"meta\":{\"x\":1},"));
    let mut no_pcap = rec.clone();
    no_pcap.pcap = None;
    let mut out = Vec::new();
    push_line(&mut out, &no_pcap, &[], None);
    assert!(!String::from_utf8(out).unwrap().contains("pcap"));
}
