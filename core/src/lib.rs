//! portwatch's engine: capture sources, decoding, flows and reassembly, and detection.
//!
//! Python drives it through `portwatch._core` (src/py/, built with the `python` feature) and
//! sees flow records and events, never packets.
#![deny(unsafe_code)]

/// Records are built of many small maps, strings and vectors, made per flow and dropped soon
/// after (most of them together, as a capture drains): glibc's allocator spent a fifth of the
/// core example's time on them (consolidating its fast bins on each larger request); mimalloc's
/// per-size free pages do not. Rust's allocations only: Python's objects keep Python's
/// allocator. Built without transparent huge pages (feature `no_thp`), which cost 20 MB of peak
/// RSS and page-zeroing time for nothing here, and as mimalloc 2 (feature `v2`): mimalloc 3, the
/// crate's default since 0.1.49, ran as fast and peaked 4-6 MB higher (CLI on mix-2m and on the
/// 30,000- and 100,000-flow captures of benchmarks/README.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod ahead;
pub mod bpf;
pub mod compact_json;
mod cpu_cache;
pub mod csv_line;
pub mod decode;
pub mod detect;
pub mod dns_name;
pub mod dns_tunnel;
pub mod eve_line;
pub mod flow;
mod handoff;
pub mod meta;
pub mod monitor;
pub mod parallel;
pub mod pipeline;
pub mod predecode;
pub mod pyjson;
pub mod quiet_lines;
pub mod record;
pub mod source;
pub mod text;
pub mod tunnel;

#[cfg(feature = "python")]
mod py;
