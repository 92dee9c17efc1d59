//! `--workers N` as N threads in one process: the capture is read and decoded once, flows are
//! tracked in N shards, and the records come out exactly as one `Analyzer` gives them (same
//! records, same order), whatever N.
//!
//! The reader (the calling thread) reads and decodes every frame (one decoder: IP fragments of
//! a datagram must meet in one defragmenter), picks each packet's shard by the symmetric
//! `Key::shard`, and sends each worker a batch: every frame's capture time (so its sweeps and
//! releases fire at exactly the frames they fire at in a single run) and its own shard's
//! packets, owned. Each worker's `Tracker` tags its records with their place in the
//! single-threaded order (`pipeline::Order`); the reader merges the workers' outputs batch by
//! batch and renumbers `flow_id` from the creating packets. Channels are bounded, so at most
//! `DEPTH + 1` batches per worker are in flight.
//!
//! Limits: the flow cap (`max_flows`) is per shard, `max_flows / N` (at least 1), so eviction
//! under a full table differs from a single run's; the monitor's early reports of classified
//! flows (`report_classified`) are not offered here.
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use hashbrown::HashMap;

use crate::decode::{Decoded, Decoder, Encap, SUPPORTED_LINKTYPES};
use crate::detect::engine::Engine;
use crate::flow::table::Key;
use crate::pipeline::{Config, KnownPorts, Order, Stats, Tracker};
use crate::record::FlowRecord;
use crate::source::{CaptureReader, Record};

/// Frames per batch.
pub const BATCH: usize = 4096;
/// Batches queued per worker beyond the one it works on.
const DEPTH: usize = 2;

/// Where frames come from: a capture file, or frames built in memory (tests).
pub trait FrameSource {
    fn next_frame(&mut self) -> Option<Record<'_>>;
}

impl FrameSource for CaptureReader {
    fn next_frame(&mut self) -> Option<Record<'_>> {
        self.next_record()
    }
}

/// A decoded packet of one shard, its payload in the batch's `data`.
struct Owned {
    /// The frame's position in the batch.
    at: u32,
    key: Key,
    flags: u8,
    seq: u32,
    len: u32,
    encap: Option<Encap>,
}

/// One worker's share of a batch of frames.
struct Batch {
    ts: Arc<Vec<f64>>,
    pkts: Vec<Owned>,
    data: Vec<u8>,
}

/// What a worker gives back for a batch: its records with their places, the packets that
/// created its flows, and the batch's buffers emptied for reuse (fresh multi-megabyte buffers
/// per batch cost more in page faults than the copy itself).
struct Output {
    records: Vec<(Order, FlowRecord)>,
    creations: Vec<u64>,
    spent: Option<Batch>,
}

/// The analyzer over N shards, with `Analyzer`'s calls.
pub struct ParallelAnalyzer {
    decoder: Decoder,
    workers: Vec<Tracker>,
    /// The reader's counters (packets, bytes, decode outcomes); the workers count the rest.
    stats: Stats,
    /// flow_id by creating packet, for flows that are live; and the last one given.
    ids: HashMap<u64, u64>,
    last_id: u64,
    /// Emptied batches, for reuse.
    pool: Vec<Batch>,
}

