//! Target `parallel`: `--workers N` (`parallel::ParallelAnalyzer`). Its contract: the records of
//! N worker threads are the single analyzer's, the same records in the same order, whatever the
//! traffic: tunnels whose datagram and inner packet fall in two shards, IP fragments every
//! worker reassembles, announced flows, idle sweeps and a clock that steps back.
//!
//! Input: the decode target's layout (a link-type selector byte, then frames with steps of the
//! capture clock). The frames go through one `Analyzer`, and through three workers read a few
//! frames at a time (so a chunk ends anywhere) and drained a few records at a time. Checked: the
//! two lists of records are equal, field by field and fact by fact; every packet is counted once.
//! The flow cap is the default one (a shard's cap is its share of it, so a full table evicts
//! differently by design); the timeouts are short, so flows end while frames are read.
#![forbid(unsafe_code)]

use std::sync::Arc;

use _core::parallel::{FrameSource, ParallelAnalyzer};
use _core::pipeline::{Analyzer, Config, KnownPorts};
use _core::record::FlowRecord;
use _core::source::Record;

use crate::decode::{frames, linktype};
use crate::flows::engine;

const WORKERS: usize = 3;
/// Frames a read takes at most, and records a drain hands over at most.
const CHUNK: usize = 5;
const SLICE: usize = 2;

fn config() -> Config {
    Config {
        idle_tcp: 20.0,
        idle_udp: 6.0,
        linger: 1.0,
        ..Config::default()
    }
}

struct Frames<'a> {
    link: u32,
    frames: &'a [(f64, &'a [u8])],
    next: usize,
}

impl FrameSource for Frames<'_> {
    fn next_frame(&mut self) -> Option<Record<'_>> {
        let &(ts, data) = self.frames.get(self.next)?;
        self.next += 1;
        Some(Record {
            ts,
            linktype: self.link,
            data,
            orig_len: data.len() as u32,
        })
    }
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
    let mut source = Frames {
        link,
        frames,
        next: 0,
    };
    let mut out = Vec::new();
    loop {
        let (records, done) = p.run(&mut source, CHUNK, usize::MAX);
        out.extend(records);
        if done {
            break;
        }
    }
    loop {
        let records = p.drain_some(SLICE);
        assert!(records.len() <= SLICE, "a drained slice past its size");
        if records.is_empty() {
            break;
        }
        out.extend(records);
    }
    assert_eq!(p.live_flows(), 0, "flows left after the drain");
    assert_eq!(
        p.stats().packets,
        frames.len() as u64,
        "packets counted once each"
    );
    out
}

pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let link = linktype(sel);
    let frames = frames(rest);
    let want = single(link, &frames);
    let got = sharded(link, &frames);
    let ids = |rs: &[FlowRecord]| rs.iter().map(|r| r.flow_id).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(&want), "records or their order differ");
    for (g, w) in got.iter().zip(&want) {
        assert!(g == w, "flow {}: records differ:\n{g:?}\n{w:?}", w.flow_id);
    }
}
