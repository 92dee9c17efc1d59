//! Apache Kafka wire protocol: size-prefixed requests with an API key, version and client id.
//!
//! Client side only (responses carry no type, just the correlation id). A 4-byte size that fits
//! the first message (or is cut by the detection depth), an API key of the published range
//! (0-75), a version of at most 20, and a client id that is null (-1) or a short printable string
//! present in full.
//!
//! Meta: `kafka_api` (e.g. "produce", "fetch", "metadata", or "api-N"), `kafka_client_id`.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("kafka", probe)];

const MAX_API: u16 = 75;
const MAX_VERSION: u16 = 20;
const MAX_SIZE: i32 = 100 * 1024 * 1024;
const MAX_CLIENT_ID: usize = 256;

fn api_name(api: u16) -> Option<&'static str> {
    Some(match api {
        0 => "produce",
        1 => "fetch",
        2 => "list-offsets",
        3 => "metadata",
        8 => "offset-commit",
        9 => "offset-fetch",
        10 => "find-coordinator",
        11 => "join-group",
        12 => "heartbeat",
        13 => "leave-group",
        14 => "sync-group",
        17 => "sasl-handshake",
        18 => "api-versions",
        19 => "create-topics",
        36 => "sasl-authenticate",
        _ => return None,
    })
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    // size i32, api_key u16, api_version u16, correlation_id i32, client_id length i16.
    let [s0, s1, s2, s3, a0, a1, v0, v1, _, _, _, _, c0, c1, ..] = *data else {
        return ProbeResult::no();
    };
    let size = i32::from_be_bytes([s0, s1, s2, s3]);
    let api = u16::from_be_bytes([a0, a1]);
    let version = u16::from_be_bytes([v0, v1]);
    let id_len = i16::from_be_bytes([c0, c1]);
    if !from_client || !(10..=MAX_SIZE).contains(&size) || api > MAX_API || version > MAX_VERSION {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    let name = api_name(api).map_or_else(|| format!("api-{api}"), str::to_owned);
    meta.insert("kafka_api".into(), json!(name));
    if id_len == -1 {
        return ProbeResult::hit(meta);
    }
    let Ok(id_len) = usize::try_from(id_len) else {
        return ProbeResult::no();
    };
    // size >= 10 was checked, so the cast cannot lose anything.
    if !(1..=MAX_CLIENT_ID).contains(&id_len) || 10 + id_len > size as usize {
        return ProbeResult::no();
    }
    let Some(client_id) = data.get(14..14 + id_len) else {
        return ProbeResult::no();
    };
    if client_id.iter().any(|b| !(0x20..=0x7e).contains(b)) {
        return ProbeResult::no();
    }
    meta.insert("kafka_client_id".into(), json!(clean_text(client_id, 64)));
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    /// A request header v1 (KIP: RequestHeader) and an empty body.
    fn request(api: u16, version: u16, client_id: Option<&[u8]>) -> Vec<u8> {
        let mut body = api.to_be_bytes().to_vec();
        body.extend_from_slice(&version.to_be_bytes());
        body.extend_from_slice(&42i32.to_be_bytes());
        match client_id {
            Some(id) => {
                body.extend_from_slice(&(id.len() as i16).to_be_bytes());
                body.extend_from_slice(id);
            }
            None => body.extend_from_slice(&(-1i16).to_be_bytes()),
        }
        body.extend_from_slice(&[0, 0, 0, 0]);
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn api_versions_request() {
        let r = probe(&request(18, 3, Some(b"rdkafka")), true);
        assert_eq!(r.meta["kafka_api"], "api-versions");
        assert_eq!(r.meta["kafka_client_id"], "rdkafka");
        assert_eq!(
            probe(&request(18, 3, Some(b"rdkafka")), false).status,
            Status::No
        );
        let r = probe(&request(60, 0, None), true);
        assert_eq!(r.meta["kafka_api"], "api-60");
        assert!(!r.meta.contains_key("kafka_client_id"));
        assert_eq!(probe(&request(76, 0, None), true).status, Status::No);
        assert_eq!(probe(&request(3, 21, None), true).status, Status::No);
        assert_eq!(
            probe(&request(3, 1, Some(b"a\tb")), true).status,
            Status::No
        );
        assert_eq!(probe(&request(3, 1, Some(b"")), true).status, Status::No);
        let cut = request(3, 1, Some(b"producer-1"));
        assert_eq!(probe(&cut[..20], true).status, Status::No);
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("kafka");
    }
}
