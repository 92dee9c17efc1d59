//! DNP3 (IEEE 1815) data link frames: start bytes 0x05 0x64 and a header CRC that must check.
//!
//! TCP stream prefix or UDP datagram. The 10-byte link header (start, length >= 5, control,
//! destination, source, CRC-16/DNP over the first 8 bytes) is verified with its CRC: two bytes
//! of a random stream cannot pass this by accident.
//!
//! Meta: `dnp3_src`, `dnp3_dst` (link addresses), `dnp3_function` (link function code).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("dnp3", probe).answers(&["dnp3_function"])];

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
    fn python_vectors() {
        crate::detect::probes::vectors::replay("dnp3");
    }
}
