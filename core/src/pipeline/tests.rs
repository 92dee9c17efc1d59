use super::detection::held;
use super::*;
use crate::detect::builtin::BUILTIN;
use crate::detect::signature::load_texts_and;
use crate::flow::reassembly::{DEFAULT_DEPTH, MIDSTREAM_DEPTH};
use crate::flow::FIN;

const UDP: u8 = 17;
const PSH: u8 = 0x08;

/// Ethernet + IPv4 + TCP (flags) or UDP, no options.
fn frame(
    proto: u8,
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    flags: u8,
    seq: u32,
    payload: &[u8],
) -> Vec<u8> {
    let l4 = if proto == TCP { 20 } else { 8 };
    let total = (20 + l4 + payload.len()) as u16;
    let mut f = vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    if proto == TCP {
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    f
}

fn analyzer() -> Analyzer {
    let sigs = load_texts_and(BUILTIN, &[]).expect("shipped signatures load");
    let engine = Arc::new(Engine::new(sigs, Default::default()));
    Analyzer::new(
        Config::default(),
        engine,
        Arc::new(KnownPorts::default()),
        None,
    )
}

/// (time, from the client?, flags, payload) between 10.0.0.1:40000 and 10.0.0.2:port.
/// A TCP handshake from `t`, one HTTP request and its response, a tenth of a second apart.
fn http_exchange(t: f64) -> Vec<(f64, bool, u8, &'static [u8])> {
    vec![
        (t, true, SYN, b""),
        (t + 0.1, false, SYN | ACK, b""),
        (t + 0.2, true, ACK, b""),
        (
            t + 0.3,
            true,
            PSH | ACK,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            t + 0.4,
            false,
            PSH | ACK,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ),
    ]
}

fn run(proto: u8, port: u16, packets: &[(f64, bool, u8, &[u8])]) -> Vec<FlowRecord> {
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], port));
    let mut a = analyzer();
    let mut seq = [1000u32, 5000u32];
    for &(ts, from_client, flags, payload) in packets {
        let d = usize::from(!from_client);
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        a.packet(ts, 1, &frame(proto, src, dst, flags, seq[d], payload));
        seq[d] = seq[d].wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
    }
    a.drain();
    std::mem::take(&mut a.flows.finished)
}

#[test]
fn a_full_handshake_and_fin_flow_is_sf() {
    let mut packets = http_exchange(1.0);
    packets.extend([
        (1.5, true, FIN | ACK, &b""[..]),
        (1.6, false, FIN | ACK, b""),
        (1.7, true, ACK, b""),
    ]);
    let recs = run(TCP, 80, &packets);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    // No pure ACK from the server: no 'a'.
    assert_eq!((r.state, r.history.as_str()), ("SF", "ShADdFf"));
    assert_eq!(r.flow_id, 1);
    assert_eq!(r.duration, 0.7);
    assert_eq!(
        r.duration,
        crate::tunnel::pyfmt::round_to(r.ts_end - r.ts_start, 6)
    );
}

/// A stream nothing matched is scored at each growth; when the capture ends before its
/// budget, the final call names it unknown from that scoring (`Buffers::scored_nothing`)
/// rather than scoring the same bytes again. New signatures forget it.
#[test]
fn bytes_nothing_matched_are_named_unknown_at_the_end() {
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 4433));
    let junk: &[u8] = &[
        0x9c, 0x17, 0xe2, 0x01, 0x55, 0xaa, 0x3e, 0x80, 0x07, 0xd1, 0x6b, 0xf0,
    ];
    let scored_nothing = |a: &Analyzer| {
        let (id, _) = a.flows.table.ids_in_order()[0];
        let flow = a.flows.table.get(id);
        flow.buffers.as_ref().map(|b| b.scored_nothing)
    };
    let mut a = analyzer();
    a.packet(1.0, 1, &frame(TCP, c, s, PSH | ACK, 1000, junk));
    assert_eq!(scored_nothing(&a), Some(true));
    a.packet(1.1, 1, &frame(TCP, c, s, PSH | ACK, 1012, junk));
    assert_eq!(scored_nothing(&a), Some(true), "scored again at the growth");
    a.drain();
    let named = |r: &FlowRecord| {
        let evidence = r.meta.get("evidence").and_then(Value::as_str);
        (r.protocol.to_string(), evidence.unwrap_or("").to_string())
    };
    let want = ("unknown".to_string(), "no signature matched".to_string());
    assert_eq!(named(&a.flows.finished[0]), want);

    let mut b = analyzer();
    b.packet(1.0, 1, &frame(TCP, c, s, PSH | ACK, 1000, junk));
    let engine = Arc::clone(&b.flows.engine);
    b.flows.set_engine(engine, Arc::new(KnownPorts::default()));
    assert_eq!(scored_nothing(&b), Some(false));
    b.drain();
    assert_eq!(
        named(&b.flows.finished[0]),
        want,
        "scored again: the same answer"
    );
}

