//! WireGuard: four message types, each with three reserved zero bytes and a fixed or aligned size.
//!
//! `wireguard`: one UDP datagram. Handshake initiation (1) is 148 bytes, response (2) 92, cookie
//! reply (3) 64; transport data (4) is 32 bytes of header and tag plus a payload padded to 16
//! bytes. The sender index of types 1 and 2 is non-zero.
//!
//! Meta: `wireguard_message` ("initiation", "response", "cookie", "data").
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] =
    &[Probe::single("wireguard", probe).answers(answers!["wireguard_message"])];

/// Type, header and authentication tag of a transport data message.
const DATA_OVERHEAD: usize = 32;

pub fn probe(data: &[u8], _from_client: bool) -> ProbeResult {
    if data.len() < DATA_OVERHEAD || data[1..4] != [0, 0, 0] {
        return ProbeResult::no();
    }
    let zero_sender = data[4..8] == [0, 0, 0, 0];
    let name = match data[0] {
        1 if data.len() == 148 && !zero_sender => "initiation",
        2 if data.len() == 92 && !zero_sender => "response",
        3 if data.len() == 64 => "cookie",
        4 if (data.len() - DATA_OVERHEAD).is_multiple_of(16) => "data",
        _ => return ProbeResult::no(),
    };
    let mut meta = Meta::new();
    meta.insert("wireguard_message".into(), json!(name));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("wireguard");
    }

    #[test]
    fn no_panic_on_hostile_shapes() {
        crate::detect::probes::vectors::never_panics("wireguard");
    }

    /// A message of the whitepaper's layout (5.4): type, 3 reserved zeros, sender index, body.
    fn message(kind: u8, len: usize) -> Vec<u8> {
        let mut p = vec![kind, 0, 0, 0, 0x4f, 0x1c, 0x22, 0x9a];
        p.resize(len, 0xa5);
        p
    }

    #[test]
    fn handshake_and_data() {
        assert_eq!(
            probe(&message(1, 148), true).meta["wireguard_message"],
            "initiation"
        );
        assert_eq!(
            probe(&message(2, 92), false).meta["wireguard_message"],
            "response"
        );
        assert_eq!(
            probe(&message(3, 64), false).meta["wireguard_message"],
            "cookie"
        );
        // Keepalive: an empty transport payload, just header and tag.
        assert_eq!(
            probe(&message(4, 32), true).meta,
            json!({"wireguard_message": "data"})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(probe(&message(4, 32 + 24), true).status, Status::No);
        assert_eq!(probe(&message(1, 147), true).status, Status::No);
        let mut anonymous = message(1, 148);
        anonymous[4..8].fill(0);
        assert_eq!(probe(&anonymous, true).status, Status::No);
    }
}
