//! An analysis on a thread of its own, a few batches of records ahead of whoever takes them:
//! the caller's half of the work (Python's policy and output) on one batch overlaps the core's
//! reading of the next, instead of the two taking turns on one core.
//!
//! The batches hold the records the caller would get by asking for `max_packets` packets at a
//! time and then draining `drain_records` flows at a time: the same records in the same order,
//! with the counters as they stood when each was sent. A batch goes as soon as it holds
//! `max_records` records, in the middle of a frame if need be (a sweep ending thousands of flows
//! at one packet). The queue between the two holds `depth` batches at most, so a slow consumer
//! stops the reader, even mid-sweep, rather than letting records pile up.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::meta::FlowMeta;
use crate::parallel::{FrameSource, ParallelAnalyzer};
use crate::pipeline::{Analyzer, Spill, Stats};
use crate::predecode::Predecoder;
use crate::record::FlowRecord;

/// What can run ahead: an analyzer with one worker or several.
pub trait Analysis: Send + 'static {
    /// Up to `max_packets` frames of `source`, stopping early once `max_records` flows have
    /// ended; their records, and whether the source is exhausted. The record bound keeps a batch
    /// small where flows end by the thousand (a sweep on a slow link), whatever the packets.
    fn read<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        max_packets: usize,
        max_records: usize,
    ) -> (Vec<FlowRecord>, bool);
    /// End of input: up to `max_records` of the flows still open; empty once none is left.
    fn drain_some(&mut self, max_records: usize) -> Vec<FlowRecord>;
    /// Records of flows classified since the last call (an analyzer that reports them).
    fn take_classified(&mut self) -> Vec<FlowRecord>;
    fn stats(&self) -> Stats;
    fn live_flows(&self) -> usize;
    /// Whether `read` takes frames decoded ahead (`predecode`) from an `Ahead`.
    fn predecodes(&self) -> bool;
    /// Hand finished records to `spill` a batch's worth at a time as they are made, even in
    /// the middle of a frame (`Tracker::spill`); None stops it. An analysis that cannot keeps
    /// them for `read`.
    fn spill_to(&mut self, _spill: Option<(usize, Spill)>) {}
}

/// How many frames ahead of the one analysed the analysis asks for a flow's slot (and twice as
/// many for the index cells that name the slot): far enough for the memory to answer, near
/// enough that the lines are still cached when their packet comes.
const PREFETCH_AHEAD: usize = 8;

impl Analysis for Analyzer {
    fn read<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        max_packets: usize,
        max_records: usize,
    ) -> (Vec<FlowRecord>, bool) {
        let mut exhausted = false;
        for _ in 0..max_packets {
            if let Some(p) = source.upcoming(2 * PREFETCH_AHEAD) {
                self.flows.prefetch_index(p.hash());
            }
            if let Some(p) = source.upcoming(PREFETCH_AHEAD) {
                self.flows.prefetch(p.hash());
            }
            match source.next_decoded() {
                Some((rec, None)) => self.record(rec),
                Some((rec, Some(peeked))) => self.record_peeked(rec, peeked),
                None => {
                    exhausted = true;
                    break;
                }
            }
            if self.flows.finished.len() >= max_records {
                break;
            }
        }
        (std::mem::take(&mut self.flows.finished), exhausted)
    }

    fn drain_some(&mut self, max_records: usize) -> Vec<FlowRecord> {
        Analyzer::drain_some(self, max_records);
        std::mem::take(&mut self.flows.finished)
    }

    fn take_classified(&mut self) -> Vec<FlowRecord> {
        std::mem::take(&mut self.flows.classified)
    }

    fn stats(&self) -> Stats {
        self.flows.stats.clone()
    }

    fn live_flows(&self) -> usize {
        self.flows.live_flows()
    }

    fn predecodes(&self) -> bool {
        true
    }

    fn spill_to(&mut self, spill: Option<(usize, Spill)>) {
        self.flows.spill = spill;
    }
}

impl Analysis for ParallelAnalyzer {
    fn read<S: FrameSource + ?Sized>(
        &mut self,
        source: &mut S,
        max_packets: usize,
        max_records: usize,
    ) -> (Vec<FlowRecord>, bool) {
        self.run(source, max_packets, max_records)
    }

