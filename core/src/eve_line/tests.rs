use super::*;

fn stamp(ts: f64) -> Option<String> {
    let mut out = Vec::new();
    push_timestamp(&mut out, seconds_and_micros(ts)?);
    Some(String::from_utf8(out).unwrap())
}

#[test]
fn a_time_is_pythons_datetime_text() {
    // datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z"), CPython 3.11.
    let cases = [
        (0.0, "1970-01-01T00:00:00.000000+0000"),
        // Microseconds rounded half to even, as CPython rounds a float timestamp.
        (5e-07, "1970-01-01T00:00:00.000000+0000"),
        (1.5e-06, "1970-01-01T00:00:00.000002+0000"),
        (2.5e-06, "1970-01-01T00:00:00.000002+0000"),
        (1.9999995, "1970-01-01T00:00:01.999999+0000"),
        (86399.9999995, "1970-01-01T23:59:59.999999+0000"),
        (951782399.5, "2000-02-28T23:59:59.500000+0000"),
        (951782400.25, "2000-02-29T00:00:00.250000+0000"),
        (1764170033.123456, "2025-11-26T15:13:53.123456+0000"),
        (1715680801.00688, "2024-05-14T10:00:01.006880+0000"),
        (4102444799.999999, "2099-12-31T23:59:59.999999+0000"),
        (253402300799.0, "9999-12-31T23:59:59.000000+0000"),
    ];
    for (ts, text) in cases {
        assert_eq!(stamp(ts).as_deref(), Some(&*format!("\"{text}\"")), "{ts}");
    }
}

#[test]
fn a_time_python_cannot_write_is_left_to_it() {
    // Past 9999 (datetime raises; eve.timestamp writes a fixed text), before 1970, not a number.
    for ts in [
        253402300799.999999,
        253402300800.0,
        1e300,
        -1.0,
        f64::NAN,
        f64::INFINITY,
    ] {
        assert_eq!(stamp(ts), None, "{ts}");
    }
}

#[test]
fn every_day_of_four_centuries_is_the_calendars() {
    // Day by day from 1970 to 2400: months of their length, leap years by the Gregorian rule.
    let mut days = 0;
    for year in 1970..2400 {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        for (m, len) in [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ]
        .into_iter()
        .enumerate()
        {
            for d in 1..=len {
                assert_eq!(civil_from_days(days), (year, m as u32 + 1, d));
                days += 1;
            }
        }
    }
}

fn record() -> FlowRecord {
    crate::record::sample()
}

#[test]
fn a_flow_event_in_eves_order() {
    let mut out = Vec::new();
    assert!(push_eve_line(
        &mut out,
        &record(),
        &["https".into()],
        Some(b"{\"sni\":\"x\"}")
    ));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        concat!(
            r#"{"timestamp":"2025-11-26T15:13:53.123456+0000","flow_id":12,"pcap_filename":"a.pcap","#,
            r#""event_type":"flow","src_ip":"10.0.0.1","src_port":40000,"dest_ip":"10.0.0.2","#,
            r#""dest_port":443,"proto":"TCP","community_id":"1:abc=","app_proto":"tls","#,
            r#""flow":{"pkts_toserver":7,"pkts_toclient":5,"bytes_toserver":1455,"bytes_toclient":1633,"#,
            r#""start":"2025-11-26T15:13:53.123456+0000","end":"2025-11-26T15:13:55.900000+0000","age":2,"#,
            r#""state":"closed","alerted":false},"portwatch":{"protocol":"tls","assigned":["https"],"#,
            r#""orientation":"handshake","confidence":1.0,"duration":2.776544,"state":"SF","#,
            r#""history":"ShADadFf","meta":{"sni":"x"},"findings":[]}}"#,
            "\n"
        )
    );
}

#[test]
fn what_eve_leaves_out_and_renames() {
    let mut rec = record();
    rec.pcap = Some("".into());
    rec.community_id = String::new();
    rec.protocol = "unknown".into();
    rec.transport = "udp";
    rec.packets_s2c = 0;
    rec.ts_end = rec.ts_start - 1.0; // an age never below 0
    let mut out = Vec::new();
    assert!(push_eve_line(&mut out, &rec, &[], None));
    let line = String::from_utf8(out).unwrap();
    assert!(
        !line.contains("pcap_filename") && !line.contains("community_id"),
        "{line}"
    );
    assert!(
        line.contains(r#""proto":"UDP","app_proto":"failed""#),
        "{line}"
    );
    assert!(line.contains(r#""age":0,"state":"new""#), "{line}");
    assert!(line.contains(r#""meta":{},"findings":[]"#), "{line}");
}

#[test]
fn suricatas_flow_states() {
    let mut rec = record();
    for (transport, state, answered, want) in [
        ("tcp", "SF", 5, "closed"),
        ("tcp", "RSTOS0", 0, "closed"),
        ("tcp", "S0", 0, "new"),
        ("tcp", "S0", 1, "established"),
        ("tcp", "S1", 0, "established"),
        ("tcp", "OTH", 0, "established"),
        ("udp", "SF", 0, "new"),
        ("udp", "S0", 2, "established"),
    ] {
        rec.transport = transport;
        rec.state = state;
        rec.packets_s2c = answered;
        assert_eq!(flow_state(&rec), want, "{transport} {state} {answered}");
    }
}

#[test]
fn a_record_left_to_python_writes_nothing() {
    let mut rec = record();
    rec.ts_end = f64::NAN;
    let mut out = b"kept".to_vec();
    assert!(!push_eve_line(&mut out, &rec, &[], None));
    assert_eq!(out, b"kept");
}
