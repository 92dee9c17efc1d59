//! The Rust engine against the Python oracle's recorded answers (tests/oracle/record_engine_vectors.py):
//! core/tests/vectors/engine/{regex,classify}.jsonl, and when `PW_ENGINE_VECTOR_DIR` names a
//! folder, its files too (recorded locally from captures that may not be committed).
use _core::detect::engine::{decision_json, Engine};
use _core::detect::probes;
use _core::detect::signature::{load_dirs, Signature, Transport};
use _core::detect::upgrades::upgrade_meta;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn unhex(s: &str) -> Vec<u8> {
    const_hex::decode(s).expect("hex")
}

fn sig_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../signatures")
}

fn vector_dirs() -> Vec<PathBuf> {
    let mut v = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/engine")];
    if let Some(d) = std::env::var_os("PW_ENGINE_VECTOR_DIR") {
        v.push(PathBuf::from(d));
    }
    v
}

fn signatures() -> Vec<Signature> {
    load_dirs(&sig_dir(), &[]).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// Whether the real probes are registered (after integration), not the scratch stand-ins.
fn real_probes() -> bool {
    probes::lookup("fake_ping").is_none()
}

#[test]
fn every_shipped_regex_compiles_and_searches_like_python() {
    let sigs = signatures();
    let pats: Vec<(&str, usize, &_core::detect::pyregex::Pattern, usize)> = sigs
        .iter()
        .flat_map(|s| {
            s.matches.iter().enumerate().filter_map(move |(i, m)| {
                m.regex
                    .as_ref()
                    .map(|r| (s.protocol.as_str(), i, r, m.depth))
            })
        })
        .collect();
    let mut checked = 0;
    for dir in vector_dirs() {
        let Ok(text) = std::fs::read_to_string(dir.join("regex.jsonl")) else {
            continue;
        };
        let mut lines = text.lines();
        let head: Value = serde_json::from_str(lines.next().expect("header")).expect("json");
        let want: Vec<(String, usize, usize)> =
            serde_json::from_value(head["patterns"].clone()).expect("patterns");
        let got: Vec<(String, usize, usize)> = pats
            .iter()
            .map(|(p, i, _, d)| (p.to_string(), *i, *d))
            .collect();
        assert_eq!(
            got, want,
            "the signature set changed: re-record the vectors"
        );
        let mut bad = Vec::new();
        for line in lines {
            let v: Value = serde_json::from_str(line).expect("json");
            let data = unhex(v["input"].as_str().expect("input"));
            let hits: Vec<usize> = serde_json::from_value(v["hits"].clone()).expect("hits");
            for (k, (proto, i, rx, depth)) in pats.iter().enumerate() {
                checked += 1;
                if rx.search(&data, *depth) != hits.contains(&k) && bad.len() < 10 {
                    bad.push(format!(
                        "{proto} match[{i}] /{}/ on {}",
                        String::from_utf8_lossy(&rx.source),
                        v["input"]
                    ));
                }
            }
        }
        assert!(
            bad.is_empty(),
            "{}: Rust and Python disagree:\n{}",
            dir.display(),
            bad.join("\n")
        );
    }
    assert!(checked > 0);
}

fn engine_with_hints(sigs: Vec<Signature>) -> Engine {
    // The services hints come from /etc/services in Python; the vectors were recorded with the
    // signatures' own ports only mattering for ties, so replay with those (Engine::new adds them).
    Engine::new(sigs, HashMap::new())
}

fn units(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .expect("units")
        .iter()
        .map(|u| unhex(u.as_str().expect("hex")))
        .collect()
}

#[test]
fn classify_like_python() {
    let sigs = signatures();
    let probe_free: Vec<bool> = sigs.iter().map(|s| s.probe_names.is_empty()).collect();
    let by_name: HashMap<String, usize> = sigs
        .iter()
        .enumerate()
        .map(|(i, s)| (s.protocol.clone(), i))
        .collect();
    let engine = engine_with_hints(sigs);
    let real = real_probes();
    let (mut n, mut bad) = (0, Vec::new());
    for dir in vector_dirs() {
        let Ok(text) = std::fs::read_to_string(dir.join("classify.jsonl")) else {
            continue;
        };
        for (lineno, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line).expect("json");
            let c = units(&v["client"]);
            let s = units(&v["server"]);
            let cr: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            let sr: Vec<&[u8]> = s.iter().map(Vec::as_slice).collect();
            if v["call"] == "upgrade_meta" {
                let proto = v["protocol"].as_str().expect("protocol");
                // The facts come from the protocol's signature (its [conversation] table).
                let got = match by_name.get(proto).map(|&i| engine.signature(i)) {
                    Some(sig) => Value::from(upgrade_meta(sig, &cr, &sr, &engine)),
                    None => Value::from(_core::meta::Meta::new()),
                };
                // tunnel_protocol needs the probes (inner classification) in scratch.
                if real
                    || got.get("tunnel_protocol").is_none()
                        && v["meta"].get("tunnel_protocol").is_none()
                {
                    n += 1;
                    if !same(&got, &v["meta"]) && bad.len() < 10 {
                        bad.push(format!(
                            "{}:{}: upgrade_meta want {} got {got}",
                            dir.display(),
                            lineno + 1,
                            v["meta"]
                        ));
                    }
                }
                continue;
            }
            let want = &v["decision"];
            // With stand-in probes only decisions for probe-free signatures can be checked.
            if !real {
                let proto = want.get("protocol").and_then(Value::as_str);
                if !proto
                    .and_then(|p| by_name.get(p))
                    .is_some_and(|&i| probe_free[i])
                {
                    continue;
                }
            }
            let t =
                Transport::parse(v["transport"].as_str().expect("transport")).expect("transport");
            let d = engine
                .classify(
                    t,
                    &cr,
                    &sr,
                    v["server_port"].as_u64().expect("port") as u16,
                    v["may_swap"].as_bool().expect("may_swap"),
                    v["final"].as_bool().expect("final"),
                    v["client_port"].as_u64().map(|p| p as u16),
                )
                .ok();
            let got = d.as_ref().map_or(Value::Null, decision_json);
            n += 1;
            if !same(&got, want) && bad.len() < 10 {
                bad.push(format!(
                    "{}:{}: want {want}\n   got {got}",
                    dir.display(),
                    lineno + 1
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
    eprintln!("{n} calls checked");
}

/// JSON equality, floats within 1e-12: serde_json's default float parsing is not correctly
/// rounded (0.9099999999999999 reads as 0.91), so the recorded value may be off by an ulp.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs() < 1e-12
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}
