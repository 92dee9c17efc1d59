//! Issue 19, "Detection, second round": the shipped signatures on real bytes (tests/data/real,
//! the committed vectors) and on messages built byte by byte from each specification, with
//! near-misses (another protocol's real bytes that must not match).
use _core::detect::engine::{Decision, Engine};
use _core::detect::signature::{load_dirs, Transport};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn engine() -> Engine {
    let sigs = load_dirs(&root().join("signatures"), &[]).unwrap_or_else(|e| panic!("{e:#?}"));
    Engine::new(sigs, HashMap::new())
}

fn real(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/data/real").join(name)).expect("real bytes")
}

/// The final call on a TCP flow (the end of the evidence), handshake orientation.
fn tcp(e: &Engine, client: &[u8], server: &[u8], port: u16) -> Decision {
    let c: Vec<&[u8]> = if client.is_empty() {
        vec![]
    } else {
        vec![client]
    };
    let s: Vec<&[u8]> = if server.is_empty() {
        vec![]
    } else {
        vec![server]
    };
    e.classify(Transport::Tcp, &c, &s, port, false, true, Some(40000))
        .expect("final decision")
}

fn udp(e: &Engine, client: &[u8], port: u16) -> Decision {
    e.classify(
        Transport::Udp,
        &[client],
        &[],
        port,
        false,
        true,
        Some(40001),
    )
    .expect("final decision")
}

// ---- 1. weak evidence never beats strong evidence or the port's assignment ----

#[test]
fn bare_quit_is_not_redis_on_ftp_or_smtp_ports() {
    let e = engine();
    for port in [21, 25] {
        assert_ne!(
            tcp(&e, b"QUIT\r\n", b"", port).protocol.as_ref(),
            "redis",
            "port {port}"
        );
    }
    // With the server's bare 220 greeting the port's own protocol wins.
    assert_eq!(
        tcp(&e, b"QUIT\r\n", b"220 ready\r\n", 21).protocol.as_ref(),
        "ftp"
    );
    assert_eq!(
        tcp(&e, b"QUIT\r\n", b"220 ready\r\n", 25).protocol.as_ref(),
        "smtp"
    );
    // On Redis' own port the same token is enough at the end of the evidence.
    assert_eq!(tcp(&e, b"QUIT\r\n", b"", 6379).protocol.as_ref(), "redis");
    // Off any port, one weak side alone is no verdict.
    assert_eq!(
        tcp(&e, b"QUIT\r\n", b"", 40123).protocol.as_ref(),
        "unknown"
    );
}

#[test]
fn bare_ok_is_not_pop3_when_the_client_spoke_redis() {
    let e = engine();
    for cmd in [
        &b"SET portwatch:key hello\r\n"[..],
        b"*3\r\n$3\r\nSET\r\n$13\r\nportwatch:key\r\n$5\r\nhello\r\n",
    ] {
        for port in [6379, 7000, 110] {
            assert_eq!(
                tcp(&e, cmd, b"+OK\r\n", port).protocol.as_ref(),
                "redis",
                "{port}"
            );
        }
    }
    // A real POP3 greeting and CAPA stay POP3 (near-miss the other way).
    let d = tcp(&e, b"CAPA\r\n", b"+OK Dovecot ready.\r\n", 110);
    assert_eq!(d.protocol.as_ref(), "pop3");
    assert_eq!(
        tcp(&e, b"CAPA\r\n", b"+OK Dovecot ready.\r\n", 7000)
            .protocol
            .as_ref(),
        "pop3"
    );
}

#[test]
fn auth_gssapi_does_not_beat_an_ftp_banner() {
    let e = engine();
    // RFC 2228 AUTH GSSAPI after a multi-line 220 (RFC 959 4.2) that names FTP on its last line.
    let banner = b"220-Welcome to the archive\r\n220-Local time is 12:00\r\n220 GridFTP Server 6.0 ready\r\n";
    for port in [21, 2811, 40000] {
        let d = tcp(&e, b"AUTH GSSAPI\r\n", banner, port);
        assert_eq!(d.protocol.as_ref(), "ftp", "port {port}");
    }
    assert_eq!(
        tcp(
            &e,
            b"AUTH GSSAPI\r\n",
            b"220 ftp.example.test FTP server ready\r\n",
            21
        )
        .protocol
        .as_ref(),
        "ftp"
    );
    // A bare AUTH alone on POP3's port is still POP3's (its own port), never elsewhere.
    assert_ne!(
        tcp(&e, b"AUTH PLAIN\r\n", b"", 40000).protocol.as_ref(),
        "pop3"
    );
}

// ---- 2. variants ----

