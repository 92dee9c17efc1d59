//! DCE/RPC over TCP: the first connection-oriented PDU of a direction (C706 12.6, MS-RPCE 2.2.2).
//!
//! `dcerpc`: the 16-byte common header (version 5.0 or 5.1, a PDU type of 0-19, a data
//! representation whose integers are little- or big-endian, ASCII characters, and a fragment
//! length that holds the header and the authentication verifier). A bind or alter-context names
//! the interface it wants (its first presentation context's abstract syntax); a PDU with an
//! authentication verifier names its security provider (the sec_trailer's auth_type, MS-RPCE
//! 2.2.1.1.7). These are what Zeek's dce_rpc.log and Wireshark show an analyst first: which
//! interface (samr, drsuapi, svcctl...) and how the caller authenticated.
//!
//! Meta: `dcerpc_ptype` ("bind", "bind_ack", "request"...; the server's as `dcerpc_ptype_server`),
//! `dcerpc_interface` (a well-known interface by name, another by its UUID), `dcerpc_auth`
//! ("ntlmssp", "kerberos", "spnego", "netlogon" or "type-N").
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("dcerpc", probe)
    .gated(&[5])
    .answers(answers!["dcerpc_ptype"])];

const HEADER: usize = 16;
const SEC_TRAILER: usize = 8;
const BIND: u8 = 11;
const ALTER_CONTEXT: u8 = 14;

fn ptype_name(ptype: u8) -> &'static str {
    match ptype {
        0 => "request",
        1 => "ping",
        2 => "response",
        3 => "fault",
        4 => "working",
        5 => "nocall",
        6 => "reject",
        7 => "ack",
        8 => "cl_cancel",
        9 => "fack",
        10 => "cancel_ack",
        11 => "bind",
        12 => "bind_ack",
        13 => "bind_nak",
        14 => "alter_context",
        15 => "alter_context_resp",
        16 => "auth3",
        17 => "shutdown",
        18 => "co_cancel",
        _ => "orphaned",
    }
}

/// Interfaces by the UUID of their abstract syntax (MS-RPCE and the protocol documents that
/// define them: MS-SAMR, MS-LSAD, MS-SRVS, MS-WKST, MS-NRPC, MS-DRSR, MS-SCMR, MS-RRP, MS-TSCH,
/// MS-EVEN, MS-EVEN6, MS-RPRN, MS-PAR, MS-DFSNM, MS-DNSP, MS-DCOM, MS-EFSR, MS-RSP).
const INTERFACES: &[(&str, &str)] = &[
    ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", "epmapper"),
    ("12345778-1234-abcd-ef00-0123456789ac", "samr"),
    ("12345778-1234-abcd-ef00-0123456789ab", "lsarpc"),
    ("3919286a-b10c-11d0-9ba8-00c04fd92ef5", "dssetup"),
    ("4b324fc8-1670-01d3-1278-5a47bf6ee188", "srvsvc"),
    ("6bffd098-a112-3610-9833-46c3f87e345a", "wkssvc"),
    ("12345678-1234-abcd-ef00-01234567cffb", "netlogon"),
    ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", "drsuapi"),
    ("367abb81-9844-35f1-ad32-98f038001003", "svcctl"),
    ("338cd001-2244-31f1-aaaa-900038001003", "winreg"),
    ("1ff70682-0a51-30e8-076d-740be8cee98b", "atsvc"),
    (
        "86d35949-83c9-4044-b424-db363231fd0c",
        "ITaskSchedulerService",
    ),
    ("378e52b0-c0a9-11cf-822d-00aa0051e40f", "sasec"),
    ("82273fdc-e32a-18c3-3f78-827929dc23ea", "eventlog"),
    ("f6beaff7-1e19-4fbb-9f8f-b89e2018337c", "even6"),
    ("12345678-1234-abcd-ef00-0123456789ab", "spoolss"),
    ("76f03f96-cdfd-44fc-a22c-64950a001209", "IRemoteWinspool"),
    ("4fc742e0-4a10-11cf-8273-00aa004ae673", "netdfs"),
    ("50abc2a4-574d-40b3-9d66-ee4fd5fba076", "dnsserver"),
    ("c681d488-d850-11d0-8c52-00c04fd90f7e", "efsrpc"),
    ("df1941c5-fe89-4e79-bf10-463657acf44d", "efsrpc"),
    ("894de0c0-0d55-11d3-a322-00c04fa321a1", "InitShutdown"),
    ("d95afe70-a6d5-4259-822e-2c84da1ddb0d", "WindowsShutdown"),
    ("4d9f4ab8-7d1c-11cf-861e-0020af6e7c57", "IActivation"),
    ("000001a0-0000-0000-c000-000000000046", "ISystemActivator"),
    ("99fcfec4-5260-101b-bbcb-00aa0021347a", "IObjectExporter"),
    ("00000131-0000-0000-c000-000000000046", "IRemUnknown"),
    ("00000143-0000-0000-c000-000000000046", "IRemUnknown2"),
];

