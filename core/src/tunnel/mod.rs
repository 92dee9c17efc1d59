//! What rides inside an SSH or TLS tunnel, from its packet shape alone (no decryption): the
//! `meta.tunnel_contents` verdict `{"kind", "confidence", "class", "evidence"}` the core puts on
//! every ssh/tls TCP record with a shape (see docs/tunnels.md).
//!
//! `features` turns `meta.shape` (flow/shape.rs) into a few readable numbers, `forest` lets
//! the bagged small trees of portwatch/data/tunnel-model.json vote, `evidence` explains the
//! verdict in words, `pyfmt` writes numbers the way Python did (the classifier was Python's
//! until issue 15; its output is unchanged byte for byte). Python's `portwatch.tunnels` is a
//! thin layer over these functions (`py`).
//!
//! The model file is the one source: embedded here at build time (cargo rebuilds when it
//! changes; `benchmarks/tunnel_eval.py --write-model` writes it).
#![forbid(unsafe_code)]

pub mod evidence;
pub mod features;
pub mod forest;
#[cfg(feature = "python")]
pub(crate) mod py;
pub mod pyfmt;

use std::sync::OnceLock;

use crate::flow::shape::ShapeView;
use crate::meta::{FlowMeta, Map, Value};
use crate::record::FlowRecord;
pub use forest::Model;

/// The shipped model, as trained by benchmarks/tunnel_eval.py.
pub static MODEL_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../portwatch/data/tunnel-model.json"
));

/// The shipped model, loaded once; None if it does not load (a test says it does).
pub fn shipped() -> Option<&'static Model> {
    static MODEL: OnceLock<Option<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| Model::from_json(MODEL_JSON).ok())
        .as_ref()
}

/// The trees a protocol's flows are judged by.
fn carrier(protocol: &str) -> &str {
    match protocol {
        "ssh" | "tls" => protocol,
        _ => "unknown",
    }
}

fn verdict(kind: &str, confidence: f64, class: Option<&str>, evidence: String) -> Value {
    let mut v = Map::with_capacity(4);
    v.insert("kind".into(), kind.into());
    v.insert("confidence".into(), confidence.into());
    if let Some(c) = class {
        v.insert("class".into(), c.into());
    }
    v.insert("evidence".into(), evidence.into());
    Value::Object(v)
}

/// `meta.tunnel_contents` for a flow's meta, or None when it has no (usable) shape or the model
/// is one for other features.
pub fn classify(protocol: &str, meta: &FlowMeta, model: &Model) -> Option<Value> {
    let shape = meta.value_of("shape")?;
    classify_shape(protocol, shape.as_object()?, meta, model)
}

/// What the classifier reads of a flow's shape: `meta.shape`'s map, or the flow's own numbers
/// (`ShapeView`: the same values, without the map made).
pub trait ShapeSource {
    /// The sequence as `features::sequence` reads it; None when malformed.
    fn sequence(&self, protocol: &str) -> Option<features::Sequence>;
    /// `c2s.bytes` (`to_client`: `s2c.bytes`) as `features::dir_bytes` reads it.
    fn dir_bytes(&self, to_client: bool) -> Option<f64>;
}

impl ShapeSource for Map<String, Value> {
    fn sequence(&self, protocol: &str) -> Option<features::Sequence> {
        features::sequence(self, protocol)
    }

    fn dir_bytes(&self, to_client: bool) -> Option<f64> {
        features::dir_bytes(self, if to_client { "s2c" } else { "c2s" })
    }
}

impl ShapeSource for ShapeView<'_> {
    fn sequence(&self, protocol: &str) -> Option<features::Sequence> {
        let (sizes, iats) = ShapeView::sequence(self)?;
        features::Sequence::of(sizes, iats, protocol)
    }

    fn dir_bytes(&self, to_client: bool) -> Option<f64> {
        Some(self.bytes(to_client))
    }
}