    fn drain_some(&mut self, max_records: usize) -> Vec<FlowRecord> {
        ParallelAnalyzer::drain_some(self, max_records)
    }

    fn take_classified(&mut self) -> Vec<FlowRecord> {
        Vec::new()
    }

    fn stats(&self) -> Stats {
        ParallelAnalyzer::stats(self)
    }

    fn live_flows(&self) -> usize {
        ParallelAnalyzer::live_flows(self)
    }

    /// Its reader routes frames by their packets already (`parallel::route`).
    fn predecodes(&self) -> bool {
        false
    }
}

/// One step's output, with the counters as they stood after it.
pub struct Batch {
    pub records: Vec<FlowRecord>,
    /// With `Steps::meta_json`, while the caller had batches still to take: each record's
    /// `meta` as JSON, in `records`' order. Empty when the caller was waiting: it serializes
    /// them itself (see `Steps::meta_json`).
    pub meta_json: Vec<Option<Vec<u8>>>,
    pub classified: Vec<FlowRecord>,
    pub stats: Stats,
    pub live_flows: usize,
    /// Set on the last batch read from the source (its end, or `stop_reading`); the batches
    /// after it drain the flows still open.
    pub input_over: bool,
}

/// Parts of the records the caller is done with, going back to the analysis thread.
pub enum Spent {
    Records(Vec<FlowRecord>),
    Meta(FlowMeta, Option<Vec<u8>>),
}

/// The analysis thread, for giving back what it allocated (`Ahead::home`). A record's map is
/// dozens of allocations (a frozen one: its buffer, its tail's, and references to release in
/// the shared texts' table); freed on the caller's thread (Python's, the busier of the two) each
/// takes mimalloc's cross-thread path there, and the analysis thread then collects them one by
/// one: at a capture's end, a quarter of that thread's time and a tenth of Python's. Sent back,
/// they are one message each.
#[derive(Clone, Debug)]
pub struct Home(Sender<Spent>);

impl Home {
    /// Freed on the analysis thread between its steps; here if it has ended.
    pub fn give_back(&self, spent: Spent) {
        if let Err(back) = self.0.send(spent) {
            drop(back.0);
        }
    }
}

/// What `Ahead::next` found.
pub enum Next {
    Batch(Batch),
    /// Nothing yet within the time given.
    Waiting,
    /// Every batch was taken: `finish` gives the analysis back.
    Over,
}

/// The analysis running on its thread; dropping this stops it (after the step it is in).
pub struct Ahead<A> {
    batches: Receiver<Batch>,
    /// What the caller is done with, to be freed where it was made (`Home`).
    spent: Sender<Spent>,
    stop_reading: Arc<AtomicBool>,
    /// Batches sent and not yet taken (`next`).
    queued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<A>>,
}

impl<A: Analysis> Ahead<A> {
    /// Start `analysis` over `source` (locked for each step only), in `steps`, up to `depth`
    /// batches ahead.
    pub fn start<S: FrameSource + Send + ?Sized + 'static>(
        analysis: A,
        source: Arc<Mutex<S>>,
        steps: Steps,
        depth: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(depth.max(1));
        let (spent, spent_rx) = channel();
        let stop_reading = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&stop_reading);
        let queued = Arc::new(AtomicUsize::new(0));
        let sent = Arc::clone(&queued);
        let thread = std::thread::Builder::new()
            .name("portwatch-ahead".into())
            .spawn(move || {
                let out = Handover {
                    batches: tx,
                    queued: sent,
                    spent: Arc::new(Mutex::new(spent_rx)),
                    meta_json: steps.meta_json,
                };
                work(analysis, source, out, stop, steps)
            })?;
        Ok(Ahead {
            batches: rx,
            spent,
            stop_reading,
            queued,
            thread: Some(thread),
        })
    }

    /// The next batch, waiting up to `timeout` for it.
    pub fn next(&self, timeout: Duration) -> Next {
        match self.batches.recv_timeout(timeout) {
            Ok(batch) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Next::Batch(batch)
            }
            Err(RecvTimeoutError::Timeout) => Next::Waiting,
            Err(RecvTimeoutError::Disconnected) => Next::Over,
        }
    }

    /// Where what the caller took from a batch goes back to be freed (`Home`): the batch's
    /// records once converted, and each record's `meta` map once the caller drops the record.
    pub fn home(&self) -> Home {
        Home(self.spent.clone())
    }

    /// Read no further than the step under way; the batches read so far and the drain follow.
    pub fn stop_reading(&self) {
        self.stop_reading.store(true, Ordering::Relaxed);
    }

    /// The analysis back, once `next` said `Over`; Err with the panic's payload if its thread
    /// panicked.
    pub fn finish(mut self) -> std::thread::Result<A> {
        let thread = self.thread.take().expect("joined once");
        thread.join()
    }
}

