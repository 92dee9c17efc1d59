//! `--workers N` as N threads in one process: the capture is read once, flows are tracked in N
//! shards, and the records come out exactly as one `Analyzer` gives them (same records, same
//! order), whatever N.
//!
//! The reader (the calling thread) frames records and hands out its read buffers whole, as
//! reference-counted chunks of consecutive records (no frame is copied), each frame with its
//! route: the one shard whose flows its packets are (`decode::peek`, the symmetric
//! `Key::shard`), every shard, or none (the capture filter left it out). Every worker walks
//! every chunk with its own `Analyzer`: it runs the timers at every frame's capture time (so
//! sweeps and releases fire at exactly the frames they fire at in a single run), and decodes
//! only the frames routed to it or to all; a frame routed to it alone comes with the packet the
//! reader found (`decode::Peeked`), which it takes rather than walking the frame again. Those
//! routed to all are what the decode of one frame cannot settle: IP fragments (so the fragments
//! of a datagram meet in each worker's defragmenter whichever shard the datagram falls in), a
//! tunnel whose datagram and inner packet fall in two shards, and frames that are no packet
//! (whose counters every worker keeps); each worker tracks only the packets whose `Key::shard`
//! is its own. Each worker's
//! `Tracker` tags its records with their place in the single-threaded order (`pipeline::Order`);
//! the reader merges the workers' outputs chunk by chunk. The workers are threads that live as
//! long as the `ParallelAnalyzer`; channels are bounded, so at most `DEPTH + 1` chunks are in
//! flight.
//!
//! Limits: the flow cap (`max_flows`) is per shard, `max_flows / N` (at least 1), so eviction
//! under a full table differs from a single run's; the monitor's early reports of classified
//! flows (`report_classified`) are not offered here.
use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::bpf::Filter;
use crate::decode::{peek, Peeked};
use crate::detect::engine::Engine;
use crate::flow::expect::{Event, Replay};
use crate::pipeline::{packet_key, Analyzer, Config, KnownPorts, Order, Stats};
use crate::record::FlowRecord;
use crate::source::{CaptureReader, Chunk, FrameAt, Record};

/// Frames per chunk at most.
pub const BATCH: usize = 4096;
/// Worker threads a run (or a live interface) may ask for. Each has its own flow table and queue,
/// and every worker walks every chunk for its timers: past the machine's cores more only adds
/// contention, and a mistyped `--workers 5000` started 5,000 threads (283 MB for a 20-packet
/// capture).
pub const MAX_WORKERS: usize = 64;
/// Chunks queued per worker beyond the one it works on. On 2 cores the workers, the reader and
/// Python take turns on the CPUs, and a deeper queue lets each run longer at a turn: 8 rather
/// than 2 took `--workers 2` on mix-2m from 1.63-1.70 s to 1.47-1.48 s, peak RSS the same.
pub const DEPTH: usize = 8;

/// Where frames come from: a capture file, or frames built in memory (tests).
pub trait FrameSource {
    fn next_frame(&mut self) -> Option<Record<'_>>;

    /// The next frame and, when this source decoded it already, its packet (`predecode`).
    fn next_decoded(&mut self) -> Option<(Record<'_>, Option<Peeked>)> {
        self.next_frame().map(|rec| (rec, None))
    }

    /// The packet `n` frames after the next one, where this source decoded it already: what
    /// the analysis may ask the CPU for ahead (`FlowTable::prefetch`).
    fn upcoming(&self, _n: usize) -> Option<&Peeked> {
        None
    }

    /// Up to `max` next frames in one owned buffer; None at the end. This default copies them.
    fn next_chunk(&mut self, max: usize) -> Option<Chunk> {
        let mut chunk = Chunk::default();
        while chunk.frames.len() < max {
            let Some(rec) = self.next_frame() else { break };
            chunk.frames.push(FrameAt {
                ts: rec.ts,
                linktype: rec.linktype,
                start: chunk.data.len(),
                len: rec.data.len(),
                orig_len: rec.orig_len,
            });
            chunk.data.extend_from_slice(rec.data);
        }
        (!chunk.is_empty()).then_some(chunk)
    }

    /// A chunk's buffer, back for reuse.
    fn recycle(&mut self, _data: Vec<u8>) {}
}

impl FrameSource for CaptureReader {
    fn next_frame(&mut self) -> Option<Record<'_>> {
        self.next_record()
    }

    fn next_chunk(&mut self, max: usize) -> Option<Chunk> {
        CaptureReader::next_chunk(self, max)
    }

    fn recycle(&mut self, data: Vec<u8>) {
        CaptureReader::recycle(self, data);
    }
}

