//! DHCP (RFC 2131) over BOOTP, and DHCPv6 (RFC 8415).
//!
//! - `dhcp`: BOOTP op 1 (request, from the client or a relay) or 2 (reply, from the server),
//!   hardware length <= 16, hops <= 16, the magic
//!   cookie 99.130.83.99 at offset 236 and an option list that ends (END or the datagram).
//! - `dhcpv6`: message type 1-13, a client's (or a relay's RELAY-FORW) from the client side and a
//!   server's (ADVERTISE, REPLY, RECONFIGURE, RELAY-REPL) from the server side; client/server messages carry a 3-byte transaction id then
//!   options that must tile the datagram exactly; relay messages a hop count and two addresses
//!   first.
//!
//! Meta: `dhcp_type` ("discover", "request", "ack"... / v6 "solicit", "reply"...),
//! `dhcp_hostname` (option 12) and `dhcp_vendor` (option 60), sanitised.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[
    Probe::single("dhcp", probe).answers(answers!["dhcp_type"]),
    Probe::single("dhcpv6", probe_v6).answers(answers!["dhcp_type"]),
];

const COOKIE: &[u8] = &[0x63, 0x82, 0x53, 0x63];
const MAX_OPTIONS: usize = 128;
const OPT_PAD: u8 = 0;
const OPT_HOSTNAME: u8 = 12;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_VENDOR_CLASS: u8 = 60;
const OPT_END: u8 = 255;

fn type_name(t: u8) -> String {
    match t {
        1 => "discover",
        2 => "offer",
        3 => "request",
        4 => "decline",
        5 => "ack",
        6 => "nak",
        7 => "release",
        8 => "inform",
        9 => "forcerenew",
        10 => "leasequery",
        13 => "leaseactive",
        other => return other.to_string(),
    }
    .into()
}

fn v6_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        1 => "solicit",
        2 => "advertise",
        3 => "request",
        4 => "confirm",
        5 => "renew",
        6 => "rebind",
        7 => "reply",
        8 => "release",
        9 => "decline",
        10 => "reconfigure",
        11 => "information-request",
        12 => "relay-forw",
        13 => "relay-repl",
        _ => return None,
    })
}

/// BOOTP's op (RFC 951): who sent the message, whichever address it was sent to.
const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;

