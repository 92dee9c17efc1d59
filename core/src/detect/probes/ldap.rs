//! LDAP (RFC 4511) and CLDAP: LDAPMessage ::= SEQUENCE { messageID, protocolOp, ... }.
//!
//! The first message of a TCP stream or one UDP datagram. The message ID is a small non-negative
//! INTEGER and the operation an application tag the direction may send (requests from the
//! client, responses from the server).
//!
//! Meta: `ldap_op` ("bind", "search", "extended"...), `ldap_bind_dn` (sanitised),
//! `cleartext_login` when a bind request carries a non-empty simple password, `ldap_starttls`
//! when an extended request names the StartTLS OID. The credentials are never stored: for a bind
//! request the probe gives `client_head` itself, the message's bytes up to its authentication,
//! which the flow's own head (its first 32 bytes) would otherwise run into after a short DN.
#![forbid(unsafe_code)]

use super::ber::{read_int, read_octets, read_tlv};
use super::{Probe, ProbeResult};
use crate::flow::slot::HEAD_BYTES;
use crate::meta::{json, Meta};
use crate::text::{clean_text, hex};

pub static PROBES: &[Probe] = &[Probe::single("ldap", probe).answers(answers!["ldap_op"])];

const BIND_REQUEST: u8 = 0x60;
const EXTENDED_REQUEST: u8 = 0x77;
/// AuthenticationChoice `simple [0] OCTET STRING`.
const AUTH_SIMPLE: u8 = 0x80;
/// ExtendedRequest `requestName [0] LDAPOID`.
const REQUEST_NAME: u8 = 0x80;
const STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";

fn request_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0x60 => "bind",
        0x42 => "unbind",
        0x63 => "search",
        0x66 => "modify",
        0x68 => "add",
        0x4a => "delete",
        0x6c => "modify-dn",
        0x6e => "compare",
        0x50 => "abandon",
        0x77 => "extended",
        _ => return None,
    })
}

fn response_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0x61 => "bind",
        0x64 => "search-entry",
        0x65 => "search-done",
        0x73 => "search-ref",
        0x67 => "modify",
        0x69 => "add",
        0x6b => "delete",
        0x6d => "modify-dn",
        0x6f => "compare",
        0x78 => "extended",
        0x79 => "intermediate",
        _ => return None,
    })
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    parse(data, from_client).map_or_else(ProbeResult::no, ProbeResult::hit)
}

