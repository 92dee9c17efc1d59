//! Replays the recorded answers of the Python probes (core/tests/vectors/<probe>.jsonl, made by
//! tests/oracle/record_probe_vectors.py) against the Rust probe of the same name.
use super::{lookup, Kind, Status};
use crate::meta::Value;
use std::path::PathBuf;

/// A text fact of a probe's answer, for the probes' own tests.
pub fn text(r: &super::ProbeResult, key: &str) -> Option<String> {
    r.meta.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::No => "no",
        Status::Match => "match",
        Status::More => "more",
    }
}

/// Check every vector of `probe`; returns the number checked. Panics with the first mismatches.
/// The committed vectors, and, when `PW_VECTOR_DIR` names a folder, that folder's vectors for
/// `probe` too (recorded locally from captures that may not be committed).
pub fn replay(probe: &str) -> usize {
    let mut n = replay_file(probe, &vector_path(probe));
    if let Some(dir) = std::env::var_os("PW_VECTOR_DIR") {
        let extra = PathBuf::from(dir).join(format!("{probe}.jsonl"));
        if extra.exists() {
            n += replay_file(probe, &extra);
        }
    }
    n
}

pub fn vector_path(probe: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(format!("{probe}.jsonl"))
}

pub fn replay_file(probe: &str, path: &std::path::Path) -> usize {
    let p = lookup(probe).unwrap_or_else(|| panic!("no probe named {probe}"));
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut failures = Vec::new();
    let mut n = 0;
    for (lineno, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let from_client = v["from_client"].as_bool().unwrap();
        let got = match p.kind {
            Kind::Single(f) => f(&unhex(v["input"].as_str().unwrap()), from_client),
            Kind::Units(f) => {
                let units: Vec<Vec<u8>> = v["units"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| unhex(u.as_str().unwrap()))
                    .collect();
                let refs: Vec<&[u8]> = units.iter().map(|u| u.as_slice()).collect();
                f(&refs, from_client)
            }
        };
        n += 1;
        let want_status = v["status"].as_str().unwrap();
        let want_meta = v["meta"].as_object().cloned().unwrap_or_default();
        let want_done = v["done"].as_bool().unwrap();
        // Metadata is compared only on a match: Python probes return none otherwise.
        let same = status_name(got.status) == want_status
            && (got.status != Status::Match || (got.meta == want_meta && got.done == want_done));
        if !same && failures.len() < 5 {
            failures.push(format!(
                "line {}: want {want_status} {want_meta:?} done={want_done}, got {:?} {:?} done={}",
                lineno + 1,
                got.status,
                got.meta,
                got.done
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{probe}: {} of {n} vectors differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

/// The probe named survives hostile shapes: every length up to 300 of zeros, of 0xFF, and of
/// pseudo-random bytes behind each possible first byte, alone and as units.
pub fn never_panics(name: &str) {
    let probe = lookup(name).expect("a registered probe");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = vec![0u8; 300];
    for b in noise.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = (state >> 24) as u8;
    }
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for len in 0..=300 {
        inputs.push(vec![0; len]);
        inputs.push(vec![0xFF; len]);
    }
    for first in 0..=255u8 {
        for len in [1, 2, 4, 8, 12, 14, 20, 28, 32, 40, 48, 64, 240, 300] {
            let mut b = noise[..len].to_vec();
            b[0] = first;
            inputs.push(b);
        }
    }
    for input in &inputs {
        for from_client in [true, false] {
            match probe.kind {
                super::Kind::Single(f) => {
                    f(input, from_client);
                }
                super::Kind::Units(f) => {
                    f(&[input, input, &input[input.len() / 2..]], from_client);
                }
            }
        }
    }
}

/// Every matching vector of `name` (committed, and under `PW_VECTOR_DIR`) starts with one
/// of the probe's first bytes (a units probe: one of its datagrams does).
pub fn first_bytes_hold(name: &str) -> usize {
    let gate = lookup(name)
        .and_then(|p| p.first_bytes)
        .expect("a gated probe");
    let mut files = vec![vector_path(name)];
    if let Some(dir) = std::env::var_os("PW_VECTOR_DIR") {
        files.push(std::path::PathBuf::from(dir).join(format!("{name}.jsonl")));
    }
    let mut checked = 0;
    for file in files.iter().filter(|f| f.exists()) {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["status"] != "match" {
                continue;
            }
            let inputs: Vec<Vec<u8>> = match v.get("input") {
                Some(i) => vec![const_hex::decode(i.as_str().unwrap()).unwrap()],
                None => v["units"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| const_hex::decode(u.as_str().unwrap()).unwrap())
                    .collect(),
            };
            assert!(
                inputs
                    .iter()
                    .any(|i| i.first().is_some_and(|b| gate.contains(b))),
                "{name}: matching vector outside first_bytes: {line}"
            );
            checked += 1;
        }
    }
    checked
}
