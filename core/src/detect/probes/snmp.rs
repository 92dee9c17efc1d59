//! SNMP (RFC 1157, 3416, 3412): a BER SEQUENCE holding version, then community or v3 header, then
//! a PDU.
//!
//! One UDP datagram. v1/v2c: version 0 or 1, an OCTET STRING community, a PDU tag 0xA0-0xA8 with
//! request-id, error-status (0-18 in RFC 3416, some agents send up to 255; get-bulk puts
//! non-repeaters there, any value) and error-index; a v1 trap starts with its enterprise OID.
//! v3: version 3, a msgGlobalData SEQUENCE with msgID, msgMaxSize >= 484, a one-byte msgFlags
//! and msgSecurityModel 1-3. The community is a password: it is never put into the metadata.
//!
//! Meta: `snmp_version` ("1", "2c", "3"), `snmp_pdu` ("get", "response", "trap"...; not v3);
//! for v3 `snmp_security` (the message's level from msgFlags: "noAuthNoPriv", "authNoPriv",
//! "authPriv"; not from USM's engine discovery) and, from USM's parameters, `snmp_user` (a user
//! name, as a login name: no secret).
#![forbid(unsafe_code)]

use super::ber::{read_int, read_octets, read_tlv};
use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("snmp", probe).answers(answers!["snmp_pdu"])];

const MIN_MAX_SIZE: i64 = 484;
/// The PDUs an agent sends in answer (RFC 3416 3): a Response (also to an InformRequest) or a
/// Report. Every other PDU, traps included (the agent is then the client of the trap receiver),
/// comes from the client's side.
const ANSWERS: [u8; 2] = [0xa2, 0xa8];
const TRAP_V1: u8 = 0xa4;
const GET_BULK: u8 = 0xa5;

fn pdu_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0xa0 => "get",
        0xa1 => "get-next",
        0xa2 => "response",
        0xa3 => "set",
        0xa4 => "trap",
        0xa5 => "get-bulk",
        0xa6 => "inform",
        0xa7 => "trap-v2",
        0xa8 => "report",
        _ => return None,
    })
}

const AUTH_FLAG: u8 = 1;
const PRIV_FLAG: u8 = 2;
const USM: i64 = 3;
/// RFC 3414 2.4: a USM user name is 1 to 32 octets.
const MAX_USER: usize = 32;

/// The user of a USM message (RFC 3414 2.4): msgSecurityParameters, an OCTET STRING holding
/// UsmSecurityParameters (engine id, boots, time, user name, then the authentication and privacy
/// parameters). Empty in the engine discovery request, so None there.
fn usm_user(data: &[u8], off: usize) -> Option<String> {
    let (params, _) = read_octets(data, off, 0x04)?;
    let usm = read_tlv(params, 0)?;
    if usm.tag != 0x30 {
        return None;
    }
    let (_engine, after_engine) = read_octets(params, usm.start, 0x04)?;
    let (_boots, after_boots) = read_int(params, after_engine)?;
    let (_time, after_time) = read_int(params, after_boots)?;
    let (user, _) = read_octets(params, after_time, 0x04)?;
    (!user.is_empty() && user.len() <= MAX_USER).then(|| clean_text(user, MAX_USER * 4))
}

