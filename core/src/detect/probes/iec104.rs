//! IEC 60870-5-104: APDUs of start byte 0x68 and a length, chained through the stream.
//!
//! Each APDU starts with 0x68 and a length of 4..253; a U-format frame (control field ending in
//! binary 11) is exactly 4 bytes with one function bit set (STARTDT/STOPDT/TESTFR act or con) and
//! zeros after; an S-format frame is 4 bytes with its second byte zero; an I-format frame carries
//! an ASDU. Every APDU wholly present must check, and at least one must be present.
//!
//! Meta: `iec104_first` ("startdt-act", "testfr-con", "i-frame"...) and, from the first I-format
//! frame, `iec104_asdu` (its ASDU's type identification as IEC 60870-5-101 7.2.1 names it:
//! "C_IC_NA_1" for a general interrogation, "C_SC_NA_1" for a single command, ...; "type-N" for
//! the private range) and `iec104_common_address` (the station it addresses); the server's first
//! frame and ASDU as `<name>_server`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] =
    &[Probe::single("iec104", probe).answers(answers!["iec104_first", "iec104_asdu"])];

const START: u8 = 0x68;
const MAX_APDUS: usize = 16;

fn u_function(ctrl: u8) -> Option<&'static str> {
    Some(match ctrl {
        0x07 => "startdt-act",
        0x0b => "startdt-con",
        0x13 => "stopdt-act",
        0x23 => "stopdt-con",
        0x43 => "testfr-act",
        0x83 => "testfr-con",
        _ => return None,
    })
}

/// ASDU type identifications of the companion standard (IEC 60870-5-101 7.2.1.1, and the ones
/// 104 adds: 58-64, 107, 127).
fn asdu_type(type_id: u8) -> Option<&'static str> {
    Some(match type_id {
        1 => "M_SP_NA_1",
        3 => "M_DP_NA_1",
        5 => "M_ST_NA_1",
        7 => "M_BO_NA_1",
        9 => "M_ME_NA_1",
        11 => "M_ME_NB_1",
        13 => "M_ME_NC_1",
        15 => "M_IT_NA_1",
        20 => "M_PS_NA_1",
        21 => "M_ME_ND_1",
        30 => "M_SP_TB_1",
        31 => "M_DP_TB_1",
        32 => "M_ST_TB_1",
        33 => "M_BO_TB_1",
        34 => "M_ME_TD_1",
        35 => "M_ME_TE_1",
        36 => "M_ME_TF_1",
        37 => "M_IT_TB_1",
        38 => "M_EP_TD_1",
        39 => "M_EP_TE_1",
        40 => "M_EP_TF_1",
        45 => "C_SC_NA_1",
        46 => "C_DC_NA_1",
        47 => "C_RC_NA_1",
        48 => "C_SE_NA_1",
        49 => "C_SE_NB_1",
        50 => "C_SE_NC_1",
        51 => "C_BO_NA_1",
        58 => "C_SC_TA_1",
        59 => "C_DC_TA_1",
        60 => "C_RC_TA_1",
        61 => "C_SE_TA_1",
        62 => "C_SE_TB_1",
        63 => "C_SE_TC_1",
        64 => "C_BO_TA_1",
        70 => "M_EI_NA_1",
        100 => "C_IC_NA_1",
        101 => "C_CI_NA_1",
        102 => "C_RD_NA_1",
        103 => "C_CS_NA_1",
        104 => "C_TS_NA_1",
        105 => "C_RP_NA_1",
        106 => "C_CD_NA_1",
        107 => "C_TS_TA_1",
        110 => "P_ME_NA_1",
        111 => "P_ME_NB_1",
        112 => "P_ME_NC_1",
        113 => "P_AC_NA_1",
        120 => "F_FR_NA_1",
        121 => "F_SR_NA_1",
        122 => "F_SC_NA_1",
        123 => "F_LS_NA_1",
        124 => "F_AF_NA_1",
        125 => "F_SG_NA_1",
        126 => "F_DR_TA_1",
        127 => "F_SC_NB_1",
        _ => return None,
    })
}

