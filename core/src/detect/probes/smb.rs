//! SMB (MS-SMB, MS-SMB2): the protocol header behind a NetBIOS session header, or in a datagram.
//!
//! - `smb`: TCP (445 direct hosting or 139): a session message (type 0, 17-bit length) whose
//!   payload starts with \xffSMB (SMB1), \xfeSMB (SMB2/3) or \xfdSMB (SMB3 transform), with the
//!   SMB2 header length 64 and a known command. On 139 the client first asks for a session
//!   (RFC 1002 4.3.2, type 0x81) and the server grants it (0x82): SMB follows them.
//! - `smb_dgm`: a NetBIOS datagram (UDP 138) whose user data is an SMB1 message (the browser and
//!   mailslot announcements).
//!
//! Meta: `smb_version` (1, 2, 3 for a transform header), `smb_command` (SMB2 command name, or the
//! SMB1 command number as hex); from a server's NEGOTIATE response, `smb_dialect_server`: the
//! SMB2 dialect it chose ("2.0.2" ... "3.1.1", "2.x" for the multi-protocol wildcard), or "1" when
//! it took one of an SMB1 NEGOTIATE's dialects (success, and a dialect index other than 0xFFFF).
#![forbid(unsafe_code)]

use super::netbios::datagram_data;
use super::{Probe, ProbeResult};
use crate::decode::bytes::{le16, le32};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[
    // Direct-TCP transport header: a session message.
    // The server's header version and command answer the client's: an SMB1 negotiate that offers
    // SMB2 dialects is answered in SMB2 by a server that takes one.
    Probe::single("smb", probe)
        .gated(&[0x00, SESSION_REQUEST, POSITIVE_RESPONSE])
        .answers(answers!["smb_version", "smb_command"]),
    // Datagram-service types that carry user data (direct unique/group, broadcast).
    Probe::single("smb_dgm", probe_dgm).gated(&[0x10, 0x11, 0x12]),
];

const SMB2_COMMANDS: [&str; 19] = [
    "negotiate",
    "session_setup",
    "logoff",
    "tree_connect",
    "tree_disconnect",
    "create",
    "close",
    "flush",
    "read",
    "write",
    "lock",
    "ioctl",
    "cancel",
    "echo",
    "query_directory",
    "change_notify",
    "query_info",
    "set_info",
    "oplock_break",
];

fn header_meta(version: u8, command: String) -> Meta {
    let mut meta = Meta::new();
    meta.insert("smb_version".into(), json!(version));
    meta.insert("smb_command".into(), json!(command));
    meta
}

/// The facts of an SMB header at the start of `data`, if it is one.
fn smb_header(data: &[u8]) -> Option<Meta> {
    let magic = data.get(..4)?;
    match magic {
        b"\xffSMB" => Some(header_meta(1, format!("0x{:02x}", data.get(4)?))),
        b"\xfeSMB" => {
            let hlen = u16::from_le_bytes([*data.get(4)?, *data.get(5)?]);
            let command = u16::from_le_bytes([*data.get(12)?, *data.get(13)?]);
            let name = SMB2_COMMANDS.get(usize::from(command))?;
            (hlen == 64).then(|| header_meta(2, (*name).to_owned()))
        }
        b"\xfdSMB" => Some(header_meta(3, "transform".to_owned())),
        _ => None,
    }
}

/// SMB1 (MS-CIFS 2.2.3.1): the reply flag, and the header's fixed length before WordCount.
const SMB1_REPLY: u8 = 0x80;
const SMB1_HEADER: usize = 32;
const SMB1_NEGOTIATE: u8 = 0x72;
/// SMB2 (MS-SMB2 2.2.1, 2.2.4): the response flag, NEGOTIATE, and its response's size.
const SMB2_RESPONSE: u32 = 1;
const SMB2_HEADER: usize = 64;
const NEGOTIATE_RESPONSE_SIZE: u16 = 65;

fn dialect_name(revision: u16) -> String {
    match revision {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x02ff => "2.x".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        other => format!("0x{other:04x}"),
    }
}