/// A chunk and, for each of its frames, the shard that decodes it or `EVERY` or `FILTERED`,
/// and the packet the router found where one shard takes it (`decode::Peeked`): that worker
/// does not walk the frame again.
struct Routed {
    chunk: Chunk,
    routes: Vec<u32>,
    packets: Vec<Option<Peeked>>,
}

/// Every worker decodes the frame.
const EVERY: u32 = u32::MAX;
/// The capture filter left the frame out: no worker decodes it or runs timers at its time.
const FILTERED: u32 = u32::MAX - 1;

/// Where a frame goes among `shards` workers (see the module's documentation), and its packet
/// when one shard takes it and the frame alone settles it.
fn route(rec: Record<'_>, filter: Option<&Filter>, shards: u32) -> (u32, Option<Peeked>) {
    if filter.is_some_and(|f| !f.matches(rec.linktype, rec.data, rec.orig_len)) {
        return (FILTERED, None);
    }
    if shards <= 1 {
        return (EVERY, None);
    }
    let Some(p) = peek(rec.linktype, rec.data) else {
        return (EVERY, None);
    };
    let shard = packet_key(&p).shard(shards);
    match &p.tunnel {
        Some(outer) if packet_key(outer).shard(shards) != shard => (EVERY, None),
        Some(_) => (shard, None),
        None => (shard, Peeked::from_packet(p, rec.data)),
    }
}

/// What a worker is given: a chunk to analyze, or (end of input) up to so many of its oldest
/// flows to drain.
enum Job {
    Chunk(Arc<Routed>),
    Drain(usize),
}

/// What a worker gives back for a job: its records with their places, the packets that
/// created its flows, and its counters as they then stand.
struct Output {
    records: Vec<(Order, FlowRecord)>,
    /// Announcements and flow creations (`flow::expect`), for the reader's one table.
    events: Vec<Event>,
    stats: Stats,
    live: usize,
}

/// A worker thread, which owns one shard's `Analyzer` for as long as the `ParallelAnalyzer`
/// lives: its allocator's thread cache, its flow table and decoder stay warm from one `run` to
/// the next (a thread per `run` measured more CPU and memory).
struct Worker {
    jobs: Option<SyncSender<Job>>,
    /// In a mutex only so that the analyzer is `Sync` (a Python object must be); it is reached
    /// through `&mut` (`get_mut`), never locked.
    outputs: Mutex<Receiver<Output>>,
    thread: Option<JoinHandle<()>>,
    /// From its last output.
    stats: Stats,
    live: usize,
    /// A drain job is out, its output not yet taken (`ParallelAnalyzer::drain_some`).
    draining: bool,
}