fn parse(data: &[u8], from_client: bool) -> Option<Meta> {
    let outer = read_tlv(data, 0)?;
    if outer.tag != 0x30 || outer.len < 5 {
        return None;
    }
    let (msg_id, after_id) = read_int(data, outer.start)?;
    if !(0..1 << 31).contains(&msg_id) {
        return None;
    }
    let op = read_tlv(data, after_id)?;
    let name = if from_client {
        request_name(op.tag)
    } else {
        response_name(op.tag)
    }?;
    if op.end() > outer.end() {
        return None;
    }
    let mut meta = Meta::new();
    meta.insert("ldap_op".into(), json!(name));
    if from_client && op.tag == BIND_REQUEST {
        let (version, after_version) = read_int(data, op.start)?;
        if !matches!(version, 2 | 3) {
            return None;
        }
        if let Some((dn, after_dn)) = read_octets(data, after_version, 0x04) {
            meta.insert("ldap_bind_dn".into(), json!(clean_text(dn, 256)));
            let simple = read_tlv(data, after_dn).filter(|auth| auth.tag == AUTH_SIMPLE);
            if simple.is_some_and(|auth| auth.len > 0) {
                meta.insert("cleartext_login".into(), json!(true));
            }
            let head = &data[..after_dn.min(HEAD_BYTES)];
            meta.insert("client_head".into(), json!(hex(head)));
        }
    } else if from_client && op.tag == EXTENDED_REQUEST {
        let oid = read_octets(data, op.start, REQUEST_NAME).map(|(oid, _)| oid);
        if oid == Some(STARTTLS_OID) {
            meta.insert("ldap_starttls".into(), json!(true));
        }
    }
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend_from_slice(&[0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn message(id: u8, op: Vec<u8>) -> Vec<u8> {
        tlv(0x30, &[tlv(0x02, &[id]), op].concat())
    }

    /// A DN short enough that a 32-byte head would reach into the password: the head the probe
    /// gives stops where the authentication starts, simple or SASL.
    #[test]
    fn a_bind_requests_head_stops_before_the_credentials() {
        for auth in [
            tlv(0x80, b"Secr3tPassw0rd"),
            tlv(
                0xa3,
                &[tlv(0x04, b"PLAIN"), tlv(0x04, b"\0u\0Secr3t")].concat(),
            ),
        ] {
            let bind = tlv(0x60, &[tlv(0x02, &[3]), tlv(0x04, b"cn=a"), auth].concat());
            let data = message(1, bind);
            let r = probe(&data, true);
            let head = r.meta["client_head"].as_str().unwrap();
            assert_eq!(head, hex(&data[..16]));
            assert!(!head.contains(&hex(b"Secr3t")));
        }
        // A long DN: the first 32 bytes, which end inside it.
        let dn = b"cn=administrator,ou=people,dc=example,dc=org";
        let bind = tlv(
            0x60,
            &[tlv(0x02, &[3]), tlv(0x04, dn), tlv(0x80, b"pw")].concat(),
        );
        let data = message(1, bind);
        assert_eq!(
            probe(&data, true).meta["client_head"],
            hex(&data[..32]).as_str()
        );
    }

    #[test]
    fn simple_bind_request() {
        // BindRequest v3, "cn=admin,dc=example,dc=org", simple "secret" (RFC 4511 4.2).
        let bind = tlv(
            0x60,
            &[
                tlv(0x02, &[3]),
                tlv(0x04, b"cn=admin,dc=example,dc=org"),
                tlv(0x80, b"secret"),
            ]
            .concat(),
        );
        let r = probe(&message(1, bind), true);
        assert_eq!(r.meta["ldap_op"], "bind");
        assert_eq!(r.meta["ldap_bind_dn"], "cn=admin,dc=example,dc=org");
        assert_eq!(r.meta["cleartext_login"], true);
        assert_eq!(
            r.meta.keys().collect::<Vec<_>>(),
            ["ldap_op", "ldap_bind_dn", "cleartext_login", "client_head"]
        );
        let anonymous = tlv(
            0x60,
            &[tlv(0x02, &[3]), tlv(0x04, b""), tlv(0x80, b"")].concat(),
        );
        let r = probe(&message(1, anonymous), true);
        assert_eq!(r.meta["ldap_bind_dn"], "");
        assert!(!r.meta.contains_key("cleartext_login"));
        let v4 = tlv(
            0x60,
            &[tlv(0x02, &[4]), tlv(0x04, b""), tlv(0x80, b"")].concat(),
        );
        assert_eq!(probe(&message(1, v4), true).status, Status::No);
    }

    #[test]
    fn starttls_and_responses() {
        let ext = tlv(0x77, &tlv(0x80, STARTTLS_OID));
        let r = probe(&message(1, ext.clone()), true);
        assert_eq!(r.meta["ldap_op"], "extended");
        assert_eq!(r.meta["ldap_starttls"], true);
        assert_eq!(probe(&message(1, ext), false).status, Status::No);
        // BindResponse success: resultCode 0, matchedDN "", diagnosticMessage "".
        let ok = tlv(
            0x61,
            &[tlv(0x0a, &[0]), tlv(0x04, b""), tlv(0x04, b"")].concat(),
        );
        assert_eq!(
            probe(&message(1, ok.clone()), false).meta["ldap_op"],
            "bind"
        );
        assert_eq!(
            probe(&message(0x80, ok), false).status,
            Status::No,
            "negative message id"
        );
        // A search request whose operation claims more than its message holds.
        let mut search = message(2, tlv(0x63, &tlv(0x04, b"dc=example")));
        search[6] += 1;
        assert_eq!(probe(&search, true).status, Status::No);
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("ldap");
    }
}