impl<A> Drop for Ahead<A> {
    fn drop(&mut self) {
        // The thread ends at its next send, which fails once the receiver is gone.
        self.stop_reading.store(true, Ordering::Relaxed);
    }
}

fn lock<S: ?Sized>(source: &Mutex<S>) -> MutexGuard<'_, S> {
    source.lock().unwrap_or_else(|e| e.into_inner())
}

/// What each step of an `Ahead` takes and gives.
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    /// A batch read is at most this many packets...
    pub max_packets: usize,
    /// ... and goes as soon as this many flows ended in it (mid-frame where the analysis can
    /// hand records over as it makes them, `Analysis::spill_to`; else after the frame).
    pub max_records: usize,
    /// At the end of input, the open flows a batch at a time; 0 stops there, leaving them to
    /// whoever gets the analysis back.
    pub drain_records: usize,
    /// The caller writes each record's `meta` as JSON: a batch made while the caller still has
    /// one to take carries them serialized on the analysis thread, where the caller is the
    /// busier of the two (a capture's end, where every open flow drains to it). A batch made
    /// while the caller waits does not: the analysis is the busier then (a capture of short
    /// flows), and the caller, idle otherwise, serializes them as it writes them. Either way
    /// the bytes are those of `FlowMeta::push_json`.
    pub meta_json: bool,
}

fn work<A: Analysis, S: FrameSource + Send + ?Sized + 'static>(
    mut analysis: A,
    source: Arc<Mutex<S>>,
    out: Handover,
    stop_reading: Arc<AtomicBool>,
    steps: Steps,
) -> A {
    let steps = Steps {
        max_packets: steps.max_packets.max(1),
        max_records: steps.max_records.max(1),
        ..steps
    };
    // The records one frame ends beyond a batch's worth go on as they are made (a batch ends
    // early at `max_records` only between frames): one packet's sweep can end thousands of
    // flows (a capture's first lookups reaching their idle timeout together), and their
    // records would otherwise all exist before the first is handed on. What the caller gave
    // back meanwhile is freed as the sweep goes on. A caller gone drops them.
    let spill = out.clone();
    analysis.spill_to(Some((
        steps.max_records,
        Box::new(move |records, classified, stats, live_flows| {
            spill.send(records, classified, stats.clone(), live_flows, false);
            spill.free_spent();
        }),
    )));
    let caller_there = read(&mut analysis, source, &out, stop_reading, steps);
    // The drain hands over what each `drain_some` returns.
    analysis.spill_to(None);
    if caller_there && steps.drain_records > 0 {
        loop {
            out.free_spent();
            let records = analysis.drain_some(steps.drain_records);
            if records.is_empty() || !out.send_batch(&mut analysis, records, true) {
                break;
            }
        }
    }
    analysis
}

