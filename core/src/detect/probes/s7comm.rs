//! S7comm on ISO-on-TCP: the TPKTs a direction opens with (RFC 1006 TPKT, ISO 8073 COTP, then
//! Siemens S7's protocol id 0x32 in COTP data).
//!
//! `s7comm`: TPKTs (version 3, a length that holds the COTP header), a COTP connection request
//! or confirm first if any, then a COTP data TPDU whose user data is an S7 header: protocol id
//! 0x32 and a message type (ROSCTR) of job, ack, ack-data or user data. The connection request's
//! called TSAP names the PLC's rack and slot; the first job other than the communication setup
//! every connection starts with says what the client asked the PLC to do (read, write, download
//! a block, stop the CPU...), as Wireshark's S7comm dissector and Zeek's ICS plugins show them.
//!
//! Meta: `s7_rosctr` ("job", "ack_data", ...), `s7_function` ("setup_communication",
//! "read_var", "plc_stop", "userdata_cpu_functions", ...; the server's as `s7_function_server`),
//! `s7_rack` and `s7_slot` (from a called TSAP of connection type 1-3, the client's side).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("s7comm", probe)
    .gated(&[3])
    .answers(answers!["s7_rosctr", "s7_function"])];

/// TPKTs read before giving up on finding S7 (a request and a few jobs).
const MAX_TPKTS: usize = 8;
const TPKT: usize = 4;
const COTP_CR: u8 = 0xe0;
const COTP_CC: u8 = 0xd0;
const COTP_DT: u8 = 0xf0;
const S7_ID: u8 = 0x32;
const SETUP_COMMUNICATION: &str = "setup_communication";

fn rosctr_name(rosctr: u8) -> Option<&'static str> {
    Some(match rosctr {
        1 => "job",
        2 => "ack",
        3 => "ack_data",
        7 => "userdata",
        _ => return None,
    })
}

fn function_name(code: u8) -> String {
    let named = match code {
        0x00 => "cpu_services",
        0x04 => "read_var",
        0x05 => "write_var",
        0x1a => "request_download",
        0x1b => "download_block",
        0x1c => "download_ended",
        0x1d => "start_upload",
        0x1e => "upload",
        0x1f => "end_upload",
        0x28 => "plc_control",
        0x29 => "plc_stop",
        0xf0 => "setup_communication",
        _ => return format!("function-{code:#04x}"),
    };
    named.to_string()
}

fn userdata_group(group: u8) -> String {
    let named = match group {
        1 => "mode_transition",
        2 => "cyclic_data",
        3 => "block_functions",
        4 => "cpu_functions",
        5 => "security",
        6 => "pbc_bsend",
        7 => "time_functions",
        15 => "ncprogramming",
        _ => return format!("userdata_group-{group}"),
    };
    format!("userdata_{named}")
}

/// The function of one S7 PDU (`pdu` from the protocol id on), if its parameters are there.
fn s7_function(pdu: &[u8]) -> Option<String> {
    let rosctr = *pdu.get(1)?;
    // The header is 10 bytes, 12 for ack-data (error class and code); parameters follow.
    let params = if rosctr == 3 { 12 } else { 10 };
    if rosctr == 7 {
        // User data parameters: 00 01 12, length, method, then type and function group.
        let group = pdu.get(params + 5)? & 0x0f;
        return Some(userdata_group(group));
    }
    pdu.get(params).map(|&code| function_name(code))
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let mut meta = Meta::new();
    let mut at = 0;
    let mut first_function = None;
    for _ in 0..MAX_TPKTS {
        let Some(tpkt) = data.get(at..at + TPKT + 2) else {
            break;
        };
        let length = usize::from(u16::from_be_bytes([tpkt[2], tpkt[3]]));
        let (li, kind) = (usize::from(tpkt[4]), tpkt[5] & 0xf0);
        if tpkt[0] != 3 || tpkt[1] != 0 || length < TPKT + 1 + li || li < 2 {
            return ProbeResult::no();
        }
        match kind {
            COTP_CR | COTP_CC if meta.is_empty() && first_function.is_none() => {
                let cotp = data.get(at + TPKT..at + length);
                if let Some((rack, slot)) = cotp.and_then(called_rack_slot) {
                    meta.insert("s7_rack".into(), json!(rack));
                    meta.insert("s7_slot".into(), json!(slot));
                }
            }
            COTP_DT if li == 2 => {
                let pdu_at = at + TPKT + 1 + li;
                let Some(&[id, rosctr]) = data.get(pdu_at..pdu_at + 2) else {
                    return ProbeResult::more();
                };
                let Some(name) = rosctr_name(rosctr) else {
                    return ProbeResult::no();
                };
                if id != S7_ID {
                    return ProbeResult::no();
                }
                let pdu = data.get(pdu_at..at + length).unwrap_or(&data[pdu_at..]);
                if !meta.contains_key("s7_rosctr") {
                    meta.insert("s7_rosctr".into(), json!(name));
                }
                let function = s7_function(pdu);
                if first_function.is_none() {
                    first_function = function.clone();
                }
                // Every connection opens with a communication setup: the first other job or
                // user data says what the connection is for, and ends this direction's facts.
                let setup = function.as_deref() == Some(SETUP_COMMUNICATION);
                if let (Some(f), false) = (function, setup) {
                    meta.insert("s7_function".into(), json!(f));
                    return ProbeResult::hit_done(meta, true);
                }
            }
            _ => return ProbeResult::no(),
        }
        at += length;
    }
    if !meta.contains_key("s7_rosctr") {
        // A connection request alone is also how RDP and other ISO transports begin.
        return if at >= data.len() || data.len() < at + TPKT + 2 {
            ProbeResult::more()
        } else {
            ProbeResult::no()
        };
    }
    if let Some(f) = first_function {
        meta.insert("s7_function".into(), json!(f));
    }
    ProbeResult::hit(meta)
}