/// DHCPv6 messages only a server (or a relay towards the client) sends (RFC 8415 7.3).
fn v6_from_server(t: u8) -> bool {
    matches!(t, 2 | 7 | 10 | 13)
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let op = if from_client { BOOTREQUEST } else { BOOTREPLY };
    if data.len() < 240
        || data[0] != op
        || data[2] > 16
        || data[3] > 16
        || data.get(236..240) != Some(COOKIE)
    {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    let mut off = 240usize;
    for _ in 0..MAX_OPTIONS {
        let Some(&code) = data.get(off) else { break };
        if code == OPT_END {
            break;
        }
        if code == OPT_PAD {
            off += 1;
            continue;
        }
        let Some(&len) = data.get(off + 1) else {
            return ProbeResult::no();
        };
        let Some(value) = data.get(off + 2..off + 2 + usize::from(len)) else {
            return ProbeResult::no();
        };
        match code {
            OPT_MESSAGE_TYPE if value.len() == 1 => {
                meta.insert("dhcp_type".into(), json!(type_name(value[0])));
            }
            OPT_HOSTNAME if !value.is_empty() => {
                meta.insert("dhcp_hostname".into(), json!(clean_text(value, 64)));
            }
            OPT_VENDOR_CLASS if !value.is_empty() => {
                meta.insert("dhcp_vendor".into(), json!(clean_text(value, 128)));
            }
            _ => {}
        }
        off += 2 + value.len();
    }
    ProbeResult::hit(meta)
}

pub fn probe_v6(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() < 4 || v6_from_server(data[0]) == from_client {
        return ProbeResult::no();
    }
    let Some(name) = v6_type_name(data[0]) else {
        return ProbeResult::no();
    };
    let relay = matches!(data[0], 12 | 13);
    // Relay messages: hop count, link and peer addresses before the options.
    if relay && (data.len() < 34 || data[1] > 32) {
        return ProbeResult::no();
    }
    let mut off = if relay { 34 } else { 4 };
    let mut count = 0usize;
    while off < data.len() {
        if count == MAX_OPTIONS {
            return ProbeResult::no();
        }
        let Some(&[c0, c1, l0, l1]) = data.get(off..off + 4) else {
            return ProbeResult::no();
        };
        let code = u16::from_be_bytes([c0, c1]);
        if code == 0 || code > 200 {
            return ProbeResult::no();
        }
        off += 4 + usize::from(u16::from_be_bytes([l0, l1]));
        count += 1;
    }
    if off != data.len() || count == 0 {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("dhcp_type".into(), json!(name));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        for name in ["dhcp", "dhcpv6"] {
            crate::detect::probes::vectors::replay(name);
        }
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        for name in ["dhcp", "dhcpv6"] {
            crate::detect::probes::vectors::never_panics(name);
        }
    }

    /// A DHCPDISCOVER (RFC 2131 2, 4.4.1): op 1, htype 1, hlen 6, xid, chaddr, the cookie, then
    /// options 53 (DISCOVER), 12 (host name), 60 (vendor class), 55 (parameter list), END.
    fn discover() -> Vec<u8> {
        let mut p = vec![0u8; 236];
        p[..4].copy_from_slice(&[1, 1, 6, 0]);
        p[4..8].copy_from_slice(&[0x39, 0x03, 0xf3, 0x26]);
        p[28..34].copy_from_slice(&[0x00, 0x0c, 0x29, 0x12, 0x34, 0x56]);
        p.extend_from_slice(COOKIE);
        p.extend_from_slice(&[53, 1, 1]);
        p.extend_from_slice(&[12, 6]);
        p.extend_from_slice(b"laptop");
        p.extend_from_slice(&[60, 8]);
        p.extend_from_slice(b"MSFT 5.0");
        p.extend_from_slice(&[55, 4, 1, 3, 6, 15, 255, 0, 0]);
        p
    }

    #[test]
    fn dhcp_discover() {
        let r = probe(&discover(), true);
        assert_eq!(
            r.meta,
            json!({"dhcp_type": "discover", "dhcp_hostname": "laptop", "dhcp_vendor": "MSFT 5.0"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // An option whose length runs past the datagram.
        let mut bad = discover();
        bad.truncate(250);
        assert_eq!(probe(&bad, true).status, Status::No);
        // Without the cookie it is plain BOOTP, not DHCP.
        let mut boot = discover();
        boot[236] = 0;
        assert_eq!(probe(&boot, true).status, Status::No);
        // BOOTP's op says who sent it: a request from the client side, a reply from the server's.
        assert_eq!(probe(&discover(), false).status, Status::No);
        let mut reply = discover();
        reply[0] = BOOTREPLY;
        assert_eq!(probe(&reply, false).status, Status::Match);
        assert_eq!(probe(&reply, true).status, Status::No);
    }

    #[test]
    fn dhcpv6_solicit_and_relay() {
        // SOLICIT (RFC 8415 16.2): xid, CLIENTID (1) with a DUID-LL, ELAPSED_TIME (8), IA_NA (3).
        let mut s = vec![1, 0x10, 0x20, 0x30];
        s.extend_from_slice(&[0, 1, 0, 10, 0, 3, 0, 1, 0x00, 0x0c, 0x29, 0x12, 0x34, 0x56]);
        s.extend_from_slice(&[0, 8, 0, 2, 0, 0]);
        s.extend_from_slice(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            probe_v6(&s, true).meta,
            json!({"dhcp_type": "solicit"})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(probe_v6(&s[..s.len() - 1], true).status, Status::No);
        // RELAY-FORW (RFC 8415 9): hop 0, link and peer address, RELAY_MSG (9) holding the SOLICIT.
        let mut r = vec![12, 0];
        r.extend_from_slice(&[0u8; 32]);
        r.extend_from_slice(&[0, 9]);
        r.extend_from_slice(&(s.len() as u16).to_be_bytes());
        r.extend_from_slice(&s);
        assert_eq!(
            probe_v6(&r, true).meta,
            json!({"dhcp_type": "relay-forw"})
                .as_object()
                .cloned()
                .unwrap()
        );
        // A client's message (and a relay's towards the server) comes from the client side; an
        // ADVERTISE or REPLY from the server side.
        assert_eq!(probe_v6(&s, false).status, Status::No);
        assert_eq!(probe_v6(&r, false).status, Status::No);
        let mut reply = s.clone();
        reply[0] = 7;
        assert_eq!(probe_v6(&reply, false).meta["dhcp_type"], "reply");
        assert_eq!(probe_v6(&reply, true).status, Status::No);
    }
}