/// `classify` with the flow's shape given.
pub fn classify_shape(
    protocol: &str,
    shape: &impl ShapeSource,
    meta: &FlowMeta,
    model: &Model,
) -> Option<Value> {
    if !model.usable {
        return None;
    }
    if let Some(named) = application_named(protocol, meta) {
        return Some(verdict(
            "unknown",
            0.0,
            None,
            format!("the client's ALPN names what rides inside ({named}): no shape to guess"),
        ));
    }
    let seq = shape.sequence(protocol)?;
    if seq.sizes.len() < features::min_packets(protocol) {
        let after = if protocol == "ssh" {
            "the user authentication"
        } else {
            "the handshake"
        };
        return Some(verdict(
            "unknown",
            0.0,
            None,
            format!(
                "only {} packets after {after}: too few to tell what rides inside",
                seq.sizes.len()
            ),
        ));
    }
    let (c2s, s2c) = (shape.dir_bytes(false)?, shape.dir_bytes(true)?);
    let f = features::features(&seq, protocol, c2s, s2c)?;
    let p = model.predict(&f, carrier(protocol));
    let kind = model
        .class(&p.class)
        .and_then(|c| c.kind.as_deref())
        .unwrap_or("unknown");
    if p.dist > model.max_distance {
        let text = format!(
            "no known shape fits (nearest: {kind}, {} spreads away)",
            pyfmt::fixed(p.dist, 1)
        );
        return Some(verdict("unknown", 0.0, Some(&p.class), text));
    }
    let vol = evidence::Volume {
        kb_up: c2s / 1000.0,
        kb_down: s2c / 1000.0,
    };
    let text = evidence::evidence(kind, &seq, vol, &f, protocol, &p.path);
    Some(verdict(
        kind,
        pyfmt::round_to(p.prob, 3),
        Some(&p.class),
        text,
    ))
}

/// A TLS client's ALPN offer (RFC 7301) that names only applications other than HTTP (NTS-KE's
/// "ntske/1", DoT's "dot", "imap", "xmpp-client"...): the protocols offered, joined. The shapes
/// the model knows are of tunnels, whose clients offer HTTP or nothing; under TLS 1.3 the
/// server's pick is encrypted, so the offer is what the wire shows.
fn application_named(protocol: &str, meta: &FlowMeta) -> Option<String> {
    if protocol != "tls" {
        return None;
    }
    let alpn = meta.value_of("alpn")?;
    let offered: Vec<&str> = alpn.as_array()?.iter().filter_map(Value::as_str).collect();
    let http = |p: &&str| {
        ["http/", "h2", "h3", "hq-", "spdy/"]
            .iter()
            .any(|prefix| p.starts_with(prefix))
    };
    (!offered.is_empty() && !offered.iter().any(http)).then(|| offered.join(", "))
}