enum Apdu {
    /// Its kind and where the next APDU starts.
    Whole(&'static str, usize),
    /// Its header checks but its end lies past the input.
    Partial,
}

fn apdu(data: &[u8], off: usize) -> Option<Apdu> {
    let (&START, &length) = (data.get(off)?, data.get(off + 1)?) else {
        return None;
    };
    if !(4..=253).contains(&length) {
        return None;
    }
    let end = off + 2 + usize::from(length);
    if end > data.len() {
        return Some(Apdu::Partial);
    }
    // A whole APDU of length >= 4 holds the 4-byte control field.
    let &[c0, c1, c2, c3] = data.get(off + 2..off + 6)? else {
        return None;
    };
    let kind = match c0 & 3 {
        3 => {
            let name = u_function(c0)?;
            (length == 4 && [c1, c2, c3] == [0, 0, 0]).then_some(name)?
        }
        1 => (length == 4 && c1 == 0 && c2 & 1 == 0).then_some("s-frame")?,
        _ => (length > 4 && c2 & 1 == 0).then_some("i-frame")?,
    };
    Some(Apdu::Whole(kind, end))
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let (mut off, mut first, mut asdu) = (0usize, None, None);
    for _ in 0..MAX_APDUS {
        if off >= data.len() {
            break;
        }
        match apdu(data, off) {
            None => return ProbeResult::no(),
            Some(Apdu::Partial) => break,
            Some(Apdu::Whole(kind, end)) => {
                first = first.or(Some(kind));
                if kind == "i-frame" && asdu.is_none() {
                    // The ASDU after the control field: type, qualifier, cause, originator,
                    // then the common address (2 bytes, little-endian, in 104).
                    asdu = data
                        .get(off + 6..off + 12)
                        .map(|a| (a[0], u16::from_le_bytes([a[4], a[5]])));
                }
                off = end;
            }
        }
    }
    let Some(first) = first else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    meta.insert("iec104_first".into(), json!(first));
    if let Some((type_id, common_address)) = asdu {
        let name = asdu_type(type_id).map_or_else(|| format!("type-{type_id}"), str::to_string);
        meta.insert("iec104_asdu".into(), json!(name));
        meta.insert("iec104_common_address".into(), json!(common_address));
    }
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    const STARTDT_ACT: &[u8] = &[0x68, 0x04, 0x07, 0x00, 0x00, 0x00];
    const S_FRAME: &[u8] = &[0x68, 0x04, 0x01, 0x00, 0x02, 0x00];
    /// I-format, C_IC_NA_1 (interrogation, type 100), COT activation, CA 1, IOA 0, QOI 20.
    const INTERROGATION: &[u8] = &[
        0x68, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x64, 0x01, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x14,
    ];

    #[test]
    fn apdus_from_spec() {
        assert_eq!(probe(STARTDT_ACT, true).meta["iec104_first"], "startdt-act");
        assert_eq!(
            probe(&[INTERROGATION, S_FRAME].concat(), true).meta["iec104_first"],
            "i-frame"
        );
        assert_eq!(
            probe(&[S_FRAME, &INTERROGATION[..8]].concat(), false).meta["iec104_first"],
            "s-frame"
        );
        assert_eq!(
            probe(&INTERROGATION[..8], true).status,
            Status::No,
            "nothing whole"
        );
        assert_eq!(
            probe(&[STARTDT_ACT, &[0x69]].concat(), true).status,
            Status::No
        );
        assert_eq!(
            probe(&[STARTDT_ACT, &[0x68]].concat(), true).status,
            Status::No
        );
        assert_eq!(probe(&[0x68, 0x04, 0x0f, 0, 0, 0], true).status, Status::No);
        assert_eq!(probe(&[0x68, 0x04, 0x07, 0, 0, 1], true).status, Status::No);
    }

    #[test]
    fn the_first_asdu_names_its_type_and_station() {
        let r = probe(&[STARTDT_ACT, INTERROGATION].concat(), true);
        assert_eq!(r.meta["iec104_first"], "startdt-act");
        assert_eq!(r.meta["iec104_asdu"], "C_IC_NA_1");
        assert_eq!(r.meta["iec104_common_address"], 1);
        // A U-format frame alone names no ASDU; a private type is named by its number.
        assert!(probe(STARTDT_ACT, true).meta.get("iec104_asdu").is_none());
        let mut private = INTERROGATION.to_vec();
        private[6] = 140;
        assert_eq!(probe(&private, true).meta["iec104_asdu"], "type-140");
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("iec104");
    }
}