impl Worker {
    fn send(&self, job: Job) {
        // A worker that panicked has hung up: `recv` raises its panic.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    /// The output of the oldest job not yet answered; a worker's panic goes on here.
    fn recv(&mut self) -> Output {
        let outputs = self
            .outputs
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        match outputs.recv() {
            Ok(o) => {
                self.stats = o.stats.clone();
                self.live = o.live;
                o
            }
            Err(_) => {
                if let Some(Err(panic)) = self.thread.take().map(JoinHandle::join) {
                    std::panic::resume_unwind(panic);
                }
                panic!("a parallel worker stopped");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            // Its panic, if any, was raised by `recv` already or is of no use now.
            let _ = t.join();
        }
    }
}

/// A worker's loop: every job answered by one output, in order.
fn work(mut a: Analyzer, shard: u32, shards: u32, jobs: Receiver<Job>, out: SyncSender<Output>) {
    for job in jobs {
        match job {
            Job::Chunk(routed) => {
                let frames = routed.chunk.records().zip(&routed.routes);
                for ((rec, &to), packet) in frames.zip(&routed.packets) {
                    match (to, packet) {
                        (FILTERED, _) => a.record_filtered(),
                        (_, Some(p)) if to == shard => a.record_peeked(rec, p.clone()),
                        _ if to == EVERY || to == shard => a.record_of_shard(rec, shard, shards),
                        _ => a.record_elsewhere(rec),
                    }
                }
                // Dropped before the output goes: the reader may then reuse its buffer.
                drop(routed);
            }
            Job::Drain(max) => {
                a.drain_some(max);
            }
        }
        let t = &mut a.flows;
        let output = Output {
            records: std::mem::take(&mut t.order)
                .into_iter()
                .zip(std::mem::take(&mut t.finished))
                .collect(),
            events: std::mem::take(&mut t.events),
            stats: t.stats.clone(),
            live: t.live_flows(),
        };
        if out.send(output).is_err() {
            return;
        }
    }
}

/// The analyzer over N shards, with `Analyzer`'s calls.
pub struct ParallelAnalyzer {
    /// One thread per shard, each with a whole analyzer that tracks its own flows.
    workers: Vec<Worker>,
    /// Expectations cross shards: one table, fed every shard's events in packet order.
    replay: Replay,
    /// Per shard, records drained at the end of input and not yet merged (`drain_some`).
    draining: Vec<VecDeque<(Order, FlowRecord)>>,
    /// The capture filter, run by the reader once per frame.
    filter: Option<Arc<Filter>>,
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
        cfg.shard_count = 1; // a worker skips other shards' packets before its tracker sees them
        let workers = (0..n)
            .map(|shard| {
                let mut a = Analyzer::new(
                    cfg.clone(),
                    Arc::clone(&engine),
                    Arc::clone(&known),
                    pcap_name.clone(),
                );
                a.flows.keyed = true;
                let stats = a.flows.stats.clone();
                let (jobs, job_rx) = sync_channel::<Job>(DEPTH);
                // Room for every job in flight: a worker never waits on the reader.
                let (out_tx, outputs) = sync_channel::<Output>(DEPTH + 2);
                let thread = std::thread::Builder::new()
                    .name(format!("portwatch-shard-{shard}"))
                    .spawn(move || work(a, shard as u32, n as u32, job_rx, out_tx))
                    .expect("a worker thread starts");
                Worker {
                    jobs: Some(jobs),
                    outputs: Mutex::new(outputs),
                    thread: Some(thread),
                    stats,
                    live: 0,
                    draining: false,
                }
            })
            .collect();
        ParallelAnalyzer {
            draining: (0..n).map(|_| VecDeque::new()).collect(),
            workers,
            replay: Replay::default(),
            filter: None,
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The capture filter: the reader runs it, and every worker skips the frames it rejects.
    pub fn set_filter(&mut self, filter: Option<Arc<Filter>>) {
        self.filter = filter;
    }

    /// Read up to `max_packets` frames, and no further chunk once `max_records` flows ended (the
    /// chunks in flight still finish); the records of flows that ended meanwhile, in the
    /// single-threaded order, and whether the source is exhausted.
    pub fn run<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        max_packets: usize,
        max_records: usize,
    ) -> (Vec<FlowRecord>, bool) {
        // Frames after a drain began: what it made stays queued for `drain_some`, out of the way
        // of the chunks' outputs.
        self.take_drained();
        let n = self.workers.len() as u32;
        let mut out = Vec::new();
        let mut exhausted = false;
        let filter = self.filter.clone();
        let mut in_flight: VecDeque<Arc<Routed>> = VecDeque::new();
        let mut read = 0usize;
        while read < max_packets && out.len() < max_records {
            let Some(chunk) = source.next_chunk(BATCH.min(max_packets - read)) else {
                exhausted = true;
                break;
            };
            read += chunk.len();
            // Right after framing, while the chunk's bytes are still in this core's cache.
            let (routes, packets) = chunk
                .records()
                .map(|r| route(r, filter.as_deref(), n))
                .unzip();
            let chunk = Arc::new(Routed {
                chunk,
                routes,
                packets,
            });
            for w in &self.workers {
                w.send(Job::Chunk(Arc::clone(&chunk)));
            }
            in_flight.push_back(chunk);
            if in_flight.len() > DEPTH {
                self.merge(&mut out);
                recycle(source, in_flight.pop_front());
            }
        }
        while !in_flight.is_empty() {
            self.merge(&mut out);
            recycle(source, in_flight.pop_front());
        }
        (out, exhausted)
    }

    /// Receive one chunk's outputs from every worker and merge them into `out`.
    fn merge(&mut self, out: &mut Vec<FlowRecord>) {
        let outputs: Vec<Output> = self.workers.iter_mut().map(Worker::recv).collect();
        merge_outputs(outputs, out, &mut self.replay);
    }

    /// End of input: every flow still open, in creation order.
    pub fn drain(&mut self) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        loop {
            let slice = self.drain_some(usize::MAX);
            if slice.is_empty() {
                return out;
            }
            out.extend(slice);
        }
    }

    /// End of input, a slice at a time: up to `max` of the flows still open, in creation order
    /// (the single-threaded order); empty once none is left. Each shard drains its oldest flows
    /// into a queue, in its own thread; a record leaves only when no shard with flows left could
    /// still give an earlier one, so at most about `max` records per shard exist at once. Most
    /// of a capture's records may be made here (the flows still open at its end): the shards
    /// make the next slice while the caller handles this one.
    pub fn drain_some(&mut self, max: usize) -> Vec<FlowRecord> {
        let max = max.max(1);
        // The slice the previous call asked for, then what this one still lacks.
        self.take_drained();
        self.ask_drain(max);
        self.take_drained();
        let out = self.pick(max);
        self.ask_drain(max);
        self.named(out)
    }

    /// Ask every shard with flows left and room in its queue for its oldest flows' records.
    fn ask_drain(&mut self, max: usize) {
        for (w, queue) in self.workers.iter_mut().zip(&self.draining) {
            if !w.draining && queue.len() < max && w.live > 0 {
                w.send(Job::Drain(max - queue.len()));
                w.draining = true;
            }
        }
    }

    /// The records asked for by `ask_drain`, into the shards' queues.
    fn take_drained(&mut self) {
        let mut events = Vec::new();
        for (w, queue) in self.workers.iter_mut().zip(self.draining.iter_mut()) {
            if !w.draining {
                continue;
            }
            w.draining = false;
            let output = w.recv();
            events.extend(output.events);
            let mut records = output.records;
            records.sort_by(|x, y| x.0.cmp_key(&y.0));
            queue.extend(records);
        }
        self.replay.replay(events);
    }

    /// Up to `max` records off the shards' queues, in the single-threaded order.
    fn pick(&mut self, max: usize) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        while out.len() < max {
            // The shard whose queue holds the earliest record; none may be decided while a
            // shard with flows left has an empty queue (its next record could come first).
            let mut best: Option<usize> = None;
            for (i, queue) in self.draining.iter().enumerate() {
                match queue.front() {
                    None if self.workers[i].live > 0 => return out,
                    None => {}
                    Some((order, _)) => {
                        let earlier = best.is_none_or(|b| {
                            let head = &self.draining[b][0].0;
                            order.cmp_key(head).is_lt()
                        });
                        if earlier {
                            best = Some(i);
                        }
                    }
                }
            }
            let Some(b) = best else { break };
            if let Some((_, rec)) = self.draining[b].pop_front() {
                out.push(rec);
            }
        }
        out
    }