/// Flows that reach the same verdict point to one copy of it; a new signature set gives
/// them a renumbered copy, shared anew, and never hands out the old set's.
#[test]
fn flows_with_the_same_verdict_share_it_until_the_signatures_change() {
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut a = analyzer();
    let s = ([10, 0, 0, 2], 80);
    let verdict = |a: &Analyzer, n: usize| {
        let (id, _) = a.flows.table.ids_in_order()[n];
        a.flows.table.get(id).decision.clone().expect("classified")
    };
    for port in [40000, 40001] {
        a.packet(
            1.0,
            1,
            &frame(TCP, ([10, 0, 0, 1], port), s, PSH | ACK, 1, get),
        );
    }
    let (first, second) = (verdict(&a, 0), verdict(&a, 1));
    assert_eq!(&*first.protocol, "http");
    assert!(Arc::ptr_eq(&first, &second));

    let engine = Arc::new(Engine::new(
        load_texts_and(BUILTIN, &[]).expect("shipped signatures load"),
        Default::default(),
    ));
    a.flows
        .set_engine(Arc::clone(&engine), Arc::new(KnownPorts::default()));
    let (renumbered, other) = (verdict(&a, 0), verdict(&a, 1));
    assert!(!Arc::ptr_eq(&renumbered, &first));
    assert_eq!(
        renumbered.sig(),
        first.sig(),
        "the same set: the same number"
    );
    assert_eq!(&*other.protocol, "http");
    a.packet(
        1.1,
        1,
        &frame(TCP, ([10, 0, 0, 1], 40002), s, PSH | ACK, 1, get),
    );
    let later = verdict(&a, 2);
    assert!(
        !Arc::ptr_eq(&later, &first),
        "the old set's copy is not handed out"
    );
    a.drain();
    let protocols: Vec<&str> = a.flows.finished.iter().map(|r| &*r.protocol).collect();
    assert_eq!(protocols, ["http"; 3]);
}

/// The packet that ends a stream's budget may also be the one that grows it: that final
/// call scores the grown bytes, whatever the scoring before it found.
#[test]
fn the_packet_ending_the_budget_is_scored_with_the_rest() {
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 443));
    let junk = [0x9cu8, 0x17, 0xe2, 0x01, 0x55, 0xaa, 0x3e, 0x80].repeat(4);
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    record.extend_from_slice(&[0x5a; 32]);
    let mut a = analyzer();
    let budget = a.flows.config.max_payload_packets;
    let mut seq = 1000u32;
    for n in 0..budget - 1 {
        a.packet(
            1.0 + f64::from(n) / 10.0,
            1,
            &frame(TCP, c, s, PSH | ACK, seq, &junk),
        );
        seq = seq.wrapping_add(junk.len() as u32);
    }
    let (id, _) = a.flows.table.ids_in_order()[0];
    let flow = a.flows.table.get(id);
    assert!(flow.decision.is_none());
    assert_eq!(flow.buffers.as_ref().map(|b| b.scored_nothing), Some(true));
    a.packet(3.0, 1, &frame(TCP, s, c, PSH | ACK, 7000, &record));
    let flow = a.flows.table.get(id);
    let named = flow.decision.as_deref().map(|d| d.protocol.to_string());
    assert_eq!(named.as_deref(), Some("tls"));
}

/// (client's, server's) value of a fact both sides state, in the flow's record.
fn both_sides(r: &FlowRecord, name: &str) -> (Option<Value>, Option<Value>) {
    let server = format!("{name}_server");
    (r.meta.get(name).cloned(), r.meta.get(&server).cloned())
}

/// A TCP flow on `port`: the handshake, then the two messages (from the client?, bytes) in turn.
fn handshake_then(port: u16, first: (bool, &[u8]), second: (bool, &[u8])) -> Vec<FlowRecord> {
    after_handshake(port, &[first, second])
}

/// A TCP handshake to `port`, then each (from the client?, payload) a tenth of a second apart.
fn after_handshake(port: u16, payloads: &[(bool, &[u8])]) -> Vec<FlowRecord> {
    let mut packets: Vec<(f64, bool, u8, &[u8])> = vec![
        (1.0, true, SYN, b""),
        (1.1, false, SYN | ACK, b""),
        (1.2, true, ACK, b""),
    ];
    for (i, &(from_client, payload)) in payloads.iter().enumerate() {
        packets.push((1.3 + 0.1 * i as f64, from_client, PSH | ACK, payload));
    }
    run(TCP, port, &packets)
}

