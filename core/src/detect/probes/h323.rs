//! H.323 call signalling (H.225.0 / Q.931) and control (H.245), both framed in TPKT (RFC 1006).
//!
//! A TPKT (version 3, length >= 8) whose payload is either a Q.931 message (protocol
//! discriminator 8, call reference of at most 2 bytes, a known message type), or - when it is not
//! an X.224 PDU (RDP, ISO-TSAP) - an H.245 message whose TPKT framing holds for a second PDU right
//! after the first.
//!
//! Meta: `q931_message` ("setup", "connect", "release-complete"...) or `h245: true`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[Probe::single("h323", probe).answers(answers!["q931_message"])];

const Q931_DISCRIMINATOR: u8 = 0x08;

fn q931_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        0x01 => "alerting",
        0x02 => "call-proceeding",
        0x03 => "progress",
        0x05 => "setup",
        0x07 => "connect",
        0x0d => "setup-ack",
        0x0f => "connect-ack",
        0x45 => "disconnect",
        0x4d => "release",
        0x5a => "release-complete",
        0x62 => "facility",
        0x6e => "notify",
        0x7b => "information",
        0x7d => "status",
        0x75 => "status-enquiry",
        _ => return None,
    })
}

/// The length of a TPKT header at `off`.
fn tpkt(data: &[u8], off: usize) -> Option<usize> {
    let &[3, 0, hi, lo] = data.get(off..off.checked_add(4)?)? else {
        return None;
    };
    let length = usize::from(u16::from_be_bytes([hi, lo]));
    (length >= 8).then_some(length)
}

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    let (Some(length), Some(&[first, second])) = (tpkt(data, 0), data.get(4..6)) else {
        return ProbeResult::no();
    };
    if data.len() < 8 {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    if first == Q931_DISCRIMINATOR {
        let crl = usize::from(second);
        let Some(name) = data
            .get(6 + crl)
            .and_then(|&t| q931_name(t))
            .filter(|_| crl <= 2)
        else {
            return ProbeResult::no();
        };
        meta.insert("q931_message".into(), json!(name));
        return ProbeResult::hit(meta);
    }
    // An X.224/COTP PDU (length indicator, then CR, CC, DT, DR or ED) is RDP or ISO-TSAP.
    let cotp = usize::from(first) == length - 5;
    if cotp && matches!(second & 0xf0, 0xe0 | 0xd0 | 0xf0 | 0x80 | 0x70) {
        return ProbeResult::no();
    }
    if tpkt(data, length).is_none() {
        return ProbeResult::no();
    }
    meta.insert("h245".into(), json!(true));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn tpkt_of(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![3, 0];
        out.extend_from_slice(&((4 + payload.len()) as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn q931_setup() {
        // Q.931: discriminator 8, call reference length 2 (0x1234), SETUP, bearer capability IE,
        // then the H.225.0 user-user IE (truncated here).
        let setup = tpkt_of(&[
            0x08, 0x02, 0x12, 0x34, 0x05, 0x04, 0x03, 0x88, 0x93, 0xa5, 0x7e, 0x00, 0x02, 0x05,
            0x20,
        ]);
        assert_eq!(probe(&setup, true).meta["q931_message"], "setup");
        let release = tpkt_of(&[0x08, 0x02, 0x92, 0x34, 0x5a, 0x08, 0x02, 0x80, 0x90]);
        assert_eq!(
            probe(&release, false).meta["q931_message"],
            "release-complete"
        );
        assert_eq!(
            probe(&tpkt_of(&[0x08, 0x03, 0, 0, 0, 0x05]), true).status,
            Status::No
        );
        assert_eq!(
            probe(&tpkt_of(&[0x08, 0x02, 0x12, 0x34, 0x04, 0]), true).status,
            Status::No
        );
    }

    #[test]
    fn h245_needs_two_pdus_and_no_cotp() {
        // H.245 PER: terminalCapabilitySet and masterSlaveDetermination requests.
        let tcs = tpkt_of(&[0x02, 0x70, 0x01, 0x06, 0x00, 0x08, 0x81, 0x75]);
        let msd = tpkt_of(&[0x01, 0x00, 0x80, 0x12, 0x34, 0x56]);
        assert_eq!(probe(&[tcs.clone(), msd].concat(), true).meta["h245"], true);
        assert_eq!(probe(&tcs, true).status, Status::No);
        // An X.224 Connection Request (RDP) is not H.245 even when followed by another TPKT.
        let cr = tpkt_of(&[0x06, 0xe0, 0x00, 0x00, 0x12, 0x34, 0x00]);
        assert_eq!(probe(&[cr.clone(), cr].concat(), true).status, Status::No);
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("h323");
    }
}