/// Set `meta.tunnel_contents` on the record of an ssh/tls TCP flow with a shape (unless a
/// verdict is there already), with the shipped model: from the flow's own shape where the
/// record's `meta.shape` was written from it (read as numbers), else from the record's map.
pub fn annotate_shape(rec: &mut FlowRecord, shape: Option<&ShapeView>) {
    if rec.transport != "tcp"
        || !matches!(&*rec.protocol, "ssh" | "tls")
        || rec.meta.contains_key("tunnel_contents")
    {
        return;
    }
    let Some(model) = shipped() else { return };
    let verdict = match shape {
        Some(view) => classify_shape(&rec.protocol, view, &rec.meta, model),
        None => classify(&rec.protocol, &rec.meta, model),
    };
    if let Some(v) = verdict {
        rec.meta.insert("tunnel_contents".into(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{json, Meta};

    /// `annotate_shape` from the record's map alone, as for a record made outside the tracker.
    fn annotate(rec: &mut FlowRecord) {
        annotate_shape(rec, None);
    }

    #[test]
    fn the_shipped_model_loads_and_is_bounded() {
        let m = shipped().expect("portwatch/data/tunnel-model.json loads");
        assert!(m.usable);
    }

    #[test]
    fn every_model_number_parses_exactly() {
        // serde_json's default float parser is exact for short decimals only; Python's is
        // always exact. The model's numbers are rounded by the trainer, so both agree; check.
        let re = regex::Regex::new(r"-?\d+(\.\d+)?([eE][-+]?\d+)?").unwrap();
        let v: Value = serde_json::from_str(MODEL_JSON).unwrap();
        let mut ours = Vec::new();
        fn collect(v: &Value, out: &mut Vec<f64>) {
            match v {
                Value::Number(n) => out.push(n.as_f64().unwrap()),
                Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
                Value::Object(o) => o.values().for_each(|x| collect(x, out)),
                _ => {}
            }
        }
        collect(&v, &mut ours);
        // Numbers outside strings, in document order (the "about" text has none).
        let text: String = MODEL_JSON
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let exact: Vec<f64> = re
            .find_iter(&text)
            .map(|m| m.as_str().parse::<f64>().unwrap())
            .collect();
        assert_eq!(ours.len(), exact.len());
        for (a, b) in ours.iter().zip(&exact) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    fn record(protocol: &str, meta: Value) -> FlowRecord {
        FlowRecord {
            ts_start: 0.0,
            ts_end: 0.0,
            transport: "tcp",
            src_ip: String::new(),
            src_port: 1,
            dst_ip: String::new(),
            dst_port: 2,
            orientation: "",
            protocol: protocol.into(),
            confidence: 1.0,
            packets_c2s: 0,
            packets_s2c: 0,
            bytes_c2s: 0,
            bytes_s2c: 0,
            meta: Meta::from(meta.as_object().cloned().unwrap_or_default()).into(),
            pcap: None,
            flow_id: 1,
            community_id: String::new(),
            duration: 0.0,
            state: "",
            history: String::new(),
        }
    }

    #[test]
    fn short_sequences_say_so() {
        let shape = json!({"shape": {"sizes": [36, -36], "iat_ms": [0.0, 1.0]}});
        let mut rec = record("ssh", shape.clone());
        annotate(&mut rec);
        assert_eq!(
            rec.meta["tunnel_contents"],
            json!({"kind": "unknown", "confidence": 0.0,
                   "evidence": "only 2 packets after the user authentication: too few to tell what rides inside"})
        );
        let mut rec = record("tls", shape.clone());
        annotate(&mut rec);
        assert!(rec.meta["tunnel_contents"]["evidence"]
            .as_str()
            .unwrap()
            .contains("after the handshake"));
        // Not for other protocols, not twice, not without a shape.
        for (p, meta) in [
            ("http", shape.clone()),
            (
                "ssh",
                json!({"shape": {"sizes": [1], "iat_ms": [0.0]}, "tunnel_contents": 1}),
            ),
            ("ssh", json!({})),
            ("ssh", json!({"shape": [1, 2]})),
        ] {
            let mut rec = record(p, meta.clone());
            annotate(&mut rec);
            assert_eq!(rec.meta.get("tunnel_contents"), meta.get("tunnel_contents"));
        }
    }

    #[test]
    fn an_alpn_offer_without_http_names_the_application() {
        // NTS-KE (RFC 8915): one request and one response, which the model would call web
        // traffic; the client offered only "ntske/1".
        let shape = json!({"sizes": [120, -900, 40, -300], "iat_ms": [0.0, 1.0, 1.0, 1.0]});
        let mut rec = record("tls", json!({"shape": shape, "alpn": ["ntske/1"]}));
        annotate(&mut rec);
        assert_eq!(
            rec.meta["tunnel_contents"],
            json!({"kind": "unknown", "confidence": 0.0,
                   "evidence": "the client's ALPN names what rides inside (ntske/1): no shape to guess"})
        );
        // An offer with HTTP in it, or none, leaves it to the shape.
        for alpn in [
            json!(["h2", "http/1.1"]),
            json!(["dot", "http/1.1"]),
            json!([]),
        ] {
            let mut rec = record("tls", json!({"shape": shape, "alpn": alpn}));
            annotate(&mut rec);
            let text = rec.meta["tunnel_contents"]["evidence"].as_str().unwrap();
            assert!(!text.contains("ALPN"), "{text}");
        }
    }

    #[test]
    fn a_typed_session_is_interactive() {
        // After 10 authentication packets: keystrokes after human pauses, each echoed at once.
        let mut sizes: Vec<i64> = vec![100; 10];
        let mut iats: Vec<f64> = vec![1.0; 10];
        for _ in 0..20 {
            sizes.extend([36, -36]);
            iats.extend([180.0, 0.4]);
        }
        let meta = json!({"shape": {"sizes": sizes, "iat_ms": iats,
                                    "c2s": {"bytes": 1720}, "s2c": {"bytes": 720}}});
        let v = classify(
            "ssh",
            &Meta::from(meta.as_object().cloned().unwrap()).into(),
            shipped().unwrap(),
        )
        .unwrap();
        assert_eq!(v["kind"], "interactive", "{v}");
        let text = v["evidence"].as_str().unwrap();
        assert!(text.starts_with(
            "20 client packets of 36-36 bytes at typing intervals (median 180 ms), 20 of them"
        ));
        assert!(text.contains("[rule: "), "{text}");
    }
}