#[test]
fn http09_and_versionless_request_lines() {
    let e = engine();
    let page = b"<html><head><title>x</title></head><body>hello</body></html>\n";
    assert_eq!(tcp(&e, b"GET /\r\n", page, 80).protocol.as_ref(), "http");
    assert_eq!(
        tcp(&e, b"GET /index.html\n", page, 8081).protocol.as_ref(),
        "http"
    );
    assert_eq!(
        tcp(
            &e,
            b"GET http://www.example.test/\r\n",
            b"<!DOCTYPE html>\n<html>",
            3128
        )
        .protocol
        .as_ref(),
        "http"
    );
    // Near-miss: memcached's lowercase get is memcached's.
    assert_eq!(
        tcp(
            &e,
            b"get portwatch:key\r\n",
            b"VALUE portwatch:key 0 5\r\nhello\r\nEND\r\n",
            11211
        )
        .protocol
        .as_ref(),
        "memcached"
    );
}

#[test]
fn redis_resp3_integer_replies_and_inline_commands() {
    let e = engine();
    let replies: [&[u8]; 12] = [
        b"%2\r\n+server\r\n+redis\r\n+version\r\n+7.2.4\r\n",
        b"~2\r\n+a\r\n+b\r\n",
        b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n",
        b">3\r\n+message\r\n+chan\r\n+hello\r\n",
        b",3.141592653589793\r\n",
        b"(3492890328409238509324850943850943825024385\r\n",
        b"=15\r\ntxt:Some string\r\n",
        b"_\r\n+OK\r\n",
        b":1000\r\n",
        b"#t\r\n:1\r\n",
        b"$5\r\nhello\r\n",
        b"*2\r\n:1\r\n:2\r\n",
    ];
    for r in replies {
        // HELLO 3 (RESP3 handshake) is a weak inline token; the typed reply corroborates it.
        let d = tcp(&e, b"HELLO 3\r\n", r, 7000);
        assert_eq!(
            d.protocol.as_ref(),
            "redis",
            "{}",
            String::from_utf8_lossy(r)
        );
        let d = tcp(&e, b"*1\r\n$4\r\nPING\r\n", r, 6379);
        assert_eq!(d.protocol.as_ref(), "redis");
    }
    assert_eq!(
        tcp(&e, b"DEL portwatch:key\r\n", b":1\r\n", 7000)
            .protocol
            .as_ref(),
        "redis"
    );
    assert_eq!(
        tcp(&e, b"INCR counter\r\n", b":1\r\n", 6379)
            .protocol
            .as_ref(),
        "redis"
    );
    // Near-miss: an HTTP request with an odd target is never a Redis inline command.
    assert_eq!(
        tcp(
            &e,
            b"GET x HTTP/1.1\r\nHost: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            6379
        )
        .protocol
        .as_ref(),
        "http"
    );
}

#[test]
fn kerberos_tcp_first_segment_holds_only_the_record_mark() {
    let e = engine();
    let asreq = real("kerberos-asreq-tcp.bin");
    for cut in [4, 5, 6, 8, 10] {
        let d = tcp(&e, &asreq[..cut], b"", 88);
        assert_eq!(d.protocol.as_ref(), "kerberos", "cut {cut}");
    }
    assert_eq!(tcp(&e, &asreq, b"", 88).protocol.as_ref(), "kerberos");
    // The mark's length must fit the outer element's once its header is there.
    let mut bad = asreq[..10].to_vec();
    bad[3] = bad[3].wrapping_add(7);
    assert_ne!(tcp(&e, &bad, b"", 88).protocol.as_ref(), "kerberos");
    // Near-miss: four bytes of length are no evidence off Kerberos' ports, and other
    // length-prefixed protocols' real bytes on 88 are not Kerberos.
    assert_ne!(
        tcp(&e, &asreq[..4], b"", 40000).protocol.as_ref(),
        "kerberos"
    );
    assert_ne!(
        tcp(&e, &real("mongodb-hello.bin"), b"", 88)
            .protocol
            .as_ref(),
        "kerberos"
    );
    assert_ne!(
        tcp(&e, &real("ldap-bind.bin"), b"", 88).protocol.as_ref(),
        "kerberos"
    );
}

#[test]
fn unicast_dns_to_5353_is_dns_not_mdns() {
    let e = engine();
    // dig +norec off: ID 0x6e39, flags 0x0120 (RD, AD), www.example.test A with an EDNS cookie
    // (the first input of the engine vectors, a real query).
    let q = const_hex::decode("6e390120000100000000000103777777076578616d706c650474657374000001000100002904d000000000000c000a000810c1ed3dd40f7891").unwrap();
    assert_eq!(udp(&e, &q, 5353).protocol.as_ref(), "dns");
    // A real mDNS query stays mDNS, including a legacy one-shot query for a .local name.
    assert_eq!(
        udp(&e, &real("mdns-query.bin"), 5353).protocol.as_ref(),
        "mdns"
    );
    let mut multicast = real("mdns-query.bin");
    multicast[..4].copy_from_slice(&[0, 0, 0, 0]);
    assert_eq!(udp(&e, &multicast, 5353).protocol.as_ref(), "mdns");
}

