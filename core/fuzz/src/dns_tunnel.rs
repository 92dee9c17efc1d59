//! Target `dns_tunnel`: a stream of DNS records through the DNS-tunnel policy's bookkeeping
//! (`dns_tunnel::Tracker`), whose query names, types and answers a remote client or server
//! chooses.
//!
//! Input: records separated by 0xff; each `[packets][socket][fields...]`, its fields (query
//! name, query type, answers) separated by 0x00 and read as UTF-8 with U+FFFD for invalid
//! sequences. Checked, beyond "no panic": at most `max_domains` domains kept, each with at most
//! `max_names` names remembered, no more encoded-looking names than unique ones nor more unusual
//! queries than queries; a signal has a reason, an encoded-looking name or a large answer; every
//! reason and answer one line.
use std::collections::HashSet;

use _core::dns_name::{split_name, NameParts};
use _core::dns_tunnel::{Query, Settings, Socket, Tracker};

const MAX_DOMAINS: usize = 8;
const MAX_NAMES: usize = 4;

fn settings() -> Settings {
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
    Settings {
        max_domains: MAX_DOMAINS,
        max_names: MAX_NAMES,
        long_label: 12,
        long_data: 20,
        min_char_entropy: 2.0,
        large_answer: 20,
        agg_suspicious_names: 2,
        agg_suspicious_share: 0.3,
        agg_unusual_queries: 3,
        agg_unusual_names: 2,
        flow_queries: 4,
        unusual_qtypes: set(&["NULL", "TXT", "CNAME", "MX", "SRV", "KEY", "PRIVATE"]),
        not_resolution: set(&["mdns"]),
        allowed: set(&["allowed.example"]),
    }
}

fn split(name: &str) -> Option<NameParts> {
    if name.is_ascii() {
        split_name(name, |label| label == "co" || label == "com")
    } else {
        None
    }
}

pub fn run(data: &[u8]) {
    let mut tracker = Tracker::new(settings());
    let mut names = Vec::new();
    for record in data.split(|&b| b == 0xff).take(256) {
        let [packets, socket, rest @ ..] = record else {
            continue;
        };
        let fields: Vec<String> = rest
            .split(|&b| b == 0)
            .take(8)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let (qname, qtype) = (
            fields.first().map_or("", String::as_str),
            fields.get(1).map_or("", String::as_str),
        );
        let answers: Vec<&str> = fields.iter().skip(2).map(String::as_str).collect();
        let query = Query {
            qname,
            qtype,
            packets: i64::from(*packets) - 8,
            socket: Socket {
                src_ip: format!("10.0.0.{}", socket & 7),
                src_port: i64::from(socket >> 3),
                dst_ip: "10.0.0.53".into(),
                dst_port: 53,
                ts_start: 0,
            },
            answers: &answers,
        };
        if let Some(signal) = tracker.account(&query, &split) {
            assert!(
                !signal.reasons.is_empty() || signal.shape.suspicious || signal.answer.is_some(),
                "a signal with nothing to say"
            );
        }
        if let Some(parts) = split(qname) {
            names.push(parts.domain);
        }
        assert!(
            tracker.domain_count() <= MAX_DOMAINS,
            "domains past the bound"
        );
    }
    for name in &names {
        if let Some(c) = tracker.counts(name) {
            assert!(c.remembered_names <= MAX_NAMES, "names past the bound");
            assert!(c.suspicious <= c.unique, "more encoded names than names");
            assert!(
                c.unusual_queries <= c.queries,
                "more unusual queries than queries"
            );
        }
    }
}
