//! BACnet/IP (ASHRAE 135 Annex J): a BVLC header whose length is the datagram's, then an NPDU.
//!
//! `bacnet`: type 0x81, a known BVLC function, a 2-byte length equal to the datagram length;
//! functions that carry an NPDU (original unicast/broadcast, forwarded, distribute) must show
//! NPDU version 1 where it belongs.
//!
//! Meta: `bvlc_function` ("original-unicast", "original-broadcast", "forwarded"...).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("bacnet", probe)];

const BVLC_TYPE: u8 = 0x81;

fn function(f: u8) -> Option<&'static str> {
    Some(match f {
        0x00 => "result",
        0x01 => "write-bdt",
        0x02 => "read-bdt",
        0x03 => "read-bdt-ack",
        0x04 => "forwarded",
        0x05 => "register-foreign-device",
        0x06 => "read-fdt",
        0x07 => "read-fdt-ack",
        0x08 => "delete-fdt-entry",
        0x09 => "distribute-broadcast",
        0x0A => "original-unicast",
        0x0B => "original-broadcast",
        0x0C => "secure-bvll",
        _ => return None,
    })
}

/// Where the NPDU starts, for the functions that carry one (forwarded: after the origin B/IP
/// address and port).
fn npdu_at(f: u8) -> Option<usize> {
    match f {
        0x04 => Some(10),
        0x09..=0x0B => Some(4),
        _ => None,
    }
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let Some(&[kind, func, hi, lo]) = data.get(..4) else {
        return ProbeResult::no();
    };
    let Some(name) = function(func).filter(|_| kind == BVLC_TYPE) else {
        return ProbeResult::no();
    };
    if usize::from(u16::from_be_bytes([hi, lo])) != data.len() {
        return ProbeResult::no();
    }
    if let Some(at) = npdu_at(func) {
        // The NPDU: version 1 and a control byte at least.
        if data.len() < at + 2 || data[at] != 1 {
            return ProbeResult::no();
        }
    }
    let mut meta = Meta::new();
    meta.insert("bvlc_function".into(), json!(name));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("bacnet");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("bacnet");
    }

    #[test]
    fn who_is_broadcast() {
        // Original-Broadcast-NPDU, length 12: NPDU v1, control 0x20 (DNET present), DNET 0xffff,
        // DLEN 0, hop count 255, then the unconfirmed Who-Is APDU (0x10 0x08).
        let who_is = [
            0x81, 0x0b, 0x00, 0x0c, 0x01, 0x20, 0xff, 0xff, 0x00, 0xff, 0x10, 0x08,
        ];
        assert_eq!(
            probe(&who_is, false).meta,
            json!({"bvlc_function": "original-broadcast"})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(probe(&who_is[..11], false).status, Status::No);
        let mut v2 = who_is;
        v2[4] = 2;
        assert_eq!(probe(&v2, false).status, Status::No);
        // BVLC-Result (no NPDU): result code 0 (successful completion).
        assert_eq!(
            probe(&[0x81, 0x00, 0x00, 0x06, 0x00, 0x00], true).meta["bvlc_function"],
            "result"
        );
    }
}
