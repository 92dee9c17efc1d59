//! DCE/RPC's endpoint mapper (C706 appendix L, MS-RPCE 2.2.1.2): an `ept_map`/`ept_lookup`
//! response names, in each protocol tower, where an interface listens. A tower's floors are
//! (left-hand side, right-hand side) pairs, each a little-endian length and bytes (C706
//! appendix L.2); the ones that say where are floor 4, protocol 0x07 (TCP) with the port
//! big-endian, and floor 5, protocol 0x09 (IP) with the IPv4 address. Those two floors side by
//! side are what this looks for, in a connection-oriented response PDU from the mapper; the
//! client then connects there, and its connection is `dcerpc` announced by this flow.
use super::{tcp, Announced, Owner};
use crate::decode::Addr;

/// Floor 4 of an ncacn_ip_tcp tower: one byte of protocol (TCP), two of port.
const TCP_FLOOR: [u8; 5] = [0x01, 0x00, 0x07, 0x02, 0x00];
/// Floor 5: one byte of protocol (IP), four of address.
const IP_FLOOR: [u8; 5] = [0x01, 0x00, 0x09, 0x04, 0x00];
/// A connection-oriented PDU: version 5, type response.
const RESPONSE: u8 = 2;
/// The endpoint mapper's own port (C706 appendix I).
const MAPPER_PORT: u16 = 135;

pub fn announced(bytes: &[u8], from_client: bool) -> Vec<Announced> {
    let mut out = Vec::new();
    if from_client || bytes.first() != Some(&5) || bytes.get(2) != Some(&RESPONSE) {
        return out;
    }
    let mut at = 0;
    while let Some(found) = memchr::memmem::find(&bytes[at..], &TCP_FLOOR) {
        let floor = at + found;
        at = floor + TCP_FLOOR.len();
        let Some(&[hi, lo]) = bytes.get(at..at + 2) else {
            break;
        };
        let ip_floor = at + 2;
        if bytes.get(ip_floor..ip_floor + IP_FLOOR.len()) != Some(&IP_FLOOR[..]) {
            continue;
        }
        let Some(&[a, b, c, d]) =
            bytes.get(ip_floor + IP_FLOOR.len()..ip_floor + IP_FLOOR.len() + 4)
        else {
            break;
        };
        let port = u16::from_be_bytes([hi, lo]);
        // An ept_lookup answer lists the mapper's own registration too: its port is the
        // well-known one, and a client coming back there is a new call, not an announced one.
        if port == 0 || port == MAPPER_PORT {
            continue;
        }
        // 0.0.0.0: "this host", the mapper's own address.
        let ip = (u32::from_be_bytes([a, b, c, d]) != 0).then_some(Addr::V4([a, b, c, d]));
        out.push(Announced {
            ip,
            port,
            proto: tcp(),
            protocol: "dcerpc",
            by: "epm",
            owner: Owner::Sender,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response PDU's header, then stub bytes holding one ncacn_ip_tcp tower's last floors.
    fn response(port: u16, ip: [u8; 4]) -> Vec<u8> {
        let mut pdu = vec![5, 0, RESPONSE, 3, 0x10, 0, 0, 0, 0x9c, 0, 0, 0, 3, 0, 0, 0];
        pdu.extend_from_slice(&[0; 40]);
        // floor 3: RPC connection-oriented (0x0b), minor version 0
        pdu.extend_from_slice(&[0x01, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00]);
        pdu.extend_from_slice(&TCP_FLOOR);
        pdu.extend_from_slice(&port.to_be_bytes());
        pdu.extend_from_slice(&IP_FLOOR);
        pdu.extend_from_slice(&ip);
        pdu.extend_from_slice(&[0; 4]);
        pdu
    }

    #[test]
    fn an_ept_map_answer_names_the_interfaces_port() {
        let got = announced(&response(49152, [10, 77, 0, 1]), false);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].ip, got[0].port, got[0].protocol, got[0].by),
            (Some(Addr::V4([10, 77, 0, 1])), 49152, "dcerpc", "epm")
        );
        // The unspecified address is the mapper's own.
        assert_eq!(announced(&response(1025, [0; 4]), false)[0].ip, None);
    }

    #[test]
    fn only_a_response_from_the_mapper_announces() {
        let pdu = response(49152, [10, 77, 0, 1]);
        assert!(announced(&pdu, true).is_empty());
        let mut request = pdu.clone();
        request[2] = 0;
        assert!(announced(&request, false).is_empty());
        // A TCP floor with no IP floor after it, and port 0.
        let mut cut = pdu.clone();
        let len = cut.len();
        cut.truncate(len - 10);
        assert!(announced(&cut, false).is_empty());
        assert!(announced(&response(0, [10, 77, 0, 1]), false).is_empty());
        // The mapper's own tower, as an ept_lookup answer lists it.
        assert!(announced(&response(135, [10, 77, 0, 1]), false).is_empty());
    }
}