#[test]
fn a_fact_both_sides_state_keeps_the_clients_and_the_servers_answer_apart() {
    // The server answers last (HTTP) or speaks first (SSH): the record is the same either way.
    let http = handshake_then(
        80,
        (true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        (false, b"HTTP/1.0 200 OK\r\n\r\n"),
    );
    assert_eq!(
        both_sides(&http[0], "http_version"),
        (Some("1.1".into()), Some("1.0".into()))
    );
    let ssh = handshake_then(
        22,
        (false, b"SSH-1.99-OpenSSH_3.9p1\r\n"),
        (true, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
    );
    assert_eq!(&*ssh[0].protocol, "ssh");
    assert_eq!(
        both_sides(&ssh[0], "ssh_protoversion"),
        (Some("2.0".into()), Some("1.99".into()))
    );
}

#[test]
fn a_verdict_from_one_sides_bytes_gains_the_other_sides_evidence() {
    // Z39.50: the client's InitializeRequest decides alone (0.85); the server's
    // InitializeResponse matches the signature too and confirms it.
    let init = |tag: u8| vec![tag, 0x07, 0x83, 0x02, 0x00, 0xe0, 0x84, 0x01, 0x00];
    let recs = handshake_then(210, (true, &init(0xb4)), (false, &init(0xb5)));
    let r = &recs[0];
    assert_eq!(&*r.protocol, "z3950");
    assert!(
        (r.confidence - (1.0 - 0.15 * 0.15)).abs() < 1e-9,
        "{}",
        r.confidence
    );
    let evidence = r.meta.get("evidence").and_then(Value::as_str).unwrap_or("");
    assert!(
        evidence.starts_with("client bytes match") && evidence.contains("; server bytes match")
    );
    // An answer the signature does not know leaves the verdict as the client's bytes gave it.
    let recs = handshake_then(210, (true, &init(0xb4)), (false, b"\x00\x01garbage"));
    assert_eq!((&*recs[0].protocol, recs[0].confidence), ("z3950", 0.85));
    let evidence = recs[0]
        .meta
        .get("evidence")
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(!evidence.contains("server bytes"), "{evidence}");
}

/// A NetBIOS session request (RFC 1002 4.3.2) from "PWCLI" to "PWSRV".
fn session_request() -> Vec<u8> {
    let name = |n: &[u8], suffix: u8| {
        let mut raw = n.to_vec();
        raw.resize(15, b' ');
        raw.push(suffix);
        let mut out = vec![32u8];
        for b in raw {
            out.extend([b'A' + (b >> 4), b'A' + (b & 0xf)]);
        }
        out.push(0);
        out
    };
    let mut req = vec![0x81, 0, 0, 68];
    req.extend(name(b"PWSRV", 0x20));
    req.extend(name(b"PWCLI", 0));
    req
}

#[test]
fn a_session_on_139_is_named_by_what_it_carries() {
    // The session request and its positive response only open the session: the SMB2
    // NEGOTIATE that follows names the flow.
    let mut negotiate = vec![0, 0, 0, 68];
    negotiate.extend(b"\xfeSMB");
    negotiate.extend(64u16.to_le_bytes());
    negotiate.resize(4 + 64 + 4, 0);
    let request = session_request();
    let recs = after_handshake(
        139,
        &[
            (true, &request),
            (false, b"\x82\x00\x00\x00"),
            (true, &negotiate),
        ],
    );
    assert_eq!(&*recs[0].protocol, "smb");
    assert_eq!(
        recs[0].meta.get("smb_command").and_then(Value::as_str),
        Some("negotiate")
    );
}

#[test]
fn a_verdict_reached_when_the_flow_ends_keeps_the_heads() {
    // A session request nothing followed: NetBIOS, decided only as the flow is reported,
    // with its first bytes kept like any other verdict's.
    let req = session_request();
    let recs = after_handshake(139, &[(true, &req)]);
    assert_eq!(&*recs[0].protocol, "netbios");
    let head = recs[0].meta.get("client_head").and_then(Value::as_str);
    assert_eq!(head, Some(crate::text::hex(&req[..32]).as_str()));
}

#[test]
fn a_udp_reply_seen_before_its_request_makes_its_sender_the_server() {
    // An LLMNR answer (RFC 4795: QR set) sent by unicast to the port that queried the group:
    // its flow starts with the reply, and neither port is in the services database.
    let mut answer = vec![0x12, 0x34, 0x80, 0, 0, 1, 0, 1, 0, 0, 0, 0];
    answer.extend(b"\x05pwsrv\x00\x00\x01\x00\x01");
    answer.extend(b"\x05pwsrv\x00\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04\x0a\x4d\x00\x01");
    let recs = run(UDP, 5355, &[(1.0, false, 0, &answer)]);
    let r = &recs[0];
    assert_eq!(&*r.protocol, "llmnr");
    assert_eq!((r.dst_port, r.src_port), (5355, 40000));
    assert_eq!((r.packets_c2s, r.packets_s2c), (0, 1));
    assert_eq!(r.orientation, "inferred");
}

/// Bytes held by the only live flow.
fn held_by_the_flow(a: &Analyzer) -> usize {
    let live = a.flows.table.ids_in_order();
    assert_eq!(live.len(), 1);
    held(a.flows.table.get(live[0].0))
}

/// `segments` of 1,448 bytes from 10.0.0.2:443 to 10.0.0.1:40000, one every 20 s (a slow
/// link), after a handshake or with none (a stream picked up in its middle); the bytes the
/// flow held after each, and its record.
fn server_segments(handshake: bool, segments: &[Vec<u8>]) -> (Vec<usize>, FlowRecord) {
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 443));
    let mut a = analyzer();
    if handshake {
        a.packet(0.0, 1, &frame(TCP, c, s, SYN, 999, b""));
        a.packet(0.1, 1, &frame(TCP, s, c, SYN | ACK, 4999, b""));
    }
    let mut seq = 5000u32;
    let mut held_after = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        a.packet(1.0 + 20.0 * i as f64, 1, &frame(TCP, s, c, ACK, seq, seg));
        seq = seq.wrapping_add(seg.len() as u32);
        held_after.push(held_by_the_flow(&a));
    }
    a.drain();
    let mut recs = std::mem::take(&mut a.flows.finished);
    assert_eq!(recs.len(), 1);
    (held_after, recs.remove(0))
}

/// `n` pseudo-random bytes (xorshift), as an encrypted stream looks.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn a_stream_picked_up_in_its_middle_holds_only_the_midstream_depth() {
    let segments: Vec<Vec<u8>> = (0..6).map(|i| noise(1448, i + 1)).collect();
    let (held_after, rec) = server_segments(false, &segments);
    assert_eq!(
        held_after,
        vec![
            1448,
            MIDSTREAM_DEPTH,
            MIDSTREAM_DEPTH,
            MIDSTREAM_DEPTH,
            MIDSTREAM_DEPTH,
            MIDSTREAM_DEPTH
        ]
    );
    assert_eq!(&*rec.protocol, "unknown");
    // After a handshake the stream's start is known: the full depth, for hellos and
    // certificates.
    let (held_after, _) = server_segments(true, &segments);
    assert_eq!(held_after[..3], [1448, 2896, DEFAULT_DEPTH]);
}

