//! Runs the core over one capture without Python: flows counted, time and peak memory printed.
//! For profiling (`perf record cargo run --release --example analyze -- FILE`).
use std::sync::Arc;

use _core::detect::builtin::BUILTIN;
use _core::detect::engine::Engine;
use _core::detect::signature::load_texts_and;
use _core::pipeline::{Analyzer, Config, KnownPorts};
use _core::source::CaptureReader;

fn main() {
    let path = std::env::args().nth(1).expect("usage: analyze FILE");
    let sigs = load_texts_and(BUILTIN, &[]).expect("shipped signatures load");
    let engine = Arc::new(Engine::new(sigs, Default::default()));
    let mut analyzer = Analyzer::new(Config::default(), engine, Arc::new(KnownPorts::default()), None);
    let mut reader = CaptureReader::open(&path).expect("capture opens");
    let start = std::time::Instant::now();
    let mut flows = 0usize;
    let mut packets = 0u64;
    while let Some(rec) = reader.next_record() {
        analyzer.packet(rec.ts, rec.linktype, rec.data);
        packets += 1;
        if packets.is_multiple_of(65536) {
            flows += analyzer.flows.finished.len();
            analyzer.flows.finished.clear();
        }
    }
    analyzer.drain();
    flows += analyzer.flows.finished.len();
    let secs = start.elapsed().as_secs_f64();
    println!("{packets} packets, {flows} flows, {secs:.2} s, {:.0} packets/s", packets as f64 / secs);
}