fn auth_name(auth_type: u8) -> String {
    match auth_type {
        9 => "spnego".into(),
        10 => "ntlmssp".into(),
        16 => "kerberos".into(),
        68 => "netlogon".into(),
        n => format!("type-{n}"),
    }
}

/// A UUID as C706 appendix A spells it; the first three fields in the sender's byte order.
fn uuid_text(b: &[u8; 16], little: bool) -> String {
    let (a, m, h) = if little {
        (
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
        )
    } else {
        (
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]),
        )
    };
    let node = crate::text::hex(&b[10..16]);
    format!("{a:08x}-{m:04x}-{h:04x}-{:02x}{:02x}-{node}", b[8], b[9])
}

fn interface_name(uuid: &str) -> String {
    INTERFACES
        .iter()
        .find(|(u, _)| *u == uuid)
        .map_or_else(|| uuid.to_string(), |(_, n)| (*n).to_string())
}

/// The first presentation context's abstract syntax of a bind or alter-context body (after the
/// header: max_xmit_frag, max_recv_frag, assoc_group_id, then the context list).
fn bound_interface(pdu: &[u8], little: bool) -> Option<String> {
    let n_contexts = *pdu.get(HEADER + 8)?;
    if n_contexts == 0 {
        return None;
    }
    // p_cont_id (2), n_transfer_syn (1), reserved (1), then the abstract syntax's UUID
    let at = HEADER + 12 + 4;
    let uuid: &[u8; 16] = pdu.get(at..at + 16)?.try_into().ok()?;
    Some(interface_name(&uuid_text(uuid, little)))
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let Some(header) = data.get(..HEADER) else {
        // Enough to refuse what is no DCE/RPC before the header is whole.
        let fits = match data {
            [] => true,
            [v, rest @ ..] => *v == 5 && rest.first().is_none_or(|m| *m <= 1),
        };
        return if fits {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    let (version, minor, ptype, drep) = (header[0], header[1], header[2], header[4]);
    // drep: integers big- (0x00) or little-endian (0x10), ASCII, IEEE floats (C706 14.1)
    if version != 5
        || minor > 1
        || ptype > 19
        || !matches!(drep, 0x00 | 0x10)
        || header[5..8] != [0; 3]
    {
        return ProbeResult::no();
    }
    let little = drep == 0x10;
    let u16_at = |i: usize| {
        let b = [header[i], header[i + 1]];
        usize::from(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let (frag_length, auth_length) = (u16_at(8), u16_at(10));
    let verifier = if auth_length > 0 {
        auth_length + SEC_TRAILER
    } else {
        0
    };
    if frag_length < HEADER + verifier {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("dcerpc_ptype".into(), json!(ptype_name(ptype)));
    let pdu = &data[..frag_length.min(data.len())];
    if matches!(ptype, BIND | ALTER_CONTEXT) {
        if let Some(name) = bound_interface(pdu, little) {
            meta.insert("dcerpc_interface".into(), json!(name));
        }
    }
    if auth_length > 0 {
        if let Some(&auth_type) = pdu.get(frag_length - verifier) {
            meta.insert("dcerpc_auth".into(), json!(auth_name(auth_type)));
        }
    }
    // The first PDU is all this direction says; one cut short has its facts still to come.
    let whole = data.len() >= frag_length;
    ProbeResult {
        partial: !whole,
        ..ProbeResult::hit_done(meta, whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    const SAMR: [u8; 16] = [
        0x78, 0x57, 0x34, 0x12, 0x34, 0x12, 0xcd, 0xab, 0xef, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89,
        0xac,
    ];
    const NDR: [u8; 16] = [
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60,
    ];

    /// A little-endian bind for `uuid` v1.0 over NDR, with an NTLMSSP verifier when `auth`.
    fn bind(uuid: [u8; 16], auth: Option<u8>) -> Vec<u8> {
        let mut body = vec![0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0];
        body.extend_from_slice(&[0, 0, 1, 0]);
        body.extend_from_slice(&uuid);
        body.extend_from_slice(&[1, 0, 0, 0]);
        body.extend_from_slice(&NDR);
        body.extend_from_slice(&[2, 0, 0, 0]);
        let token = [0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0];
        let auth_len = if auth.is_some() { token.len() } else { 0 };
        if let Some(kind) = auth {
            body.extend_from_slice(&[kind, 6, 0, 0, 0, 0, 0, 0]);
            body.extend_from_slice(&token);
        }
        let frag = (HEADER + body.len()) as u16;
        let mut pdu = vec![5, 0, BIND, 3, 0x10, 0, 0, 0];
        pdu.extend_from_slice(&frag.to_le_bytes());
        pdu.extend_from_slice(&(auth_len as u16).to_le_bytes());
        pdu.extend_from_slice(&[1, 0, 0, 0]);
        pdu.extend_from_slice(&body);
        pdu
    }

    #[test]
    fn a_bind_names_its_interface_and_security_provider() {
        let r = probe(&bind(SAMR, Some(10)), true);
        assert_eq!(r.status, Status::Match);
        assert_eq!(text(&r, "dcerpc_ptype").as_deref(), Some("bind"));
        assert_eq!(text(&r, "dcerpc_interface").as_deref(), Some("samr"));
        assert_eq!(text(&r, "dcerpc_auth").as_deref(), Some("ntlmssp"));
        let anonymous = probe(&bind(SAMR, None), true);
        assert_eq!(anonymous.meta.get("dcerpc_auth"), None);
        // An interface the table lacks is named by its UUID.
        let mut other = SAMR;
        other[15] = 0x00;
        assert_eq!(
            text(&probe(&bind(other, Some(16)), true), "dcerpc_interface").as_deref(),
            Some("12345778-1234-abcd-ef00-012345678900")
        );
        assert_eq!(
            text(&probe(&bind(other, Some(16)), true), "dcerpc_auth").as_deref(),
            Some("kerberos")
        );
    }

    #[test]
    fn big_endian_headers_and_uuids() {
        let mut pdu = vec![5, 0, 2, 3, 0x00, 0, 0, 0, 0, 24, 0, 0, 0, 0, 0, 1];
        pdu.extend_from_slice(&[0; 8]);
        let r = probe(&pdu, false);
        assert_eq!(text(&r, "dcerpc_ptype").as_deref(), Some("response"));
        let be: [u8; 16] = [
            0x12, 0x34, 0x57, 0x78, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x00, 0x01, 0x23, 0x45, 0x67,
            0x89, 0xac,
        ];
        assert_eq!(interface_name(&uuid_text(&be, false)), "samr");
    }

    #[test]
    fn near_misses_and_short_input() {
        let ok = bind(SAMR, Some(10));
        assert_eq!(probe(&ok[..5], true).status, Status::More);
        assert_eq!(probe(&[4, 0], true).status, Status::No);
        for (at, value) in [(0, 4), (1, 2), (2, 20), (4, 0x11), (5, 1), (7, 1)] {
            let mut bad = ok.clone();
            bad[at] = value;
            assert_eq!(probe(&bad, true).status, Status::No, "byte {at} = {value}");
        }
        // A fragment too short for the verifier it announces.
        let mut short = ok.clone();
        short[8..10].copy_from_slice(&20u16.to_le_bytes());
        assert_eq!(probe(&short, true).status, Status::No);
        // A bind cut before its context list still names its type.
        let cut = probe(&ok[..HEADER + 4], true);
        assert_eq!(text(&cut, "dcerpc_ptype").as_deref(), Some("bind"));
        assert_eq!(cut.meta.get("dcerpc_interface"), None);
        assert!(cut.partial && !cut.done);
        let whole = probe(&ok, true);
        assert!(whole.done && !whole.partial);
    }
}