/// The dialect a server's successful NEGOTIATE response settles on, if `data` is one.
fn negotiated_dialect(data: &[u8]) -> Option<String> {
    match data.get(..4)? {
        b"\xffSMB" => {
            let status = data.get(5..9)?;
            let ok = *data.get(4)? == SMB1_NEGOTIATE
                && status == [0, 0, 0, 0]
                && data.get(9)? & SMB1_REPLY != 0
                && *data.get(SMB1_HEADER)? >= 1
                && le16(data, SMB1_HEADER + 1)? != 0xffff;
            ok.then(|| "1".to_owned())
        }
        b"\xfeSMB" => {
            let status = data.get(8..12)?;
            let flags = le32(data, 16)?;
            let ok = le16(data, 12)? == 0
                && status == [0, 0, 0, 0]
                && flags & SMB2_RESPONSE != 0
                && le16(data, SMB2_HEADER)? == NEGOTIATE_RESPONSE_SIZE;
            if !ok {
                return None;
            }
            Some(dialect_name(le16(data, SMB2_HEADER + 4)?))
        }
        _ => None,
    }
}

fn answer(meta: Option<Meta>) -> ProbeResult {
    meta.map_or_else(ProbeResult::no, ProbeResult::hit)
}

const SESSION_REQUEST: u8 = 0x81;
const POSITIVE_RESPONSE: u8 = 0x82;