/// Read to the end of input (or `stop_reading`); false if the caller went away. `steps` as
/// `work` bounds them (at least one packet and one record a batch).
fn read<A: Analysis, S: FrameSource + Send + ?Sized + 'static>(
    analysis: &mut A,
    source: Arc<Mutex<S>>,
    out: &Handover,
    stop_reading: Arc<AtomicBool>,
    steps: Steps,
) -> bool {
    let Steps {
        max_packets,
        max_records,
        ..
    } = steps;
    // Frames decoded on a thread of their own where the analysis takes them so (and the
    // thread starts): it stops at `stop_reading`, and what it read by then is read here.
    let mut predecoder = if analysis.predecodes() {
        Predecoder::start(Arc::clone(&source), Arc::clone(&stop_reading)).ok()
    } else {
        None
    };
    loop {
        out.free_spent();
        let (records, exhausted) = match predecoder.as_mut() {
            Some(frames) => analysis.read(frames, max_packets, max_records),
            None => analysis.read(&mut *lock(&source), max_packets, max_records),
        };
        let input_over =
            exhausted || (predecoder.is_none() && stop_reading.load(Ordering::Relaxed));
        // An analysis that cannot spill (several workers) hands its records over here, in
        // batches of `max_records`, so that only `depth` batches of them have their JSON and
        // their Python objects at once.
        let mut records = records.into_iter();
        while records.len() > max_records {
            let slice = records.by_ref().take(max_records).collect();
            if !out.send_batch(analysis, slice, false) {
                return false;
            }
            out.free_spent();
        }
        if !out.send_batch(analysis, records.collect(), input_over) {
            return false;
        }
        if input_over {
            return true;
        }
    }
}

/// The analysis thread's end of the queue: batches out, what the caller is done with back.
#[derive(Clone)]
struct Handover {
    batches: SyncSender<Batch>,
    /// Batches sent and not yet taken (`Ahead::queued`).
    queued: Arc<AtomicUsize>,
    spent: Arc<Mutex<Receiver<Spent>>>,
    /// `Steps::meta_json`.
    meta_json: bool,
}

