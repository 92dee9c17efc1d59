//! portwatch's engine: capture sources, decoding, flows and reassembly, and detection.
//!
//! Python drives it through `portwatch._core` (src/py.rs, built with the `python` feature) and
//! sees flow records and events, never packets.
#![deny(unsafe_code)]

pub mod bpf;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod meta;
pub mod monitor;
pub mod parallel;
pub mod pipeline;
pub mod record;
pub mod source;
pub mod text;
pub mod tunnel;

#[cfg(feature = "python")]
mod py;