fn parse(data: &[u8], from_client: bool) -> Option<Meta> {
    let outer = read_tlv(data, 0)?;
    if outer.tag != 0x30 || outer.end() != data.len() {
        return None;
    }
    let (version, after_version) = read_int(data, outer.start)?;
    let name = match version {
        0 => "1",
        1 => "2c",
        3 => "3",
        _ => return None,
    };
    let mut meta = Meta::new();
    meta.insert("snmp_version".into(), json!(name));
    if version == 3 {
        let global = read_tlv(data, after_version)?;
        if global.tag != 0x30 {
            return None;
        }
        let (_msg_id, after_id) = read_int(data, global.start)?;
        let (max_size, after_size) = read_int(data, after_id)?;
        if max_size < MIN_MAX_SIZE {
            return None;
        }
        let (flags, after_flags) = read_octets(data, after_size, 0x04)?;
        let &[flags] = flags else {
            return None;
        };
        let (model, after_model) = read_int(data, after_flags)?;
        if !(1..=3).contains(&model) {
            return None;
        }
        // RFC 3412 6.4: privacy without authentication is no valid level.
        let level = match flags & (AUTH_FLAG | PRIV_FLAG) {
            0 => "noAuthNoPriv",
            AUTH_FLAG => "authNoPriv",
            3 => "authPriv",
            _ => return None,
        };
        // USM's engine discovery (RFC 3414 4) names no user and is always noAuthNoPriv,
        // whatever level the session then uses: its level says nothing of the session's.
        let user = if model == USM {
            usm_user(data, after_model)
        } else {
            None
        };
        if model != USM || user.is_some() {
            meta.insert("snmp_security".into(), json!(level));
        }
        if let Some(user) = user {
            meta.insert("snmp_user".into(), json!(user));
        }
        return Some(meta);
    }
    let (_community, after_community) = read_octets(data, after_version, 0x04)?;
    let pdu = read_tlv(data, after_community)?;
    if ANSWERS.contains(&pdu.tag) == from_client {
        return None;
    }
    meta.insert("snmp_pdu".into(), json!(pdu_name(pdu.tag)?));
    if pdu.tag == TRAP_V1 {
        // v1 trap: the enterprise OID comes first.
        return (read_tlv(data, pdu.start)?.tag == 0x06).then_some(meta);
    }
    let (_request_id, after_request) = read_int(data, pdu.start)?;
    let (status, after_status) = read_int(data, after_request)?;
    read_int(data, after_status)?;
    (pdu.tag == GET_BULK || (0..=255).contains(&status)).then_some(meta)
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    parse(data, from_client).map_or_else(ProbeResult::no, ProbeResult::hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, content.len() as u8];
        out.extend_from_slice(content);
        out
    }

    /// sysDescr.0 = NULL, as a get-request's varbind list.
    fn varbinds() -> Vec<u8> {
        let oid = tlv(0x06, &[0x2b, 6, 1, 2, 1, 1, 1, 0]);
        tlv(0x30, &tlv(0x30, &[oid, vec![0x05, 0x00]].concat()))
    }

    fn v2c(pdu: u8, status: u8) -> Vec<u8> {
        let body = [
            tlv(0x02, &[0x12, 0x34]),
            tlv(0x02, &[status]),
            tlv(0x02, &[0]),
            varbinds(),
        ]
        .concat();
        tlv(
            0x30,
            &[tlv(0x02, &[1]), tlv(0x04, b"public"), tlv(pdu, &body)].concat(),
        )
    }

    #[test]
    fn v2c_get_and_response() {
        let r = probe(&v2c(0xa0, 0), true);
        assert_eq!(r.meta["snmp_version"], "2c");
        assert_eq!(r.meta["snmp_pdu"], "get");
        assert_eq!(probe(&v2c(0xa2, 2), false).meta["snmp_pdu"], "response");
        // A manager asks, an agent answers.
        assert_eq!(probe(&v2c(0xa0, 0), false).status, Status::No);
        assert_eq!(probe(&v2c(0xa2, 2), true).status, Status::No);
        assert_eq!(
            probe(&v2c(0xa2, 0xff), false).status,
            Status::No,
            "error-status -1"
        );
        assert!(
            probe(&v2c(0xa5, 0xff), true).is_match(),
            "get-bulk non-repeaters may be anything"
        );
        assert_eq!(probe(&v2c(0xa9, 0), true).status, Status::No);
        let mut trailing = v2c(0xa0, 0);
        trailing.push(0);
        assert_eq!(probe(&trailing, true).status, Status::No);
        assert!(!probe(&v2c(0xa0, 0), true)
            .meta
            .values()
            .any(|v| v == "public"));
    }

    #[test]
    fn v1_trap() {
        let body = [
            tlv(0x06, &[0x2b, 6, 1, 4, 1, 9]),
            tlv(0x40, &[10, 0, 0, 1]),
            tlv(0x02, &[6]),
        ]
        .concat();
        let msg = tlv(
            0x30,
            &[tlv(0x02, &[0]), tlv(0x04, b"public"), tlv(0xa4, &body)].concat(),
        );
        // The agent sends a trap to the manager's trap port: it is the client there.
        let r = probe(&msg, true);
        assert_eq!(
            (r.meta["snmp_version"].clone(), r.meta["snmp_pdu"].clone()),
            ("1".into(), "trap".into())
        );
        assert_eq!(probe(&msg, false).status, Status::No);
    }

    #[test]
    fn v3_header() {
        // msgGlobalData: msgID, msgMaxSize 65507, msgFlags 0x04 (reportable), USM (3).
        let global = tlv(
            0x30,
            &[
                tlv(0x02, &[0x01]),
                tlv(0x02, &[0x00, 0xff, 0xe3]),
                tlv(0x04, &[0x04]),
                tlv(0x02, &[3]),
            ]
            .concat(),
        );
        let msg = |g: &[u8]| {
            tlv(
                0x30,
                &[tlv(0x02, &[3]), g.to_vec(), tlv(0x04, &[0x30, 0x00])].concat(),
            )
        };
        let r = probe(&msg(&global), false);
        assert_eq!(r.meta["snmp_version"], "3");
        assert!(!r.meta.contains_key("snmp_pdu"));
        let small = tlv(
            0x30,
            &[
                tlv(0x02, &[0x01]),
                tlv(0x02, &[0x01, 0x00]),
                tlv(0x04, &[0x04]),
                tlv(0x02, &[3]),
            ]
            .concat(),
        );
        assert_eq!(probe(&msg(&small), false).status, Status::No);
    }

    #[test]
    fn a_v3_message_says_its_security_level_and_user() {
        // net-snmp's authPriv get as pwadmin: msgFlags 0x07 (reportable, priv, auth), USM.
        let usm = tlv(
            0x30,
            &[
                tlv(0x04, b"\x80\x00\x1f\x88\x04pwlab"),
                tlv(0x02, &[1]),
                tlv(0x02, &[0x10]),
                tlv(0x04, b"pwadmin"),
                tlv(0x04, &[0; 12]),
                tlv(0x04, &[0; 8]),
            ]
            .concat(),
        );
        let msg = |flags: u8, params: &[u8]| {
            let global = tlv(
                0x30,
                &[
                    tlv(0x02, &[0x01]),
                    tlv(0x02, &[0x00, 0xff, 0xe3]),
                    tlv(0x04, &[flags]),
                    tlv(0x02, &[3]),
                ]
                .concat(),
            );
            tlv(
                0x30,
                &[
                    tlv(0x02, &[3]),
                    global,
                    tlv(0x04, params),
                    tlv(0x04, &[1, 2, 3]),
                ]
                .concat(),
            )
        };
        let r = probe(&msg(0x07, &usm), true);
        assert_eq!(r.meta["snmp_security"], "authPriv");
        assert_eq!(r.meta["snmp_user"], "pwadmin");
        // Engine discovery: no user yet, and its level is not the session's.
        let r = probe(&msg(0x04, &tlv(0x30, &[])), true);
        assert_eq!(r.status, Status::Match);
        assert!(!r.meta.contains_key("snmp_user") && !r.meta.contains_key("snmp_security"));
        assert_eq!(
            probe(&msg(0x01, &usm), true).meta["snmp_security"],
            "authNoPriv"
        );
        // Privacy without authentication is no valid level.
        assert_eq!(probe(&msg(0x02, &usm), true).status, Status::No);
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("snmp");
    }
}