impl ParallelAnalyzer {
    /// `workers` shards (at least 1), each with `config.max_flows / workers` flows at most.
    pub fn new(
        config: Config,
        engine: Arc<Engine>,
        known: Arc<KnownPorts>,
        pcap_name: Option<String>,
        workers: usize,
    ) -> Self {
        let n = workers.max(1);
        let mut cfg = config;
        cfg.max_flows = (cfg.max_flows / n).max(1);
        cfg.shard_index = 0;
        cfg.shard_count = 1; // the reader routes; a worker never sees another shard's packets
        let workers = (0..n)
            .map(|_| {
                let mut t = Tracker::new(
                    cfg.clone(),
                    Arc::clone(&engine),
                    Arc::clone(&known),
                    pcap_name.clone(),
                );
                t.keyed = true;
                t
            })
            .collect();
        ParallelAnalyzer {
            decoder: Decoder::new(),
            workers,
            stats: Stats::default(),
            ids: HashMap::new(),
            last_id: 0,
            pool: Vec::new(),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Read up to `max_packets` frames; the records of flows that ended meanwhile, in the
    /// single-threaded order, and whether the source is exhausted.
    pub fn run<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        max_packets: usize,
    ) -> (Vec<FlowRecord>, bool) {
        let n = self.workers.len() as u32;
        let mut out = Vec::new();
        let mut exhausted = false;
        let (decoder, stats, ids, last_id, pool) = (
            &mut self.decoder,
            &mut self.stats,
            &mut self.ids,
            &mut self.last_id,
            &mut self.pool,
        );
        std::thread::scope(|scope| {
            let mut to_workers: Vec<SyncSender<Batch>> = Vec::new();
            let mut from_workers: Vec<Receiver<Output>> = Vec::new();
            for tracker in self.workers.iter_mut() {
                let (btx, brx) = sync_channel::<Batch>(DEPTH);
                // Room for every batch in flight: a worker never waits on the reader.
                let (otx, orx) = sync_channel::<Output>(DEPTH + 2);
                scope.spawn(move || {
                    for batch in brx {
                        if otx.send(work(tracker, batch)).is_err() {
                            return;
                        }
                    }
                });
                to_workers.push(btx);
                from_workers.push(orx);
            }
            let mut in_flight = 0usize;
            let mut read = 0usize;
            while !exhausted && read < max_packets {
                let want = BATCH.min(max_packets - read);
                let mut ts = Vec::with_capacity(want);
                let mut shares: Vec<Batch> = (0..n)
                    .map(|_| {
                        pool.pop().unwrap_or_else(|| Batch {
                            ts: Arc::default(),
                            pkts: Vec::new(),
                            data: Vec::new(),
                        })
                    })
                    .collect();
                while ts.len() < want {
                    let Some(rec) = source.next_frame() else {
                        exhausted = true;
                        break;
                    };
                    let at = ts.len() as u32;
                    ts.push(rec.ts);
                    decode_into(decoder, stats, &rec, at, n, &mut shares);
                }
                read += ts.len();
                if ts.is_empty() {
                    break;
                }
                let ts = Arc::new(ts);
                for (tx, mut share) in to_workers.iter().zip(shares) {
                    share.ts = Arc::clone(&ts);
                    // A worker that panicked has hung up: the scope re-raises its panic.
                    let _ = tx.send(share);
                }
                in_flight += 1;
                if in_flight > DEPTH {
                    merge(&from_workers, ids, last_id, &mut out, pool);
                    in_flight -= 1;
                }
            }
            drop(to_workers);
            for _ in 0..in_flight {
                merge(&from_workers, ids, last_id, &mut out, pool);
            }
        });
        let d = self.decoder.stats();
        self.stats.fragments = d.fragments;
        self.stats.fragments_dropped = d.fragments_dropped;
        (out, exhausted)
    }

    /// End of input: every flow still open, in creation order.
    pub fn drain(&mut self) -> Vec<FlowRecord> {
        let outputs: Vec<Output> = self
            .workers
            .iter_mut()
            .map(|t| {
                t.drain();
                take_output(t, None)
            })
            .collect();
        let mut out = Vec::new();
        merge_outputs(
            outputs,
            &mut self.ids,
            &mut self.last_id,
            &mut out,
            &mut Vec::new(),
        );
        out
    }

    /// The counters, summed over the reader and the shards.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        for t in &self.workers {
            s.flows_evicted += t.stats.flows_evicted;
            s.other_shard += t.stats.other_shard;
        }
        s
    }

    pub fn live_flows(&self) -> usize {
        self.workers.iter().map(Tracker::live_flows).sum()
    }
}