#[test]
fn tls_picked_up_inside_a_long_record_is_named_from_its_header() {
    // A 16 KiB application-data record (RFC 8446 5.2) cut into segments, no handshake seen.
    let mut record = vec![23, 3, 3, 0x40, 0x00];
    record.extend(noise(16384, 7));
    let segments: Vec<Vec<u8>> = record.chunks(1448).take(4).map(<[u8]>::to_vec).collect();
    let (held_after, rec) = server_segments(false, &segments);
    assert!(held_after.iter().all(|&n| n <= MIDSTREAM_DEPTH));
    assert_eq!(&*rec.protocol, "tls");
    assert_eq!(rec.meta.get("tls_midstream"), Some(&Value::Bool(true)));
}

#[test]
fn a_refused_connection_is_rej() {
    let recs = run(
        TCP,
        81,
        &[(1.0, true, SYN, b""), (1.01, false, RST | ACK, b"")],
    );
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].state, recs[0].history.as_str()), ("REJ", "Sr"));
}

#[test]
fn a_one_way_udp_flow_is_s0() {
    let recs = run(
        UDP,
        9999,
        &[(1.0, true, 0, b"\x01\x02\x03"), (2.0, true, 0, b"\x04")],
    );
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].state, recs[0].history.as_str()), ("S0", "D"));
    assert_eq!(recs[0].duration, 1.0);
}

/// The shipped set with dns.toml's `idle_udp` set to `secs`.
fn engine_with_dns_idle(secs: u32) -> Arc<Engine> {
    let texts: Vec<(&str, String)> = BUILTIN
        .iter()
        .map(|&(name, text)| {
            let text = if name == "dns.toml" {
                assert!(
                    text.contains("\nidle_udp = 10\n"),
                    "dns.toml gives its idle_udp"
                );
                text.replace("\nidle_udp = 10\n", &format!("\nidle_udp = {secs}\n"))
            } else {
                text.to_owned()
            };
            (name, text)
        })
        .collect();
    let refs: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let sigs = load_texts_and(&refs, &[]).expect("signatures load");
    Arc::new(Engine::new(sigs, Default::default()))
}

const DNS_QUERY: &[u8] =
    b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
const DNS_ANSWER: &[u8] = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x5d\xb8\xd8\x22";

/// A DNS exchange (client port 40000) and a datagram of another UDP flow at 1 s, then a
/// third flow's datagram at `at`: the flows the sweep at `at` ended (`ended`).
fn ended_by(a: &mut Analyzer, at: f64) -> Vec<(u16, String)> {
    datagram(a, 1.0, 40000, 53, false, DNS_QUERY);
    datagram(a, 1.01, 40000, 53, true, DNS_ANSWER);
    datagram(a, 1.0, 40001, 9999, false, b"\x01\x02\x03");
    assert_eq!(ended(a), vec![]);
    datagram(a, at, 40002, 7777, false, b"\x05");
    ended(a)
}

fn analyzer_with_dns_idle(secs: u32) -> Analyzer {
    let known = Arc::new(KnownPorts::default());
    Analyzer::new(Config::default(), engine_with_dns_idle(secs), known, None)
}

#[test]
fn a_protocols_signature_gives_its_flows_idle_timeout() {
    // dns.toml: idle_udp = 10. The DNS flow's last packet was at 1.01 s; the other flow
    // keeps the analyzer's 60 s.
    let mut a = analyzer();
    assert_eq!(ended_by(&mut a, 12.0), vec![(40000, "idle".to_owned())]);
    // The same timeout made 30 s by a signature file: the flow is still open at 12 s.
    let mut a = analyzer_with_dns_idle(30);
    assert_eq!(ended_by(&mut a, 12.0), vec![]);
    datagram(&mut a, 32.0, 40002, 7777, false, b"\x06");
    assert_eq!(ended(&a), vec![(40000, "idle".to_owned())]);
}

#[test]
fn a_reload_that_shortens_a_protocols_idle_timeout_takes_effect_on_open_flows() {
    // Filed for the sweep under a 30 s timeout, then the reload makes it 10 s.
    let mut a = analyzer_with_dns_idle(30);
    datagram(&mut a, 1.0, 40000, 53, false, DNS_QUERY);
    datagram(&mut a, 1.01, 40000, 53, true, DNS_ANSWER);
    // A sweep at 3 s: the flow, quiet, is frozen and filed again, now for 31 s.
    datagram(&mut a, 3.0, 40002, 7777, false, b"\x04");
    assert_eq!(ended(&a), vec![]);
    let known = Arc::new(KnownPorts::default());
    a.flows.set_engine(engine_with_dns_idle(10), known);
    datagram(&mut a, 12.0, 40002, 7777, false, b"\x05");
    assert_eq!(ended(&a), vec![(40000, "idle".to_owned())]);
}