/// Where the first session message starts: past the NetBIOS session request a client sends on
/// 139 or the positive response a server answers it with. None when `data` opens otherwise.
fn past_session_setup(data: &[u8], from_client: bool) -> Option<usize> {
    match (data.first()?, from_client) {
        (0, _) => Some(0),
        (&SESSION_REQUEST, true) => {
            let (flags, hi, lo) = (*data.get(1)?, *data.get(2)?, *data.get(3)?);
            (flags & 0xfe == 0).then(|| {
                4 + ((usize::from(flags & 1) << 16) | usize::from(u16::from_be_bytes([hi, lo])))
            })
        }
        (&POSITIVE_RESPONSE, false) => (data.get(1..4)? == [0, 0, 0]).then_some(4),
        _ => None,
    }
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(start) = past_session_setup(data, from_client) else {
        return if data.len() < 4
            && matches!(data.first(), Some(&(SESSION_REQUEST | POSITIVE_RESPONSE)))
        {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    };
    if start > 0 && data.len() <= start {
        return ProbeResult::more();
    }
    let data = &data[start..];
    let [0, flags, hi, lo, _, _, _, _, ..] = *data else {
        return ProbeResult::no();
    };
    if flags & 0xfe != 0 {
        return ProbeResult::no();
    }
    let length = (usize::from(flags & 1) << 16) | usize::from(u16::from_be_bytes([hi, lo]));
    if length < 4 {
        return ProbeResult::no();
    }
    let payload = data
        .get(4..(4 + length).min(data.len()))
        .unwrap_or_default();
    let mut meta = smb_header(payload);
    if let (Some(meta), false) = (meta.as_mut(), from_client) {
        if let Some(dialect) = negotiated_dialect(payload) {
            meta.insert("smb_dialect_server".into(), json!(dialect));
        }
    }
    answer(meta)
}

pub fn probe_dgm(data: &[u8], _from_client: bool) -> ProbeResult {
    answer(datagram_data(data).and_then(|(_source, user_data)| smb_header(user_data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::{vectors, Status};

    fn session(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0];
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An SMB2 sync header (MS-SMB2 2.2.1.2) for `command`, then a body.
    fn smb2(command: u16) -> Vec<u8> {
        let mut h = b"\xfeSMB".to_vec();
        h.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
        h.extend_from_slice(&0u16.to_le_bytes()); // CreditCharge
        h.extend_from_slice(&0u32.to_le_bytes()); // Status
        h.extend_from_slice(&command.to_le_bytes());
        h.resize(64, 0);
        h.extend_from_slice(&36u16.to_le_bytes()); // NEGOTIATE request StructureSize
        h
    }

    #[test]
    fn smb2_negotiate_over_tcp() {
        let r = probe(&session(&smb2(0)), true);
        assert_eq!(r.meta["smb_version"], 2);
        assert_eq!(r.meta["smb_command"], "negotiate");
        assert_eq!(
            probe(&session(&smb2(18)), false).meta["smb_command"],
            "oplock_break"
        );
        assert_eq!(probe(&session(&smb2(19)), false).status, Status::No);
    }

    #[test]
    fn the_dialect_a_server_negotiated() {
        // SMB2 NEGOTIATE response (MS-SMB2 2.2.4): response flag, StructureSize 65, DialectRevision.
        let mut response = smb2(0);
        response[16] = 1;
        response.truncate(64);
        response.extend_from_slice(&65u16.to_le_bytes());
        response.extend_from_slice(&[1, 0]); // SecurityMode
        response.extend_from_slice(&0x0311u16.to_le_bytes());
        response.resize(64 + 65, 0);
        let r = probe(&session(&response), false);
        assert_eq!(r.meta["smb_dialect_server"], "3.1.1");
        // Not from a client, and not from a failed response.
        assert!(!probe(&session(&response), true)
            .meta
            .contains_key("smb_dialect_server"));
        let mut failed = response.clone();
        failed[8] = 0x22; // STATUS_ACCESS_DENIED's low byte
        assert!(!probe(&session(&failed), false)
            .meta
            .contains_key("smb_dialect_server"));
        // SMB1 NEGOTIATE response (MS-CIFS 2.2.4.52.2): success, reply flag, WordCount 17 and the
        // index of the dialect taken; 0xFFFF takes none.
        let mut smb1 = b"\xffSMB\x72\0\0\0\0\x88".to_vec();
        smb1.resize(32, 0);
        smb1.push(17);
        smb1.extend_from_slice(&0u16.to_le_bytes());
        smb1.resize(32 + 1 + 34 + 2, 0);
        assert_eq!(
            probe(&session(&smb1), false).meta["smb_dialect_server"],
            "1"
        );
        smb1[33..35].copy_from_slice(&[0xff, 0xff]);
        assert!(!probe(&session(&smb1), false)
            .meta
            .contains_key("smb_dialect_server"));
    }

    #[test]
    fn smb1_and_transform() {
        // SMB1 NEGOTIATE (command 0x72), MS-CIFS 2.2.3.1.
        let mut smb1 = b"\xffSMB\x72".to_vec();
        smb1.resize(32, 0);
        let r = probe(&session(&smb1), true);
        assert_eq!(
            (r.meta["smb_version"].clone(), r.meta["smb_command"].clone()),
            (1.into(), "0x72".into())
        );
        let mut transform = b"\xfdSMB".to_vec();
        transform.resize(52, 0);
        assert_eq!(
            probe(&session(&transform), false).meta["smb_command"],
            "transform"
        );
        assert_eq!(
            probe(&[0, 1, 0, 0, 0xff, b'S', b'M', b'B'], true).status,
            Status::No
        );
    }

    fn encoded(name: &str) -> Vec<u8> {
        let mut padded = name.as_bytes().to_vec();
        padded.resize(15, b' ');
        padded.push(0);
        let mut out = vec![32];
        for b in padded {
            out.extend_from_slice(&[b'A' + (b >> 4), b'A' + (b & 0x0f)]);
        }
        out.push(0);
        out
    }

    #[test]
    fn browser_announcement_datagram() {
        // RFC 1002 DIRECT_GROUP datagram carrying an SMB1 Transaction (0x25) to \MAILSLOT\BROWSE.
        let mut smb1 = b"\xffSMB\x25".to_vec();
        smb1.resize(40, 0);
        let mut user = encoded("HOST");
        user.extend(encoded("WORKGROUP"));
        user.extend(smb1);
        let mut dgm = vec![0x11, 0x02, 0x12, 0x34, 10, 0, 0, 1, 0, 138];
        dgm.extend_from_slice(&(user.len() as u16).to_be_bytes());
        dgm.extend_from_slice(&[0, 0]);
        dgm.extend(user);
        let r = probe_dgm(&dgm, false);
        assert_eq!(r.meta["smb_command"], "0x25");
        let mut bad = dgm.clone();
        bad[15] = b'Z';
        assert_eq!(probe_dgm(&bad, false).status, Status::No);
        assert_eq!(probe_dgm(&dgm[..dgm.len() - 1], false).status, Status::No);
    }

    #[test]
    fn matching_vectors_start_with_a_gate_byte() {
        for name in ["smb", "smb_dgm"] {
            crate::detect::probes::vectors::first_bytes_hold(name);
        }
    }

    #[test]
    fn python_vectors() {
        for name in ["smb", "smb_dgm"] {
            vectors::replay(name);
        }
    }
}