#[test]
fn bgp_open_and_keepalive() {
    let e = engine();
    // RFC 4271 4.2: marker, length 29, type 1, version 4, AS 65001, hold 90, BGP id, no options.
    let mut open = vec![0xff; 16];
    open.extend_from_slice(&[
        0x00, 0x1d, 0x01, 0x04, 0xfd, 0xe9, 0x00, 0x5a, 10, 0, 0, 1, 0x00,
    ]);
    let mut keepalive = vec![0xff; 16];
    keepalive.extend_from_slice(&[0x00, 0x13, 0x04]);
    assert_eq!(tcp(&e, &open, &open, 179).protocol.as_ref(), "bgp");
    assert_eq!(tcp(&e, &keepalive, b"", 179).protocol.as_ref(), "bgp");
    // Near-miss: a TLS ClientHello on 179 is TLS.
    let tls = vectors_inputs("tls")
        .into_iter()
        .find(|(b, m)| *m && b.first() == Some(&0x16))
        .expect("a tls vector")
        .0;
    assert_ne!(tcp(&e, &tls, b"", 179).protocol.as_ref(), "bgp");
}

#[test]
fn sip_and_syslog_over_tcp_and_xmpp_headers() {
    let e = engine();
    let invite = b"INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/TCP client.example.test:5060;branch=z9hG4bK776asdhds\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        tcp(&e, invite, b"SIP/2.0 100 Trying\r\n", 5060)
            .protocol
            .as_ref(),
        "sip"
    );
    // RFC 6587 3.4.1 octet counting: MSG-LEN SP SYSLOG-MSG.
    let framed = b"73 <34>1 2024-01-01T00:00:00Z host app - - - su root failed on /dev/pts/8";
    assert_eq!(tcp(&e, framed, b"", 601).protocol.as_ref(), "syslog");
    assert_eq!(tcp(&e, framed, b"", 6514).protocol.as_ref(), "syslog");
    let stream = b"<?xml version='1.0'?><stream:stream to='example.test' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";
    assert_eq!(tcp(&e, stream, b"", 5222).protocol.as_ref(), "xmpp");
}

// ---- 3. too loose: two or three bytes of evidence on UDP ----

/// (bytes, matched) of a probe's committed vectors.
fn vectors_inputs(probe: &str) -> Vec<(Vec<u8>, bool)> {
    let path = root()
        .join("core/tests/vectors")
        .join(format!("{probe}.jsonl"));
    let text = std::fs::read_to_string(path).expect("vectors");
    text.lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            let b = const_hex::decode(v["input"].as_str()?).ok()?;
            Some((b, v["status"] == "match"))
        })
        .collect()
}

#[test]
fn tftp_needs_a_request_not_two_bytes() {
    // RFC 1350: opcode, a NUL-terminated file name and a NUL-terminated mode.
    let e = engine();
    assert_eq!(
        udp(&e, b"\x00\x01pxelinux.0\x00octet\x00", 69)
            .protocol
            .as_ref(),
        "tftp"
    );
    assert_eq!(
        udp(&e, b"\x00\x02boot.cfg\x00NetASCII\x00", 69)
            .protocol
            .as_ref(),
        "tftp"
    );
    assert_ne!(
        udp(&e, b"\x00\x01pxelinux.0\x00binary\x00", 69)
            .protocol
            .as_ref(),
        "tftp"
    );
    // A DATA block alone (four bytes of structure) is no verdict, least of all on 443.
    let mut data = b"\x00\x03\x00\x01".to_vec();
    data.extend(std::iter::repeat_n(0xa5u8, 512));
    assert_ne!(udp(&e, &data, 443).protocol.as_ref(), "tftp");
    assert_ne!(udp(&e, &data, 40000).protocol.as_ref(), "tftp");
}

/// Every UDP signature whose evidence is a few bytes, against the real UDP inputs of other
/// protocols (the committed probe vectors), on 443 and on an unassigned port.
#[test]
fn short_udp_signatures_never_take_other_protocols_traffic() {
    let e = engine();
    let short = [
        "tftp", "ptp", "xdmcp", "iax", "slp", "gtp", "ldp", "dcerpc", "coap", "rtp", "rtcp",
    ];
    let sources = [
        ("quic", "quic"),
        ("dns", "dns"),
        ("stun", "stun"),
        ("ntp", "ntp"),
        ("snmp", "snmp"),
        ("wireguard", "wireguard"),
        ("openvpn", "openvpn"),
        ("dtls", "dtls"),
        ("dhcp", "dhcp"),
        ("kerberos", "kerberos"),
        ("ike", "ipsec"),
        ("netbios_ns", "netbios"),
        ("bacnet", "bacnet"),
    ];
    let mut bad = Vec::new();
    for (probe, proto) in sources {
        for (bytes, matched) in vectors_inputs(probe) {
            if !matched || bytes.len() < 8 {
                continue;
            }
            for port in [443, 40000] {
                let d = udp(&e, &bytes, port);
                if d.protocol.as_ref() != proto && short.contains(&d.protocol.as_ref()) {
                    bad.push(format!(
                        "{probe} input on {port} -> {}",
                        d.protocol.as_ref()
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