#[test]
fn community_id_is_the_published_vector_and_flow_ids_number_first_packets() {
    let mut a = analyzer();
    let (c, s) = (([128, 232, 110, 120], 34855), ([66, 35, 250, 204], 80));
    a.packet(1.0, 1, &frame(TCP, c, s, SYN, 1, b""));
    // A reply seen first for a second flow: the id does not depend on who sent first.
    a.packet(
        1.5,
        1,
        &frame(TCP, s, ([128, 232, 110, 120], 34856), SYN | ACK, 1, b""),
    );
    a.drain();
    let recs = std::mem::take(&mut a.flows.finished);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].community_id, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    assert_eq!((recs[0].src_port, recs[0].dst_port), (34855, 80));
    assert_eq!(recs[0].state, "S0");
    assert_eq!(
        recs.iter().map(|r| r.flow_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

/// Source ports of the flows ended so far, with their `end_reason`.
fn ended(a: &Analyzer) -> Vec<(u16, String)> {
    a.flows
        .finished
        .iter()
        .map(|r| {
            let why = r
                .meta
                .get("end_reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            (r.src_port, why.to_string())
        })
        .collect()
}

/// One datagram from 10.0.0.1:`sport` to 10.0.0.2:`dport` (or back, `reply`).
fn datagram(a: &mut Analyzer, ts: f64, sport: u16, dport: u16, reply: bool, payload: &[u8]) {
    let (c, s) = (([10, 0, 0, 1], sport), ([10, 0, 0, 2], dport));
    let (src, dst) = if reply { (s, c) } else { (c, s) };
    a.packet(ts, 1, &frame(UDP, src, dst, 0, 0, payload));
}

#[test]
fn a_gtp_control_requests_head_stops_before_the_subscribers_imsi() {
    // gtp.toml's head_stop: a Create Session Request's first element is the IMSI (TS
    // 29.274 7.2.1); the kept head is the 12-byte header, the facts name no subscriber.
    let imsi = [
        0x01, 0x00, 0x08, 0x00, 0x89, 0x67, 0x45, 0x11, 0x22, 0x33, 0x44, 0xf5,
    ];
    let apn = [
        0x47, 0x00, 0x09, 0x00, 0x08, b'i', b'n', b't', b'e', b'r', b'n', b'e', b't',
    ];
    let mut request = vec![0x48, 32, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0];
    request.extend_from_slice(&imsi);
    request.extend_from_slice(&apn);
    let length = (request.len() - 4) as u16;
    request[2..4].copy_from_slice(&length.to_be_bytes());
    let mut a = analyzer();
    datagram(&mut a, 1.0, 2123, 2123, false, &request);
    a.drain();
    let r = &a.flows.finished[0];
    assert_eq!(&*r.protocol, "gtp");
    assert_eq!(r.meta["gtp_apn"], "internet");
    assert_eq!(r.meta["client_head"], "482000210000000000000700");
    assert!(!serde_json::to_string(&*r.meta)
        .unwrap()
        .contains("8967451122"));
}

#[test]
fn idle_flows_end_at_the_sweep_their_timeout_falls_due_in_the_order_they_began() {
    let mut a = analyzer();
    for (i, ts) in [0.5, 0.6, 0.7].into_iter().enumerate() {
        datagram(&mut a, ts, 3000 + i as u16, 9999, false, b"x");
    }
    datagram(&mut a, 30.0, 3000, 9999, false, b"y"); // the first speaks again: due at 90
    datagram(&mut a, 60.9, 4000, 9999, false, b"t"); // before the sweep at 61
    assert!(a.flows.finished.is_empty());
    datagram(&mut a, 61.2, 4000, 9999, false, b"t");
    let idle = |ports: &[u16]| {
        ports
            .iter()
            .map(|&p| (p, "idle".to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ended(&a), idle(&[3001, 3002]));
    datagram(&mut a, 89.5, 4001, 9999, false, b"t");
    assert_eq!(ended(&a).len(), 2);
    datagram(&mut a, 90.0, 4001, 9999, false, b"t"); // the sweep at 90: 90 - 30 >= 60
    assert_eq!(ended(&a), idle(&[3001, 3002, 3000]));
}

#[test]
fn a_datagram_flow_found_to_be_dns_ends_after_the_dns_timeout() {
    let query =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01";
    let mut a = analyzer();
    datagram(&mut a, 0.5, 5353, 53, false, query);
    datagram(&mut a, 11.0, 4000, 9999, false, b"t");
    assert_eq!(ended(&a), vec![(5353, "idle".to_string())]);
}

#[test]
fn a_dns_flow_is_inspected_until_both_sides_have_spoken_and_keeps_its_first_transaction() {
    // Many resolvers ask A and AAAA on one socket: the flow's facts are its first exchange's,
    // and once the query and its answer are in, the flow holds no buffers while it waits out
    // its 10 s idle timeout.
    let state = |a: &Analyzer| {
        let (id, _) = a.flows.table.ids_in_order()[0];
        let f = a.flows.table.get(id);
        (f.inspecting, f.buffers.is_some())
    };
    let nxdomain: Vec<u8> = [&b"\x56\x78\x81\x83"[..], &DNS_QUERY[4..]].concat();
    let mut later_answer = DNS_ANSWER.to_vec();
    later_answer[..2].copy_from_slice(b"\x9a\xbc");
    let mut a = analyzer();
    datagram(&mut a, 1.0, 40000, 53, false, DNS_QUERY);
    assert_eq!(state(&a), (true, true), "the answer is still to come");
    datagram(&mut a, 1.01, 40000, 53, true, &nxdomain);
    assert_eq!(state(&a), (false, false));
    datagram(&mut a, 1.02, 40000, 53, false, DNS_QUERY);
    datagram(&mut a, 1.03, 40000, 53, true, &later_answer);
    a.drain();
    let r = &a.flows.finished[0];
    assert_eq!((&*r.protocol, r.packets_c2s, r.packets_s2c), ("dns", 2, 2));
    assert_eq!(r.meta["dns_rcode"], "NXDOMAIN");
    assert_eq!(
        r.meta["dns_answers"],
        serde_json::json!([]),
        "not the later answer's"
    );
    assert_eq!(
        r.meta["evidence"],
        "client bytes confirmed by the dns probe; server bytes confirmed by the dns probe"
    );
}

#[test]
fn capture_times_that_step_back_bring_a_timeout_forward() {
    let mut a = analyzer();
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80));
    a.packet(5.0, 1, &frame(TCP, c, s, ACK, 1, b""));
    a.packet(304.0, 1, &frame(TCP, s, c, ACK, 1, b""));
    // The sweep at 305 finds the flow active at 304: its next look is at 604.
    datagram(&mut a, 305.5, 4000, 9999, false, b"t");
    // The server's side steps back to 6: the flow's last packet is now at 6, due at 306.
    a.packet(6.0, 1, &frame(TCP, s, c, ACK, 1, b""));
    datagram(&mut a, 305.9, 4000, 9999, false, b"t");
    assert!(ended(&a).is_empty());
    datagram(&mut a, 306.5, 4000, 9999, false, b"t"); // the sweep at 306: 306 - 6 >= 300
    assert_eq!(ended(&a), vec![(40000, "idle".to_string())]);
}

#[test]
fn capture_times_that_step_back_every_packet_keep_the_timer_queue_bounded() {
    let mut a = analyzer();
    for i in 0..20_000u32 {
        // Three flows; every other packet 1,000 s earlier than the one before.
        let ts = 1.0e9 + f64::from(i) * 0.001 - if i % 2 == 1 { 1000.0 } else { 0.0 };
        datagram(&mut a, ts, 3000 + (i % 3) as u16, 9999, i % 6 >= 3, b"x");
    }
    let live = a.flows.table.len();
    assert_eq!(live, 3);
    assert!(a.flows.table.timer_entries() <= 3 * live + 64 + 1);
}

type Endpoint = ([u8; 4], u16);

/// An analyzer that has seen the SYN and SYN-ACK of 10.0.0.1:40000 -> 10.0.0.2:`port`
/// (client ISN 1000, server 5000), and the two endpoints.
fn syn_and_syn_ack(port: u16) -> (Analyzer, Endpoint, Endpoint) {
    let mut a = analyzer();
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], port));
    a.packet(1.0, 1, &frame(TCP, c, s, SYN, 1000, b""));
    a.packet(1.1, 1, &frame(TCP, s, c, SYN | ACK, 5000, b""));
    (a, c, s)
}