/// The rack and slot of a COTP CR's called TSAP (parameter 0xc2) of connection type 1-3 (PG,
/// OP, S7 basic): its second byte is rack * 32 + slot.
fn called_rack_slot(cotp: &[u8]) -> Option<(u8, u8)> {
    let li = usize::from(*cotp.first()?);
    // Fixed part: LI, type, destination and source references, class.
    let mut at = 7;
    while at + 2 <= li + 1 {
        let (code, len) = (*cotp.get(at)?, usize::from(*cotp.get(at + 1)?));
        if code == 0xc2 && len == 2 {
            let (kind, rack_slot) = (*cotp.get(at + 2)?, *cotp.get(at + 3)?);
            return (1..=3)
                .contains(&kind)
                .then_some((rack_slot >> 5, rack_slot & 0x1f));
        }
        at += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    fn tpkt(cotp_and_data: &[u8]) -> Vec<u8> {
        let mut t = vec![3, 0];
        t.extend_from_slice(&((TPKT + cotp_and_data.len()) as u16).to_be_bytes());
        t.extend_from_slice(cotp_and_data);
        t
    }

    /// COTP CR with calling TSAP 0x0100 and called TSAP 0x0102 (rack 0, slot 2).
    fn connection_request() -> Vec<u8> {
        tpkt(&[
            17, 0xe0, 0, 0, 0, 1, 0, 0xc0, 1, 0x0a, 0xc1, 2, 1, 0, 0xc2, 2, 1, 2,
        ])
    }

    /// COTP DT carrying an S7 job with one parameter byte `function` (and padding).
    fn job(function: u8) -> Vec<u8> {
        tpkt(&[
            2, 0xf0, 0x80, 0x32, 1, 0, 0, 0, 1, 0, 8, 0, 0, function, 0, 0, 1, 0, 1, 1, 0xe0,
        ])
    }

    #[test]
    fn the_first_job_after_the_setup_names_the_connection() {
        let mut stream = connection_request();
        stream.extend(job(0xf0));
        let setup_only = probe(&stream, true);
        assert_eq!(setup_only.status, Status::Match);
        assert_eq!(text(&setup_only, "s7_rosctr").as_deref(), Some("job"));
        assert_eq!(
            text(&setup_only, "s7_function").as_deref(),
            Some("setup_communication")
        );
        assert_eq!(
            (
                setup_only.meta["s7_rack"].clone(),
                setup_only.meta["s7_slot"].clone()
            ),
            (0.into(), 2.into())
        );
        assert!(!setup_only.done);
        stream.extend(job(0x29));
        let stop = probe(&stream, true);
        assert_eq!(text(&stop, "s7_function").as_deref(), Some("plc_stop"));
        assert!(stop.done);
    }

    #[test]
    fn user_data_names_its_function_group() {
        // 00 01 12, parameter length 4, method 0x11 (request), type 4 / group 4 (CPU functions)
        let pdu = tpkt(&[
            2, 0xf0, 0x80, 0x32, 7, 0, 0, 0, 2, 0, 8, 0, 0, 0, 1, 0x12, 4, 0x11, 0x44, 1, 0,
        ]);
        let r = probe(&pdu, true);
        assert_eq!(text(&r, "s7_rosctr").as_deref(), Some("userdata"));
        assert_eq!(
            text(&r, "s7_function").as_deref(),
            Some("userdata_cpu_functions")
        );
    }

    #[test]
    fn other_iso_transports_and_broken_tpkts() {
        // A connection request alone may be RDP's: wait for the data.
        assert_eq!(probe(&connection_request(), true).status, Status::More);
        // RDP after its connection confirm: COTP data without S7's protocol id.
        let mut rdp = tpkt(&[14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0xf0, 0x80, 0, 0, 0, 0, 0]);
        rdp.extend(tpkt(&[2, 0xf0, 0x80, 0x7f, 0x65, 0x82]));
        assert_eq!(probe(&rdp, true).status, Status::No);
        let mut bad = job(4);
        bad[0] = 4;
        assert_eq!(probe(&bad, true).status, Status::No);
        let mut bad = job(4);
        bad[8] = 5; // ROSCTR 5 is not S7's
        assert_eq!(probe(&bad, true).status, Status::No);
        assert_eq!(probe(&job(4)[..6], true).status, Status::More);
    }
}
