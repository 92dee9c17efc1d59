//! Runs the core over one capture without Python: flows counted, time and peak memory printed.
//! For profiling (`perf record cargo run --release --example analyze -- FILE`).
//!
//! `analyze FILE [--workers N] [--dump OUT]`: N worker threads (`parallel`, as `--workers` in
//! the CLI); `--dump` writes every record's Debug text, one a line, for comparing runs.
use std::io::Write;
use std::sync::Arc;

use _core::ahead::Analysis;
use _core::detect::builtin::BUILTIN;
use _core::detect::engine::Engine;
use _core::detect::signature::load_texts_and;
use _core::parallel::ParallelAnalyzer;
use _core::pipeline::{Analyzer, Config, KnownPorts};
use _core::record::FlowRecord;
use _core::source::CaptureReader;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut path = None;
    let mut workers = 1usize;
    let mut dump = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--workers" => workers = it.next().and_then(|n| n.parse().ok()).expect("--workers N"),
            "--dump" => dump = Some(it.next().expect("--dump OUT").clone()),
            _ => path = Some(a.clone()),
        }
    }
    let path = path.expect("usage: analyze FILE [--workers N] [--dump OUT]");
    let sigs = load_texts_and(BUILTIN, &[]).expect("shipped signatures load");
    let engine = Arc::new(Engine::new(sigs, Default::default()));
    let mut out =
        dump.map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("dump file opens")));
    let mut emit = |recs: &mut Vec<FlowRecord>| {
        let n = recs.len();
        if let Some(w) = out.as_mut() {
            for r in recs.iter() {
                writeln!(w, "{r:?}").expect("dump written");
            }
        }
        recs.clear();
        n
    };
    let mut reader = CaptureReader::open(&path).expect("capture opens");
    let start = std::time::Instant::now();
    let mut flows = 0usize;
    let packets;
    let read_secs;
    if workers > 1 {
        let mut p = ParallelAnalyzer::new(
            Config::default(),
            engine,
            Arc::new(KnownPorts::default()),
            None,
            workers,
        );
        loop {
            let (mut recs, done) = p.run(&mut reader, 65536, 1024);
            flows += emit(&mut recs);
            if done {
                break;
            }
        }
        read_secs = start.elapsed().as_secs_f64();
        // As Python drains: a slice at a time.
        loop {
            let mut recs = p.drain_some(2048);
            if recs.is_empty() {
                break;
            }
            flows += emit(&mut recs);
        }
        packets = p.stats().packets;
    } else {
        let mut analyzer = Analyzer::new(
            Config::default(),
            engine,
            Arc::new(KnownPorts::default()),
            None,
        );
        // As `Ahead` reads for Python: a batch of frames at a time.
        loop {
            let (mut recs, done) = analyzer.read(&mut reader, 65536, 1024);
            flows += emit(&mut recs);
            if done {
                break;
            }
        }
        packets = analyzer.flows.stats.packets;
        read_secs = start.elapsed().as_secs_f64();
        // As Python drains: a slice at a time, so a full table's records never exist at once.
        while !analyzer.drain_some(256) {
            flows += emit(&mut analyzer.flows.finished);
        }
        flows += emit(&mut analyzer.flows.finished);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{packets} packets, {flows} flows, {secs:.2} s (read {read_secs:.2} s, drain {:.2} s), \
         {:.0} packets/s, {workers} worker(s)",
        secs - read_secs,
        packets as f64 / secs
    );
}