/// Count and decode one frame, and hand its packet (if any) to its shard's share.
fn decode_into(
    decoder: &mut Decoder,
    stats: &mut Stats,
    rec: &Record<'_>,
    at: u32,
    n: u32,
    shares: &mut [Batch],
) {
    stats.packets += 1;
    stats.bytes += rec.data.len() as u64;
    match decoder.decode(rec.ts, rec.linktype, rec.data) {
        Decoded::Packet(p) => {
            let key = Key {
                proto: p.proto,
                a: p.src,
                b: p.dst,
                a_port: p.sport,
                b_port: p.dport,
            };
            let shard = key.shard(n) as usize;
            if let Some(share) = shares.get_mut(shard) {
                share.data.extend_from_slice(p.payload);
                share.pkts.push(Owned {
                    at,
                    key,
                    flags: p.flags,
                    seq: p.seq,
                    len: p.payload.len() as u32,
                    encap: p.encap,
                });
            }
        }
        Decoded::NotIp => stats.non_ip += 1,
        Decoded::UnsupportedLink => {
            if SUPPORTED_LINKTYPES.contains(&rec.linktype) {
                stats.non_ip += 1;
            } else {
                stats.unsupported_link += 1;
            }
        }
        Decoded::Malformed => stats.malformed += 1,
        Decoded::Held => {}
    }
}

/// A worker's part of a batch: every frame's timers, its own packets.
fn work(tracker: &mut Tracker, mut batch: Batch) -> Output {
    let mut pkts = batch.pkts.iter().peekable();
    let mut off = 0usize;
    for (i, &ts) in batch.ts.iter().enumerate() {
        tracker.timers(ts);
        while let Some(p) = pkts.next_if(|p| p.at as usize == i) {
            let end = off + p.len as usize;
            let payload = batch.data.get(off..end).unwrap_or(&[]);
            off = end;
            tracker.flow_packet(ts, p.key, p.flags, p.seq, payload, p.encap.clone());
        }
    }
    batch.pkts.clear();
    batch.data.clear();
    batch.ts = Arc::default();
    take_output(tracker, Some(batch))
}

fn take_output(tracker: &mut Tracker, spent: Option<Batch>) -> Output {
    let records = std::mem::take(&mut tracker.order)
        .into_iter()
        .zip(std::mem::take(&mut tracker.finished))
        .collect();
    Output {
        records,
        creations: std::mem::take(&mut tracker.creations),
        spent,
    }
}

/// Receive one batch's outputs from every worker and merge them into `out`.
fn merge(
    from_workers: &[Receiver<Output>],
    ids: &mut HashMap<u64, u64>,
    last_id: &mut u64,
    out: &mut Vec<FlowRecord>,
    pool: &mut Vec<Batch>,
) {
    // A worker that panicked gives nothing; the scope re-raises its panic.
    let outputs: Vec<Output> = from_workers
        .iter()
        .filter_map(|rx| rx.recv().ok())
        .collect();
    merge_outputs(outputs, ids, last_id, out, pool);
}

/// The records of one batch from every shard, in the single-threaded order, with their
/// flow_id (1-based creation order over every shard).
fn merge_outputs(
    outputs: Vec<Output>,
    ids: &mut HashMap<u64, u64>,
    last_id: &mut u64,
    out: &mut Vec<FlowRecord>,
    pool: &mut Vec<Batch>,
) {
    let mut creations: Vec<u64> = outputs
        .iter()
        .flat_map(|o| o.creations.iter().copied())
        .collect();
    creations.sort_unstable();
    for c in creations {
        *last_id += 1;
        ids.insert(c, *last_id);
    }
    let mut records: Vec<(Order, FlowRecord)> = Vec::new();
    for o in outputs {
        records.extend(o.records);
        pool.extend(o.spent);
    }
    // Stable: records a shard emitted at one place keep their order (only the packet's own
    // shard emits in its phase 2, and places in other phases are unique).
    records.sort_by(|a, b| a.0.cmp_key(&b.0));
    for (order, mut rec) in records {
        if let Some(id) = ids.remove(&order.created) {
            rec.flow_id = id;
        }
        out.push(rec);
    }
}
