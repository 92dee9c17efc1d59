//! Target `parallel`: the threaded ways the CLI reads a capture. Their contract: the records are
//! the single analyzer's, the same records in the same order, whatever the traffic (tunnels whose
//! datagram and inner packet fall in two shards, IP fragments, announced flows, idle sweeps, a
//! clock that steps back):
//! - one worker (`ahead::Analysis::read`, as `Ahead` runs it), its frames decoded ahead on a
//!   thread of their own (`predecode::Predecoder`), read seven frames and three records at a time;
//! - `--workers 3` (`parallel::ParallelAnalyzer`), read five frames at a time.
//!
//! Input: the decode target's layout (a link-type selector byte, then frames with steps of the
//! capture clock). Each way is drained two records at a time. Checked: its records equal the
//! single analyzer's, field by field and fact by fact; every packet is counted once; no flow is
//! left. The flow cap is the default one (a shard's cap is its share of it, so a full table
//! evicts differently by design); the timeouts are short, so flows end while frames are read.
#![forbid(unsafe_code)]

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use _core::ahead::Analysis;
use _core::parallel::{FrameSource, ParallelAnalyzer};
use _core::pipeline::{Analyzer, Config, KnownPorts};
use _core::predecode::Predecoder;
use _core::record::FlowRecord;
use _core::source::Record;

use crate::decode::input;
use crate::flows::engine;

const WORKERS: usize = 3;
/// Frames a read of the workers takes at most, and records a drain hands over at most.
const CHUNK: usize = 5;
const SLICE: usize = 2;
/// Frames and records a read of the predecoded analyzer takes at most.
const AHEAD_FRAMES: usize = 7;
const AHEAD_RECORDS: usize = 3;

fn config() -> Config {
    Config {
        idle_tcp: 20.0,
        idle_udp: 6.0,
        linger: 1.0,
        ..Config::default()
    }
}

/// The frames, owned (as the decoding thread needs its source).
struct OwnedFrames {
    link: u32,
    frames: Vec<(f64, Vec<u8>)>,
    next: usize,
}

impl FrameSource for OwnedFrames {
    fn next_frame(&mut self) -> Option<Record<'_>> {
        let (ts, data) = self.frames.get(self.next)?;
        self.next += 1;
        Some(Record {
            ts: *ts,
            linktype: self.link,
            data,
            orig_len: data.len() as u32,
        })
    }
}

impl OwnedFrames {
    fn new(link: u32, frames: &[(f64, &[u8])]) -> Self {
        OwnedFrames {
            link,
            frames: frames.iter().map(|&(ts, f)| (ts, f.to_vec())).collect(),
            next: 0,
        }
    }
}

fn predecoded(link: u32, frames: &[(f64, &[u8])]) -> Vec<FlowRecord> {
    let source = OwnedFrames::new(link, frames);
    let mut ahead = Predecoder::start(
        Arc::new(Mutex::new(source)),
        Arc::new(AtomicBool::new(false)),
    )
    .expect("the decoding thread starts");
    let mut a = Analyzer::new(config(), engine(), Arc::new(KnownPorts::default()), None);
    let mut out = Vec::new();
    loop {
        let (records, done) = Analysis::read(&mut a, &mut ahead, AHEAD_FRAMES, AHEAD_RECORDS);
        out.extend(records);
        if done {
            break;
        }
    }
    drain(&mut a, &mut out);
    assert_eq!(
        Analysis::stats(&a).packets,
        frames.len() as u64,
        "predecoded: packets counted once each"
    );
    out
}

/// The flows left at the end, `SLICE` records at a time, as Python drains them.
fn drain<A: Analysis>(a: &mut A, out: &mut Vec<FlowRecord>) {
    loop {
        let records = a.drain_some(SLICE);
        assert!(records.len() <= SLICE, "a drained slice past its size");
        if records.is_empty() {
            break;
        }
        out.extend(records);
    }
    assert_eq!(a.live_flows(), 0, "flows left after the drain");
}

fn single(link: u32, frames: &[(f64, &[u8])]) -> Vec<FlowRecord> {
    let mut a = Analyzer::new(config(), engine(), Arc::new(KnownPorts::default()), None);
    for &(ts, frame) in frames {
        a.packet(ts, link, frame);
    }
    a.drain();
    std::mem::take(&mut a.flows.finished)
}

fn sharded(link: u32, frames: &[(f64, &[u8])]) -> Vec<FlowRecord> {
    let mut p = ParallelAnalyzer::new(
        config(),
        engine(),
        Arc::new(KnownPorts::default()),
        None,
        WORKERS,
    );
    let mut source = OwnedFrames::new(link, frames);
    let mut out = Vec::new();
    loop {
        let (records, done) = p.run(&mut source, CHUNK, usize::MAX);
        out.extend(records);
        if done {
            break;
        }
    }
    drain(&mut p, &mut out);
    assert_eq!(
        p.stats().packets,
        frames.len() as u64,
        "workers: packets counted once each"
    );
    out
}

fn same(got: &[FlowRecord], want: &[FlowRecord], way: &str) {
    let ids = |rs: &[FlowRecord]| rs.iter().map(|r| r.flow_id).collect::<Vec<_>>();
    assert_eq!(ids(got), ids(want), "{way}: records or their order differ");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g == w,
            "{way}: flow {}: records differ:\n{g:?}\n{w:?}",
            w.flow_id
        );
    }
}

pub fn run(data: &[u8]) {
    let Some((link, frames)) = input(data) else {
        return;
    };
    let want = single(link, &frames);
    same(&predecoded(link, &frames), &want, "predecoded");
    same(&sharded(link, &frames), &want, "workers");
}
