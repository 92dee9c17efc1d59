use super::*;
use crate::meta::json;

/// `record::sample` without a capture name, its duration a float Python writes as `1e-05`.
fn record() -> FlowRecord {
    FlowRecord {
        pcap: None,
        duration: 1e-05,
        ..crate::record::sample()
    }
}

fn row(rec: &FlowRecord) -> Option<String> {
    let mut out = b"kept".to_vec();
    if !push_csv_row(&mut out, rec, &["https".into(), "alt".into()]) {
        assert_eq!(out, b"kept", "nothing written when declined");
        return None;
    }
    Some(String::from_utf8(out[4..].to_vec()).unwrap())
}

#[test]
fn a_row_in_the_columns_order() {
    let mut rec = record();
    rec.meta.insert("sni".into(), json!("a.example"));
    rec.meta.insert("alpn".into(), json!(["h2", "http/1.1"]));
    // csv.writer([...flat_row(rec).values()]) in Python 3.11.
    let want = concat!(
        "12,1:abc=,,1764170033.123456,1764170035.9,1e-05,tcp,10.0.0.1,40000,10.0.0.2,443,",
        "handshake,tls,1.0,https alt,7,5,1455,1633,SF,ShADadFf,a.example,\"h2,http/1.1\",",
        ",,,,,,,,,,[],\"{\"\"alpn\"\": [\"\"h2\"\", \"\"http/1.1\"\"], \"\"sni\"\": \"\"a.example\"\"}\"\r\n"
    );
    assert_eq!(row(&rec).unwrap(), want);
}

#[test]
fn a_cell_a_spreadsheet_would_evaluate_is_neutralised_then_quoted() {
    let mut rec = record();
    rec.meta
        .insert("http_host".into(), json!("=cmd|' /C calc'!A0"));
    rec.meta
        .insert("http_user_agent".into(), json!("-a, \"b\"\r\nc"));
    rec.meta.insert("dns_query".into(), json!("@x"));
    let line = row(&rec).unwrap();
    assert!(line.contains(",'=cmd|' /C calc'!A0,"), "{line}");
    assert!(line.contains(",\"'-a, \"\"b\"\"\r\nc\","), "{line}");
    assert!(line.contains(",'@x,"), "{line}");
}

#[test]
fn values_as_pythons_str_spells_them() {
    let mut rec = record();
    rec.meta.insert("ja3".into(), json!(true));
    rec.meta.insert("ja4".into(), json!(-7));
    rec.meta.insert("ja3s".into(), json!(2.0));
    rec.meta
        .insert("hassh".into(), json!([1, 2.5, null, false, "-x"]));
    rec.meta
        .insert("hassh_server".into(), json!({"b": 1, "a": [1e-05]}));
    rec.meta.insert("ssh_client".into(), json!(null));
    let line = row(&rec).unwrap();
    // Numbers and bools are not texts: a negative number is not neutralised.
    assert!(
        line.contains(
            ",True,-7,2.0,\"1,2.5,None,False,-x\",\"{\"\"a\"\": [1e-05], \"\"b\"\": 1}\",,"
        ),
        "{line}"
    );
}

#[test]
fn a_list_inside_a_list_is_left_to_python() {
    let mut rec = record();
    rec.meta.insert("alpn".into(), json!([["h2"]]));
    assert_eq!(row(&rec), None);
    rec.meta.insert("alpn".into(), json!([{"a": 1}]));
    assert_eq!(row(&rec), None);
}