/// (inspecting, facts frozen, freezing would give memory back) of the first flow.
fn facts_state(a: &Analyzer) -> (bool, bool, bool) {
    let (id, _) = a.flows.table.ids_in_order()[0];
    let f = a.flows.table.get(id);
    (f.inspecting, f.meta.is_frozen(), f.meta.would_shrink())
}

/// A classified flow still inspected keeps its facts frozen: what later bytes add goes on
/// the end of the buffer, and no decoded copy is left behind.
#[test]
fn a_classified_flows_facts_stay_frozen_while_it_is_inspected() {
    let (mut a, c, s) = syn_and_syn_ack(80);
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    a.packet(1.2, 1, &frame(TCP, c, s, PSH | ACK, 1001, get));
    let (id, _) = a.flows.table.ids_in_order()[0];
    assert_eq!(
        facts_state(&a),
        (true, true, false),
        "frozen at the verdict"
    );
    // A second request is read against the frozen facts, a value at a time.
    let more = b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
    let seq = 1001 + get.len() as u32;
    a.packet(1.3, 1, &frame(TCP, c, s, PSH | ACK, seq, more));
    assert_eq!(facts_state(&a), (true, true, false));
    // The server's answer adds its facts and settles HTTP's: inspection ends.
    let ok = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 0\r\n\r\n";
    a.packet(1.4, 1, &frame(TCP, s, c, PSH | ACK, 5001, ok));
    assert_eq!(facts_state(&a), (false, true, false));
    let meta = a.flows.table.get(id).meta.to_meta();
    assert_eq!(meta.get("http_status"), Some(&Value::from(200)));
    assert_eq!(meta.get("http_host"), Some(&Value::from("x")));
    assert!(meta.contains_key("client_head") && meta.contains_key("server_head"));
}

/// A flow whose server spoke first: the client's facts, when they come, go on the end of
/// the frozen facts without thawing them.
#[test]
fn the_other_sides_facts_join_the_frozen_ones() {
    let (mut a, c, s) = syn_and_syn_ack(22);
    a.packet(
        1.2,
        1,
        &frame(TCP, s, c, PSH | ACK, 5001, b"SSH-1.99-OpenSSH_3.9p1\r\n"),
    );
    let (id, _) = a.flows.table.ids_in_order()[0];
    assert_eq!(facts_state(&a), (true, true, false));
    let client = b"SSH-2.0-OpenSSH_9.2p1\r\n";
    a.packet(1.3, 1, &frame(TCP, c, s, PSH | ACK, 1001, client));
    assert_eq!(
        facts_state(&a),
        (true, true, false),
        "the client's facts frozen in"
    );
    let meta = a.flows.table.get(id).meta.to_meta();
    assert_eq!(meta.get("ssh_protoversion"), Some(&Value::from("2.0")));
    assert_eq!(
        meta.get("ssh_protoversion_server"),
        Some(&Value::from("1.99"))
    );
}

#[test]
fn a_flow_holds_inspection_buffers_only_from_its_first_payload() {
    // Most open flows of a busy link are in their handshake or never carry data: they
    // hold no buffers. The SYN's sequence number still places the first data at offset 0.
    let mut a = analyzer();
    let (c, s) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80));
    let held = |a: &Analyzer| {
        let (id, _) = a.flows.table.ids_in_order()[0];
        let f = a.flows.table.get(id);
        (f.inspecting, f.buffers.is_some(), f.units_of(0).concat())
    };
    a.packet(1.0, 1, &frame(TCP, c, s, SYN, 1000, b""));
    a.packet(1.1, 1, &frame(TCP, s, c, SYN | ACK, 5000, b""));
    a.packet(1.2, 1, &frame(TCP, c, s, ACK, 1001, b""));
    assert_eq!(held(&a), (true, false, vec![]));
    // The first segment arrives after the second: held out of order, then joined.
    a.packet(
        1.3,
        1,
        &frame(TCP, c, s, PSH | ACK, 1005, b"/ HTTP/1.1\r\n"),
    );
    assert_eq!(held(&a), (true, true, vec![]));
    a.packet(1.4, 1, &frame(TCP, c, s, PSH | ACK, 1001, b"GET "));
    assert_eq!(held(&a), (true, true, b"GET / HTTP/1.1\r\n".to_vec()));
    a.drain();
    let recs = std::mem::take(&mut a.flows.finished);
    assert_eq!(&*recs[0].protocol, "http");
}