impl Handover {
    /// Send a batch; false once the caller is gone.
    fn send(
        &self,
        records: Vec<FlowRecord>,
        classified: Vec<FlowRecord>,
        stats: Stats,
        live_flows: usize,
        input_over: bool,
    ) -> bool {
        // Serialized here only while the caller has a batch still to take (`Steps::meta_json`).
        let meta_json = if self.meta_json && self.queued.load(Ordering::Relaxed) > 0 {
            serialized_meta(&records)
        } else {
            Vec::new()
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.batches
            .send(Batch {
                records,
                meta_json,
                classified,
                stats,
                live_flows,
                input_over,
            })
            .is_ok()
    }

    /// `records` with the analysis' classified flows and counters as they stand.
    fn send_batch<A: Analysis>(
        &self,
        analysis: &mut A,
        records: Vec<FlowRecord>,
        input_over: bool,
    ) -> bool {
        let classified = analysis.take_classified();
        self.send(
            records,
            classified,
            analysis.stats(),
            analysis.live_flows(),
            input_over,
        )
    }

    /// Free what the caller gave back (`Home`): at most `depth` + 1 batches' records between
    /// two steps (one per batch sent), and the maps of their records the caller dropped.
    fn free_spent(&self) {
        lock(&self.spent).try_iter().for_each(drop);
    }
}

/// Each record's `meta` as JSON (`Batch::meta_json`).
fn serialized_meta(records: &[FlowRecord]) -> Vec<Option<Vec<u8>>> {
    records
        .iter()
        .map(|r| {
            let mut json = Vec::with_capacity(512);
            r.meta.push_json(&mut json);
            Some(json)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::engine::Engine;
    use crate::detect::signature;
    use crate::pipeline::{Config, KnownPorts};
    use crate::source::Record;

    /// Frames built in memory: one TCP handshake and a line of payload per flow, each flow on
    /// its own client port.
    struct Frames {
        frames: Vec<(f64, Vec<u8>)>,
        next: usize,
    }

    impl FrameSource for Frames {
        fn next_frame(&mut self) -> Option<Record<'_>> {
            let (ts, data) = self.frames.get(self.next)?;
            self.next += 1;
            Some(Record {
                ts: *ts,
                linktype: 101,
                data,
                orig_len: data.len() as u32,
            })
        }
    }

    fn tcp(sport: u16, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
        let total = 40 + payload.len();
        let mut f = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0,
            0,
            64,
            6,
            0,
            0,
        ];
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&80u16.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// More frames than the decoding thread reads ahead (two or three a flow), so that a stop
    /// or a drop comes before the end.
    fn longer_than_read_ahead() -> Frames {
        frames(u16::try_from(crate::predecode::MAX_AHEAD_FRAMES / 2 + 2000).unwrap())
    }

    fn frames(flows: u16) -> Frames {
        let mut frames = Vec::new();
        for i in 0..flows {
            let t = f64::from(i);
            let sport = 20000 + i;
            frames.push((t, tcp(sport, 0x02, 1, b"")));
            frames.push((t + 0.1, tcp(sport, 0x18, 2, b"GET / HTTP/1.1\r\n\r\n")));
            // Every third flow closes; the rest are open at the end and drained.
            if i % 3 == 0 {
                frames.push((t + 0.2, tcp(sport, 0x11, 20, b"")));
            }
        }
        Frames { frames, next: 0 }
    }

    fn analyzer() -> Analyzer {
        let sigs = signature::load_builtin_and(&[]).expect("shipped signatures load");
        let engine = Arc::new(Engine::new(sigs, Default::default()));
        let known = Arc::new(KnownPorts(Default::default()));
        let config = Config {
            idle_tcp: 30.0,
            ..Config::default()
        };
        Analyzer::new(config, engine, known, None)
    }

    fn ids(records: &[FlowRecord]) -> Vec<u64> {
        records.iter().map(|r| r.flow_id).collect()
    }

    fn steps(max_packets: usize, max_records: usize, drain_records: usize) -> Steps {
        Steps {
            max_packets,
            max_records,
            drain_records,
            meta_json: false,
        }
    }

    /// The records and counters of the same analysis done in the calling thread, step by step.
    fn in_turn(flows: u16, steps: Steps) -> (Vec<Vec<u64>>, Vec<u64>) {
        let mut a = analyzer();
        let mut source = frames(flows);
        let mut batches = Vec::new();
        let mut packets = Vec::new();
        loop {
            let (records, exhausted) = a.read(&mut source, steps.max_packets, steps.max_records);
            batches.push(ids(&records));
            packets.push(a.flows.stats.packets);
            if exhausted {
                break;
            }
        }
        loop {
            let records = Analysis::drain_some(&mut a, steps.drain_records);
            if records.is_empty() {
                return (batches, packets);
            }
            batches.push(ids(&records));
            packets.push(a.flows.stats.packets);
        }
    }

    fn taken(ahead: &Ahead<Analyzer>) -> Vec<Batch> {
        let mut out = Vec::new();
        loop {
            match ahead.next(Duration::from_secs(10)) {
                Next::Batch(b) => out.push(b),
                Next::Over => return out,
                Next::Waiting => panic!("no batch within 10 s"),
            }
        }
    }

    #[test]
    fn batches_are_the_steps_taken_in_turn() {
        let cases = [
            (40, steps(7, usize::MAX, 5)),
            (40, steps(1000, usize::MAX, 1000)),
            (40, steps(1000, 2, 1000)),
            (0, steps(3, 3, 3)),
            (9, steps(1, 1, 1)),
        ];
        for (flows, steps) in cases {
            let source = Arc::new(Mutex::new(frames(flows)));
            let ahead = Ahead::start(analyzer(), source, steps, 2).unwrap();
            let batches = taken(&ahead);
            let (want, packets) = in_turn(flows, steps);
            let got: Vec<Vec<u64>> = batches.iter().map(|b| ids(&b.records)).collect();
            assert_eq!(got, want, "{flows} flows, {steps:?}");
            let got_packets: Vec<u64> = batches.iter().map(|b| b.stats.packets).collect();
            assert_eq!(got_packets, packets);
            // Exactly one batch, the last read, says the input is over; the drain's follow.
            let over: Vec<bool> = batches.iter().map(|b| b.input_over).collect();
            let first_over = over
                .iter()
                .position(|&o| o)
                .expect("the end of input is said");
            assert!(over[first_over..].iter().all(|&o| o));
            assert!(over[..first_over].iter().all(|&o| !o));
            let a = ahead.finish().expect("no panic");
            assert_eq!(a.flows.live_flows(), 0);
        }
    }

    #[test]
    fn a_read_ends_once_its_records_reach_the_bound() {
        // Every third flow closes while the input is read: a step of 1000 packets takes them
        // all unless the record bound cuts it.
        let (whole, _) = in_turn(40, steps(1000, usize::MAX, 1000));
        let (cut, _) = in_turn(40, steps(1000, 2, 1000));
        assert!(whole[0].len() > 2, "closed flows end while reading");
        let read_batches = cut.len() - (whole.len() - 1);
        assert!(read_batches > 1, "the bound cut the read");
        assert!(cut[..read_batches].iter().all(|b| b.len() <= 2));
        assert_eq!(
            cut.concat(),
            whole.concat(),
            "the same records in the same order"
        );
    }

    fn serialized(records: &[FlowRecord]) -> Vec<Option<Vec<u8>>> {
        records
            .iter()
            .map(|r| Some(serde_json::to_vec(&*r.meta).unwrap()))
            .collect()
    }

    #[test]
    fn meta_json_is_each_records_meta_serialized_only_when_asked() {
        for meta_json in [true, false] {
            let source = Arc::new(Mutex::new(frames(30)));
            let steps = Steps {
                meta_json,
                ..steps(5, usize::MAX, 4)
            };
            let ahead = Ahead::start(analyzer(), source, steps, 2).unwrap();
            let batches = taken(&ahead);
            assert!(batches.iter().any(|b| !b.records.is_empty()));
            for b in &batches {
                // Serialized, or left to the caller, who was waiting for it.
                assert!(
                    b.meta_json.is_empty() || b.meta_json == serialized(&b.records),
                    "each record's meta, in order, or none"
                );
                if !meta_json {
                    assert!(b.meta_json.is_empty());
                }
            }
        }
    }

    #[test]
    fn meta_json_is_serialized_while_the_caller_has_batches_to_take() {
        // Everything read in the first batch (the flows of the first 30 seconds idle out by
        // the end of it), then the drain four records at a time.
        let source = Arc::new(Mutex::new(frames(60)));
        let steps = Steps {
            meta_json: true,
            ..steps(10_000, usize::MAX, 4)
        };
        let ahead = Ahead::start(analyzer(), source, steps, 2).unwrap();
        // Nothing is taken until the queue is full and the analysis waits to send a third.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while ahead.queued.load(Ordering::Relaxed) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the analysis fills its queue"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let batches = taken(&ahead);
        // The first was made with the caller waiting: its meta is left to the caller.
        assert!(!batches[0].records.is_empty());
        assert!(batches[0].meta_json.is_empty());
        // The next two were made while the caller had one or two to take.
        for b in &batches[1..3] {
            assert_eq!(b.records.len(), 4);
            assert_eq!(b.meta_json, serialized(&b.records));
        }
    }

    #[test]
    fn records_handed_back_change_no_batch() {
        // Every batch's records, and their maps apart (as Python drops them, later), go back
        // to the thread to be freed as soon as they are read, while it is reading and
        // draining, and after it has ended (freed in place then).
        let (want, _) = in_turn(60, steps(4, usize::MAX, 3));
        let source = Arc::new(Mutex::new(frames(60)));
        let ahead = Ahead::start(analyzer(), source, steps(4, usize::MAX, 3), 1).unwrap();
        let home = ahead.home();
        let mut got = Vec::new();
        let mut last = Vec::new();
        loop {
            match ahead.next(Duration::from_secs(10)) {
                Next::Batch(mut b) => {
                    got.push(ids(&b.records));
                    for r in &mut b.records {
                        home.give_back(Spent::Meta(std::mem::take(&mut r.meta), None));
                    }
                    home.give_back(Spent::Records(std::mem::replace(&mut last, b.records)));
                }
                Next::Over => break,
                Next::Waiting => panic!("no batch within 10 s"),
            }
        }
        assert_eq!(got, want);
        home.give_back(Spent::Records(last));
        assert_eq!(ahead.finish().expect("no panic").flows.live_flows(), 0);
        home.give_back(Spent::Meta(FlowMeta::new(), Some(b"{}".to_vec())));
    }

    /// `flows` flows opened within the first second, then one frame a minute later: the sweep
    /// before that frame ends every one of them (30 s idle timeout) at one packet.
    fn one_sweep_ends(flows: u16) -> Frames {
        let mut frames = Vec::new();
        for i in 0..flows {
            let t = f64::from(i) / f64::from(flows);
            frames.push((t, tcp(20000 + i, 0x02, 1, b"")));
        }
        frames.push((60.0, tcp(19999, 0x02, 1, b"")));
        Frames { frames, next: 0 }
    }

    #[test]
    fn a_sweep_hands_its_records_over_a_batch_at_a_time_as_it_goes() {
        let flows = 200;
        let source = Arc::new(Mutex::new(one_sweep_ends(flows)));
        let ahead = Ahead::start(analyzer(), source, steps(10_000, 16, 50), 1).unwrap();
        // Nothing is taken until the analysis waits to send: mid-sweep, with most of the
        // sweep's flows still in the table rather than records.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while ahead.queued.load(Ordering::Relaxed) < 2 {
            assert!(std::time::Instant::now() < deadline, "the queue fills");
            std::thread::sleep(Duration::from_millis(1));
        }
        let batches = taken(&ahead);
        let sizes: Vec<usize> = batches.iter().map(|b| b.records.len()).collect();
        // 200 records in twelve batches of 16 and the sweep's last 8 with the read's end
        // (the late frame's flow is open), then that flow from the drain.
        let mut want = vec![16; 12];
        want.extend([8, 1]);
        assert_eq!(sizes, want);
        // Each went over while the flows after it were still open.
        let live: Vec<usize> = batches.iter().map(|b| b.live_flows).collect();
        let open_after: Vec<usize> = (1..=12).map(|k| 200 - 16 * k).collect();
        assert_eq!(live[..12], open_after[..]);
        // The same records in the same order as the analysis taken in turn.
        let mut a = analyzer();
        let mut whole = one_sweep_ends(flows);
        let (mut records, exhausted) = a.read(&mut whole, 10_000, usize::MAX);
        assert!(exhausted);
        records.extend(Analysis::drain_some(&mut a, usize::MAX));
        let got: Vec<u64> = batches.iter().flat_map(|b| ids(&b.records)).collect();
        assert_eq!(got, ids(&records));
    }

    #[test]
    fn stopping_reading_keeps_every_flow_read_and_drains_it() {
        // Frames are decoded chunks ahead (`predecode`): every one read by the stop is still
        // analysed.
        let source = Arc::new(Mutex::new(longer_than_read_ahead()));
        let total = lock(&source).frames.len();
        let ahead = Ahead::start(
            analyzer(),
            Arc::clone(&source),
            steps(10, usize::MAX, 50),
            1,
        )
        .unwrap();
        let Next::Batch(first) = ahead.next(Duration::from_secs(10)) else {
            panic!("a first batch");
        };
        ahead.stop_reading();
        let mut batches = vec![first];
        batches.extend(taken(&ahead));
        let read = lock(&source).next;
        assert!(read < total, "stopped before the end: {read} frames read");
        let last = batches.last().unwrap();
        assert_eq!(last.live_flows, 0, "every flow read was drained");
        let records: usize = batches.iter().map(|b| b.records.len()).sum();
        // Each flow's first frame was read: a flow for each SYN seen.
        let syns = lock(&source).frames[..read]
            .iter()
            .filter(|(_, f)| f[33] == 0x02)
            .count();
        assert_eq!(records, syns);
        assert_eq!(last.stats.packets, read as u64);
    }

    #[test]
    fn dropped_early_the_thread_ends() {
        let source = Arc::new(Mutex::new(longer_than_read_ahead()));
        let total = lock(&source).frames.len();
        let ahead =
            Ahead::start(analyzer(), Arc::clone(&source), steps(5, usize::MAX, 5), 1).unwrap();
        assert!(matches!(
            ahead.next(Duration::from_secs(10)),
            Next::Batch(_)
        ));
        drop(ahead);
        // The thread held `source` (an Arc); it lets go of it once its send fails.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&source) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread kept running"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(lock(&source).next < total);
    }
}
