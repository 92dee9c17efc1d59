//! Replays every saved fuzz crash input (tests/fuzz_regressions/<target>/*), and the committed
//! fuzz corpus (fuzz/corpus/<target>/), through the harness its fuzz target runs: the harness
//! files of core/fuzz/src are included here as they are, so a fixed crash stays fixed under a
//! plain `cargo test`, without cargo-fuzz or libFuzzer.
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../fuzz/src/probes.rs"]
mod probes;

#[allow(dead_code)]
#[path = "../fuzz/src/source.rs"]
mod source;

#[allow(dead_code)]
#[path = "../fuzz/src/decode.rs"]
mod decode;

#[allow(dead_code)]
#[path = "../fuzz/src/signature.rs"]
mod signature;

#[allow(dead_code)]
#[path = "../fuzz/src/flows.rs"]
mod flows;

#[allow(dead_code)]
#[path = "../fuzz/src/dns_tunnel.rs"]
mod dns_tunnel;

#[allow(dead_code)]
#[path = "../fuzz/src/meta.rs"]
mod meta;

#[allow(dead_code)]
#[path = "../fuzz/src/bpf.rs"]
mod bpf;

#[allow(dead_code)]
#[path = "../fuzz/src/parallel.rs"]
mod parallel;

/// A fuzz harness: arbitrary bytes in, a panic when the code under test broke its contract.
type Harness = fn(&[u8]);

/// Every target: `TARGETS` (its name and the harness that replays its inputs), and a test each,
/// `regressions::<target>`, that replays its saved inputs and corpus (`replay`).
macro_rules! targets {
    ($($target:ident),* $(,)?) => {
        const TARGETS: &[(&str, Harness)] = &[$((stringify!($target), $target::run)),*];

        mod regressions {
            use super::*;
            $(
                #[test]
                fn $target() {
                    replay(stringify!($target), $target::run);
                }
            )*
        }
    };
}

targets!(probes, source, decode, signature, flows, dns_tunnel, meta, bpf, parallel);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions")
}

/// The saved inputs in `dir` (README-like text files excepted), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    out.sort();
    out
}

/// Runs every input of `dir` through `run`: the inputs that still fail (a panic, which the
/// default hook prints with its message above the test's result).
fn failing(dir: &Path, run: Harness) -> Vec<String> {
    let mut failed = Vec::new();
    for path in inputs(dir) {
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    failed
}

/// The target's saved crash inputs, then its committed corpus (core/fuzz/corpus/<target>/):
/// libFuzzer stops at start-up on a corpus input that fails, and these are the most varied
/// inputs the engine has, so a change that breaks one is caught by `cargo test` too.
fn replay(target: &str, run: Harness) {
    let failed = failing(&root().join(target), run);
    assert!(
        failed.is_empty(),
        "{target}: these inputs still fail: {failed:#?}"
    );
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let failed = failing(&corpus.join(target), run);
    assert!(
        failed.is_empty(),
        "{target}: these corpus inputs fail: {failed:#?}"
    );
}

/// The harnesses themselves on a few fixed inputs, so that a broken harness shows here too.
#[test]
fn harnesses_accept_trivial_inputs() {
    for (_, run) in TARGETS {
        run(b"");
        run(b"\0");
        run(b"\x01\x02\x03\x04\x05\x06\x07\x08");
    }
}

#[test]
fn every_folder_names_a_target() {
    for entry in std::fs::read_dir(root()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "tests/fuzz_regressions/{name}: no fuzz target of that name"
            );
        }
    }
}

/// The replay itself: a failing input is reported by name, a README is skipped.
#[test]
fn replay_reports_each_failing_input() {
    let dir = std::env::temp_dir().join(format!("pw-fuzz-regr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ok"), b"fine").unwrap();
    std::fs::write(dir.join("crash-1"), b"boom").unwrap();
    std::fs::write(dir.join("README.md"), b"boom").unwrap();
    let failed = failing(&dir, |d| assert!(d != b"boom", "boom"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].ends_with("crash-1"), "{failed:?}");
}