#[test]
fn a_reopened_flow_does_not_hold_up_the_release_of_others() {
    // Flow A: RST, then data (the RST was not honoured), then RST again at 2.5; flow B
    // closes at 1.5 behind A's first entry. B is due at 3.5 whatever A does.
    let mut a = analyzer();
    let (ca, cb, s) = (
        ([10, 0, 0, 1], 1000),
        ([10, 0, 0, 3], 1001),
        ([10, 0, 0, 2], 80),
    );
    a.packet(1.0, 1, &frame(TCP, ca, s, RST, 1, b""));
    a.packet(1.2, 1, &frame(TCP, ca, s, PSH | ACK, 1, b"x"));
    a.packet(1.5, 1, &frame(TCP, cb, s, RST, 1, b""));
    a.packet(2.5, 1, &frame(TCP, ca, s, RST, 2, b""));
    a.packet(3.6, 1, &frame(TCP, ([10, 0, 0, 9], 5), s, ACK, 1, b""));
    let ended: Vec<u16> = a.flows.finished.iter().map(|r| r.src_port).collect();
    assert_eq!(ended, vec![1001]);
}

type Packet<'a> = (f64, bool, u8, &'a [u8]);

const SSH_CLIENT: Endpoint = ([10, 0, 0, 1], 40000);
const SSH_SERVER: Endpoint = ([10, 0, 0, 2], 22);

/// An SSH connection's handshake and banners (`SSH_CLIENT` to `SSH_SERVER`), by t=1.4.
const SSH_OPENING: [Packet<'static>; 5] = [
    (1.0, true, SYN, b""),
    (1.1, false, SYN | ACK, b""),
    (1.2, true, ACK, b""),
    (1.3, false, PSH | ACK, b"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n"),
    (1.4, true, PSH | ACK, b"SSH-2.0-OpenSSH_9.6\r\n"),
];