    /// Drained records with the control flows of their announcements named (`flow::expect`).
    fn named(&mut self, mut records: Vec<FlowRecord>) -> Vec<FlowRecord> {
        for rec in &mut records {
            self.replay.name(rec);
        }
        records
    }

    /// The counters: every worker counts every frame, and every decode outcome but a packet
    /// (those frames go to every worker); the flow tables' counters are summed over the shards.
    pub fn stats(&self) -> Stats {
        let mut s = self
            .workers
            .first()
            .map(|w| w.stats.clone())
            .unwrap_or_default();
        s.flows_evicted = 0;
        s.other_shard = 0;
        for w in &self.workers {
            s.flows_evicted += w.stats.flows_evicted;
            s.other_shard += w.stats.other_shard;
        }
        s
    }

    /// Flows open in the shards' tables (while draining, as of the slice last taken).
    pub fn live_flows(&self) -> usize {
        self.workers.iter().map(|w| w.live).sum()
    }
}

/// A chunk every worker is done with: its buffer back to the source.
fn recycle<S: FrameSource + ?Sized>(source: &mut S, routed: Option<Arc<Routed>>) {
    if let Some(routed) = routed.and_then(|c| Arc::try_unwrap(c).ok()) {
        source.recycle(routed.chunk.data);
    }
}

/// The records of one chunk from every shard, in the single-threaded order. Their flow_ids
/// need no renumbering: a flow's id is the number of the packet that created it in the whole
/// capture, which every shard counts alike.
///
/// The chunk's announcements and creations are replayed first: a record of this chunk is of a
/// flow created in it or before.
fn merge_outputs(outputs: Vec<Output>, out: &mut Vec<FlowRecord>, replay: &mut Replay) {
    let mut records: Vec<(Order, FlowRecord)> = Vec::new();
    let mut events = Vec::new();
    for o in outputs {
        records.extend(o.records);
        events.extend(o.events);
    }
    replay.replay(events);
    for (_, rec) in &mut records {
        replay.name(rec);
    }
    // Stable: records a shard emitted at one place keep their order (only the packet's own
    // shard emits in its phase 2, and places in other phases are unique).
    records.sort_by(|a, b| a.0.cmp_key(&b.0));
    out.extend(records.into_iter().map(|(_, rec)| rec));
}
