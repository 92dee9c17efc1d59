//! DNP3 (IEEE 1815) data link frames: start bytes 0x05 0x64 and a header CRC that must check.
//!
//! TCP stream prefix or UDP datagram. The 10-byte link header (start, length >= 5, control,
//! destination, source, CRC-16/DNP over the first 8 bytes) is verified with its CRC: two bytes
//! of a random stream cannot pass this by accident.
//!
//! Meta: `dnp3_src`, `dnp3_dst` (link addresses), `dnp3_function` (link function code) and, for a
//! frame of user data that starts a transport segment series (FIR), `dnp3_app_function`: the
//! application layer's function ("read", "direct_operate", "response", ... IEEE 1815 4.2.2.5,
//! as Zeek's dnp3.log has its fc_request and fc_reply), the server's as `dnp3_app_function_server`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] =
    &[Probe::single("dnp3", probe).answers(answers!["dnp3_function", "dnp3_app_function"])];

/// Application function codes (IEEE 1815-2012 Table 4-3).
fn app_function(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "confirm",
        1 => "read",
        2 => "write",
        3 => "select",
        4 => "operate",
        5 => "direct_operate",
        6 => "direct_operate_nr",
        7 => "immed_freeze",
        8 => "immed_freeze_nr",
        9 => "freeze_clear",
        10 => "freeze_clear_nr",
        11 => "freeze_at_time",
        12 => "freeze_at_time_nr",
        13 => "cold_restart",
        14 => "warm_restart",
        15 => "initialize_data",
        16 => "initialize_appl",
        17 => "start_appl",
        18 => "stop_appl",
        19 => "save_config",
        20 => "enable_unsolicited",
        21 => "disable_unsolicited",
        22 => "assign_class",
        23 => "delay_measure",
        24 => "record_current_time",
        25 => "open_file",
        26 => "close_file",
        27 => "delete_file",
        28 => "get_file_info",
        29 => "authenticate_file",
        30 => "abort_file",
        31 => "activate_config",
        32 => "authenticate_req",
        33 => "auth_req_no_ack",
        129 => "response",
        130 => "unsolicited_response",
        131 => "authenticate_resp",
        _ => return None,
    })
}

/// Link functions that carry user data from the primary station (confirmed, unconfirmed).
const USER_DATA: [u8; 2] = [3, 4];
/// Transport header: first segment of a series.
const FIR: u8 = 0x40;

/// CRC-16/DNP: reflected polynomial 0x3D65 (0xA6BC reversed), final complement.
const CRC_TABLE: [u16; 256] = crc_table();

const fn crc_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xa6bc
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

pub fn crc_dnp(data: &[u8]) -> u16 {
    let crc = data.iter().fold(0u16, |crc, &b| {
        (crc >> 8) ^ CRC_TABLE[usize::from((crc ^ u16::from(b)) & 0xff)]
    });
    !crc
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let Some(header) = data.get(..10) else {
        return ProbeResult::no();
    };
    let [0x05, 0x64, length, control, d0, d1, s0, s1, c0, c1] = *header else {
        return ProbeResult::no();
    };
    if length < 5 || u16::from_le_bytes([c0, c1]) != crc_dnp(header.get(..8).unwrap_or_default()) {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("dnp3_src".into(), json!(u16::from_le_bytes([s0, s1])));
    meta.insert("dnp3_dst".into(), json!(u16::from_le_bytes([d0, d1])));
    meta.insert("dnp3_function".into(), json!(control & 0x0f));
    // The first data block follows the header: transport header, application control, function.
    let primary = control & 0x40 != 0;
    if primary && USER_DATA.contains(&(control & 0x0f)) && length >= 8 {
        if let Some(&[transport, _, code]) = data.get(10..13) {
            if let (true, Some(name)) = (transport & FIR != 0, app_function(code)) {
                meta.insert("dnp3_app_function".into(), json!(name));
            }
        }
    }
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn crc_check_value() {
        // The catalogued check value of CRC-16/DNP on "123456789".
        assert_eq!(crc_dnp(b"123456789"), 0xea82);
    }

    /// A link header: length, control, destination, source, CRC.
    fn header(length: u8, control: u8, dst: u16, src: u16) -> Vec<u8> {
        let mut out = vec![0x05, 0x64, length, control];
        out.extend_from_slice(&dst.to_le_bytes());
        out.extend_from_slice(&src.to_le_bytes());
        out.extend_from_slice(&crc_dnp(&out).to_le_bytes());
        out
    }

    #[test]
    fn link_headers() {
        // Master (3) -> outstation (4): unconfirmed user data (PRM, function 4).
        let r = probe(&header(0x0b, 0xc4, 4, 3), true);
        assert_eq!(r.meta["dnp3_src"], 3);
        assert_eq!(r.meta["dnp3_dst"], 4);
        assert_eq!(r.meta["dnp3_function"], 4);
        assert_eq!(
            r.meta.keys().collect::<Vec<_>>(),
            ["dnp3_src", "dnp3_dst", "dnp3_function"]
        );
        // The well-known link status request, 05 64 05 C9 01 00 00 04 + CRC.
        assert!(probe(&header(5, 0xc9, 1, 0x400), false).is_match());
        let mut bad = header(5, 0xc9, 1, 0x400);
        bad[9] ^= 1;
        assert_eq!(probe(&bad, false).status, Status::No);
        assert_eq!(probe(&header(4, 0xc9, 1, 0x400), false).status, Status::No);
    }

    #[test]
    fn the_application_function_of_a_first_segment() {
        // Master 1 -> outstation 10, unconfirmed user data: transport FIR|FIN seq 0, application
        // control FIR|FIN seq 1, function READ, then class 0 (g60v1, qualifier 06).
        let mut frame = header(0x0b, 0xc4, 10, 1);
        frame.extend_from_slice(&[0xc0, 0xc1, 0x01, 0x3c, 0x01, 0x06]);
        let r = probe(&frame, true);
        assert_eq!(r.meta["dnp3_app_function"], "read");
        // An outstation's unsolicited response (DIR clear: from the outstation; PRM set).
        let mut frame = header(0x0a, 0x44, 1, 10);
        frame.extend_from_slice(&[0xc0, 0xf0, 0x82, 0x00, 0x00]);
        assert_eq!(
            probe(&frame, false).meta["dnp3_app_function"],
            "unsolicited_response"
        );
        // Not the first segment (FIR clear), and an unassigned function: no application fact.
        let mut later = header(0x0b, 0xc4, 10, 1);
        later.extend_from_slice(&[0x81, 0xc1, 0x01]);
        assert!(probe(&later, true).meta.get("dnp3_app_function").is_none());
        let mut odd = header(0x0b, 0xc4, 10, 1);
        odd.extend_from_slice(&[0xc0, 0xc1, 0x50]);
        assert!(probe(&odd, true).meta.get("dnp3_app_function").is_none());
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("dnp3");
    }
}