/// `packets` between `SSH_CLIENT` and `SSH_SERVER` into `a`, each direction's sequence numbers
/// going on from `seq`.
fn play(a: &mut Analyzer, seq: &mut [u32; 2], packets: &[Packet<'_>]) {
    for &(ts, from_client, flags, payload) in packets {
        let d = usize::from(!from_client);
        let (src, dst) = if from_client {
            (SSH_CLIENT, SSH_SERVER)
        } else {
            (SSH_SERVER, SSH_CLIENT)
        };
        a.packet(ts, 1, &frame(TCP, src, dst, flags, seq[d], payload));
        seq[d] = seq[d].wrapping_add(payload.len() as u32 + u32::from(flags & SYN != 0));
    }
}

/// The SSH connection's opening and a few encrypted packets, quiet from t=3 on; then `after`,
/// its packets at t=400 and later. The records, in the order they ended.
fn ssh_session_then(after: &[Packet<'_>]) -> Vec<FlowRecord> {
    let (k1, k2, k3) = (noise(300, 1), noise(600, 2), noise(80, 3));
    let mut a = analyzer();
    let mut seq = [1000u32, 5000u32];
    play(&mut a, &mut seq, &SSH_OPENING);
    play(
        &mut a,
        &mut seq,
        &[
            (1.5, true, PSH | ACK, &k1),
            (1.6, false, PSH | ACK, &k2),
            (3.0, true, PSH | ACK, &k3),
        ],
    );
    play(&mut a, &mut seq, after);
    a.drain();
    std::mem::take(&mut a.flows.finished)
}

#[test]
fn a_connection_that_speaks_again_after_its_idle_timeout_continues_its_flow() {
    let (a, b) = (noise(48, 4), noise(96, 5));
    // The server speaks first after the silence: the bytes alone would make it the client.
    let recs = ssh_session_then(&[(400.0, false, PSH | ACK, &b), (400.1, true, PSH | ACK, &a)]);
    assert_eq!(recs.len(), 2);
    let (first, next) = (&recs[0], &recs[1]);
    assert_eq!(
        (&*first.protocol, first.meta.get("end_reason")),
        ("ssh", Some(&Value::from("idle")))
    );
    assert_eq!(&*next.protocol, "ssh");
    assert_eq!(next.confidence, first.confidence);
    assert_eq!((next.src_port, next.dst_port), (40000, 22));
    assert_eq!((next.packets_c2s, next.packets_s2c), (1, 1));
    assert_eq!(next.orientation, "inferred");
    assert_eq!(next.meta.get("resumes"), Some(&Value::from(first.flow_id)));
    let evidence = next
        .meta
        .get("evidence")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        evidence.starts_with(&format!(
            "resumes flow {} after 397 s of silence (",
            first.flow_id
        )),
        "{evidence}"
    );
    assert_eq!(next.community_id, first.community_id);
}

#[test]
fn a_syn_after_the_silence_is_a_new_connection_classified_afresh() {
    let recs = ssh_session_then(&http_exchange(400.0));
    assert_eq!(recs.len(), 2);
    assert_eq!(&*recs[1].protocol, "http");
    assert_eq!(recs[1].orientation, "handshake");
    assert!(recs[1].meta.get("resumes").is_none());
}

#[test]
fn only_a_classified_flow_is_continued_and_only_within_the_horizon() {
    // Noise throughout: the first flow is unknown, and so is what follows it.
    let (n1, n2) = (noise(500, 6), noise(500, 7));
    let recs = run(
        TCP,
        9000,
        &[(1.0, true, PSH | ACK, &n1), (400.0, true, PSH | ACK, &n2)],
    );
    assert_eq!(recs.len(), 2);
    assert!(recs
        .iter()
        .all(|r| &*r.protocol == "unknown" && r.meta.get("resumes").is_none()));
    // An hour and more of silence: too long to take for the same connection.
    let late = noise(64, 8);
    let recs = ssh_session_then(&[(
        3.0 + crate::flow::resume::RESUME_WITHIN + 1.0,
        true,
        PSH | ACK,
        &late,
    )]);
    assert_eq!(recs.len(), 2);
    assert!(recs[1].meta.get("resumes").is_none());
}

#[test]
fn the_monitor_hears_of_a_continued_flow_at_its_first_packet() {
    let mut a = analyzer();
    a.flows.report_classified = true;
    let mut seq = [1000u32, 5000u32];
    play(&mut a, &mut seq, &SSH_OPENING);
    let first: Vec<_> = std::mem::take(&mut a.flows.classified);
    assert_eq!(
        first.iter().map(|r| &*r.protocol).collect::<Vec<_>>(),
        ["ssh"]
    );
    play(
        &mut a,
        &mut seq,
        &[(400.0, false, PSH | ACK, &noise(64, 3))],
    );
    let then: Vec<_> = std::mem::take(&mut a.flows.classified);
    assert_eq!(then.len(), 1);
    assert_eq!(&*then[0].protocol, "ssh");
    assert_eq!(
        then[0].meta.get("resumes"),
        Some(&Value::from(first[0].flow_id))
    );
    assert_eq!(a.flows.finished.len(), 1, "the first flow ended idle");
}

#[test]
fn a_flow_evicted_from_a_full_table_is_continued_by_its_next_packet() {
    let config = Config {
        max_flows: 8,
        ..Config::default()
    };
    let mut a = Analyzer::new(
        config,
        analyzer().flows.engine,
        Arc::new(KnownPorts::default()),
        None,
    );
    let mut seq = [1000u32, 5000u32];
    play(&mut a, &mut seq, &SSH_OPENING);
    // Eight other flows fill the table: the SSH flow, the oldest, is evicted.
    for port in 0..8u16 {
        datagram(&mut a, 2.0, 50000 + port, 9999, false, b"x");
    }
    assert_eq!(ended(&a), vec![(40000, "evicted".to_owned())]);
    play(&mut a, &mut seq, &[(2.5, true, PSH | ACK, &noise(64, 9))]);
    a.drain();
    let next = a
        .flows
        .finished
        .iter()
        .find(|r| r.src_port == 40000 && r.flow_id != a.flows.finished[0].flow_id);
    let next = next.expect("the continuation's record");
    assert_eq!(&*next.protocol, "ssh");
    assert_eq!(
        next.meta.get("resumes"),
        Some(&Value::from(a.flows.finished[0].flow_id))
    );
}

/// The SSH connection's opening, ended idle by a datagram of another flow at 350 s; the
/// sequence numbers the connection goes on with.
fn ssh_opening_ended_idle(a: &mut Analyzer) -> [u32; 2] {
    let mut seq = [1000u32, 5000u32];
    play(a, &mut seq, &SSH_OPENING);
    datagram(a, 350.0, 4000, 9999, false, b"t");
    assert_eq!(ended(a), vec![(40000, "idle".to_owned())]);
    seq
}

#[test]
fn a_reload_keeps_the_verdicts_to_continue_whose_signatures_it_keeps() {
    let position = |e: &Engine| e.signatures().iter().position(|s| &*s.protocol == "ssh");
    let shipped = position(&analyzer().flows.engine);
    // A set without one that sorts before ssh numbers ssh one lower; and a set without ssh.
    let without_amqp: Vec<(&str, &str)> = BUILTIN
        .iter()
        .copied()
        .filter(|(n, _)| *n != "amqp.toml")
        .collect();
    assert_eq!(
        without_amqp.len() + 1,
        BUILTIN.len(),
        "amqp.toml is shipped"
    );
    let without_ssh: Vec<(&str, &str)> = BUILTIN
        .iter()
        .copied()
        .filter(|(n, _)| *n != "ssh.toml")
        .collect();
    assert_eq!(without_ssh.len() + 1, BUILTIN.len(), "ssh.toml is shipped");
    for (files, continued_as) in [(without_amqp, "ssh"), (without_ssh, "unknown")] {
        let mut a = analyzer();
        let mut seq = ssh_opening_ended_idle(&mut a);
        let engine = Arc::new(Engine::new(
            load_texts_and(&files, &[]).expect("signatures load"),
            Default::default(),
        ));
        a.flows
            .set_engine(Arc::clone(&engine), Arc::new(KnownPorts::default()));
        play(&mut a, &mut seq, &[(400.0, true, PSH | ACK, &noise(64, 3))]);
        let live = a.flows.table.ids_in_order();
        let continued = live
            .iter()
            .map(|&(id, _)| a.flows.table.get(id))
            .find(|f| f.is_tcp())
            .expect("live");
        let sig = continued.decision.as_deref().and_then(Verdict::sig);
        assert_eq!(
            sig,
            position(&engine),
            "the new set's number for ssh, or none"
        );
        if continued_as == "ssh" {
            assert_eq!(sig, shipped.map(|i| i - 1), "one lower");
        }
        a.drain();
        let next = &a.flows.finished[2];
        assert_eq!(&*next.protocol, continued_as);
        assert_eq!(next.meta.get("resumes").is_some(), continued_as == "ssh");
    }
}
