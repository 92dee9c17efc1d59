//! Fuzz harnesses for portwatch-core: each takes arbitrary bytes, drives one part of the engine
//! and panics only when that part broke its contract (a panic of its own, or a failed invariant).
//!
//! The libFuzzer binaries in `fuzz_targets/` are one-line wrappers around these functions, and
//! core/tests/fuzz_regressions.rs includes these same files to replay saved crash inputs under a
//! plain `cargo test` (so each file must compile against `_core` and std alone).
#![forbid(unsafe_code)]

pub mod bpf;
pub mod decode;
pub mod dns_tunnel;
pub mod flows;
pub mod meta;
pub mod parallel;
pub mod probes;
pub mod signature;
pub mod source;
