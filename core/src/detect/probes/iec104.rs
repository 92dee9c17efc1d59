//! IEC 60870-5-104: APDUs of start byte 0x68 and a length, chained through the stream.
//!
//! Each APDU starts with 0x68 and a length of 4..253; a U-format frame (control field ending in
//! binary 11) is exactly 4 bytes with one function bit set (STARTDT/STOPDT/TESTFR act or con) and
//! zeros after; an S-format frame is 4 bytes with its second byte zero; an I-format frame carries
//! an ASDU. Every APDU wholly present must check, and at least one must be present.
//!
//! Meta: `iec104_first` ("startdt-act", "testfr-con", "i-frame"...).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("iec104", probe).answers(&["iec104_first"])];

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
    let (mut off, mut first) = (0usize, None);
    for _ in 0..MAX_APDUS {
        if off >= data.len() {
            break;
        }
        match apdu(data, off) {
            None => return ProbeResult::no(),
            Some(Apdu::Partial) => break,
            Some(Apdu::Whole(kind, end)) => {
                first = first.or(Some(kind));
                off = end;
            }
        }
    }
    let Some(first) = first else {
        return ProbeResult::no();
    };
    let mut meta = Meta::new();
    meta.insert("iec104_first".into(), json!(first));
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
    fn python_vectors() {
        crate::detect::probes::vectors::replay("iec104");
    }
}
