//! The monitor's live capture: rings and analyzers in core threads; the caller receives events.
//!
//! One TPACKET_V3 ring per interface, or with `workers` > 1 that many rings per interface in one
//! PACKET_FANOUT hash group (the kernel's symmetric flow hash puts both directions of a flow,
//! and every IP fragment of a datagram, on one ring). Each ring has its own thread and its own
//! `Analyzer`: frames are decoded and tracked where they land, with no copy and no hand-over,
//! so the threads share nothing but their outboxes.
//!
//! A thread reads a block, runs its frames through the analyzer, and moves the records that
//! came out (`classified` as soon as a verdict is in, `finished` when a flow ends) into its
//! outbox under a short lock. Every `HOUSEKEEPING` it also applies a new engine (a reload),
//! expires idle flows and cuts flows past the active timeout by the wall clock (so flows end on
//! a silent link), and refreshes its ring's counters. The caller's `poll` waits for events and
//! takes every outbox's contents: records, never frames.
//!
//! Bounded memory: an outbox holds at most `max_pending` records; past that the thread waits for
//! the caller, its ring fills, and the kernel drops (counted) rather than the process growing.
//!
//! Threads are started by `start`, not `open`: the monitor opens the rings as root, drops its
//! privileges, and only then starts the threads, which inherit the reduced credentials (the
//! capability bounding set and no_new_privs are per thread and copied at thread creation).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::detect::engine::Engine;
use crate::parallel::MAX_WORKERS;
use crate::pipeline::{Analyzer, Config, KnownPorts, Stats};
use crate::record::FlowRecord;
use crate::source::live::{LiveRing, RingOptions, RingStats};

/// How often a thread applies reloads, runs the wall-clock timers' check and refreshes counters.
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// The longest a thread waits for a block before it looks at its controls again.
const BLOCK_WAIT: Duration = Duration::from_millis(50);

/// How the monitor captures and when it ends flows by the wall clock.
#[derive(Debug, Clone)]
pub struct MonitorOptions {
    /// Ring geometry, filter and promiscuous mode, for every ring (`fanout` is set here).
    pub ring: RingOptions,
    /// Rings (and threads) per interface.
    pub workers: usize,
    /// Seconds between wall-clock expiries of idle flows.
    pub expire_interval: f64,
    /// Flows older than this are reported as a segment and go on (`Tracker::split_long_flows`).
    pub active_timeout: f64,
    /// `meta.end_reason` of such a segment.
    pub active_reason: String,
    /// Records an outbox holds before its thread waits for the caller.
    pub max_pending: usize,
}

impl Default for MonitorOptions {
    fn default() -> Self {
        MonitorOptions {
            ring: RingOptions::default(),
            workers: 1,
            expire_interval: 5.0,
            active_timeout: 1800.0,
            active_reason: "active-timeout".into(),
            max_pending: 200_000,
        }
    }
}

/// Counters of one ring and its analyzer.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    pub iface: String,
    pub ring: RingStats,
    pub analyzer: Stats,
    pub live_flows: usize,
    /// The reload generation this thread runs with (0: the engine it started with).
    pub engine_generation: u64,
    /// Times the thread waited because its outbox was full (the caller fell behind).
    pub stalls: u64,
}

#[derive(Default)]
struct Outbox {
    classified: Vec<FlowRecord>,
    finished: Vec<FlowRecord>,
    stats: WorkerStats,
    done: bool,
}

type Reload = (Arc<Engine>, Arc<KnownPorts>, u64);

struct Shared {
    out: Mutex<Outbox>,
    reload: Mutex<Option<Reload>>,
}

/// Wakes the caller's `poll` when any thread published something.
#[derive(Default)]
struct Bell {
    rung: Mutex<u64>,
    cond: Condvar,
}

impl Bell {
    fn ring(&self) {
        *lock(&self.rung) += 1;
        self.cond.notify_all();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked holding the lock left plain data behind: go on with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Rings, their threads and their analyzers.
pub struct LiveMonitor {
    opts: MonitorOptions,
    /// Rings and analyzers not yet handed to a thread (before `start`).
    pending: Vec<(LiveRing, Analyzer)>,
    shared: Vec<Arc<Shared>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    bell: Arc<Bell>,
    generation: u64,
    /// Records handed out by `poll` (classified, finished).
    pub delivered: (u64, u64),
    seen_bell: u64,
    stalls: Arc<AtomicU64>,
}

impl LiveMonitor {
    /// Open `workers` rings on each interface (needs root or CAP_NET_RAW). Each ring's analyzer
    /// holds at most `config.max_flows / rings` flows. No frame is read before `start`.
    pub fn open(
        ifaces: &[String],
        opts: MonitorOptions,
        config: Config,
        engine: Arc<Engine>,
        known: Arc<KnownPorts>,
    ) -> Result<LiveMonitor, String> {
        if ifaces.is_empty() {
            return Err("no interface to capture on".into());
        }
        if opts.workers == 0 || opts.workers > MAX_WORKERS {
            return Err(format!(
                "workers must be 1 to {MAX_WORKERS}, not {}",
                opts.workers
            ));
        }
        if config.shard_count > 1 {
            return Err("a live monitor does not take shard_count".into());
        }
        let rings_total = ifaces.len() * opts.workers;
        let mut cfg = config;
        cfg.max_flows = (cfg.max_flows / rings_total).max(1);
        let mut pending = Vec::with_capacity(rings_total);
        for iface in ifaces {
            let mut group = None;
            for w in 0..opts.workers {
                let mut ring_opts = opts.ring.clone();
                if opts.workers > 1 {
                    ring_opts.fanout = Some(group.unwrap_or(0));
                    ring_opts.fanout_new = w == 0;
                } else {
                    ring_opts.fanout = None;
                    ring_opts.fanout_new = false;
                }
                let ring = LiveRing::open(iface, &ring_opts)?;
                if w == 0 && opts.workers > 1 {
                    group = Some(
                        ring.fanout_group()
                            .ok_or_else(|| format!("{iface}: PACKET_FANOUT group not created"))?,
                    );
                }
                let mut a =
                    Analyzer::new(cfg.clone(), Arc::clone(&engine), Arc::clone(&known), None);
                a.flows.report_classified = true;
                pending.push((ring, a));
            }
        }
        let shared = pending
            .iter()
            .map(|(ring, _)| {
                Arc::new(Shared {
                    out: Mutex::new(Outbox {
                        stats: WorkerStats {
                            iface: ring.iface().to_owned(),
                            ..WorkerStats::default()
                        },
                        ..Outbox::default()
                    }),
                    reload: Mutex::new(None),
                })
            })
            .collect();
        Ok(LiveMonitor {
            opts,
            pending,
            shared,
            handles: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            bell: Arc::new(Bell::default()),
            generation: 0,
            delivered: (0, 0),
            seen_bell: 0,
            stalls: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Rings (threads) in all.
    pub fn rings(&self) -> usize {
        self.shared.len()
    }

    /// Start one thread per ring. A second call does nothing.
    pub fn start(&mut self) -> Result<(), String> {
        for (i, (ring, analyzer)) in std::mem::take(&mut self.pending).into_iter().enumerate() {
            let w = Worker {
                ring,
                analyzer,
                shared: Arc::clone(&self.shared[i]),
                stop: Arc::clone(&self.stop),
                bell: Arc::clone(&self.bell),
                opts: self.opts.clone(),
                generation: 0,
                stalls: Arc::clone(&self.stalls),
                index: i as u64,
                rings: self.shared.len() as u64,
            };
            let handle = std::thread::Builder::new()
                .name(format!("pw-ring-{i}"))
                .spawn(move || w.run())
                .map_err(|e| format!("starting a capture thread: {e}"))?;
            self.handles.push(handle);
        }
        Ok(())
    }

    /// Wait up to `timeout` for events, then take every thread's: (classified, finished).
    /// Classified records come first: a flow's `classified` record never follows its end.
    pub fn poll(&mut self, timeout: Duration) -> (Vec<FlowRecord>, Vec<FlowRecord>) {
        {
            let mut rung = lock(&self.bell.rung);
            let deadline = Instant::now() + timeout;
            while *rung == self.seen_bell {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                rung = self
                    .bell
                    .cond
                    .wait_timeout(rung, left)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            self.seen_bell = *rung;
        }
        let (mut classified, mut finished) = (Vec::new(), Vec::new());
        for s in &self.shared {
            let mut out = lock(&s.out);
            classified.append(&mut out.classified);
            finished.append(&mut out.finished);
        }
        self.delivered.0 += classified.len() as u64;
        self.delivered.1 += finished.len() as u64;
        (classified, finished)
    }

    /// A reload: every thread swaps its engine in at its next housekeeping (within
    /// `HOUSEKEEPING` plus one block); live flows keep their state.
    pub fn set_engine(&mut self, engine: Arc<Engine>, known: Arc<KnownPorts>) {
        self.generation += 1;
        for s in &self.shared {
            *lock(&s.reload) = Some((Arc::clone(&engine), Arc::clone(&known), self.generation));
        }
        for (_, a) in &mut self.pending {
            a.flows.set_engine(Arc::clone(&engine), Arc::clone(&known));
        }
    }

    /// The reload generation asked for last (compare with `WorkerStats::engine_generation`).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Each ring's counters as last published by its thread (every `HOUSEKEEPING`).
    pub fn stats(&self) -> Vec<WorkerStats> {
        self.shared
            .iter()
            .map(|s| lock(&s.out).stats.clone())
            .collect()
    }

    /// Stop the threads: each reports every open flow and its last counters. The records stay
    /// in the outboxes for a last `poll`.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        // Never started: nothing was read; close the rings.
        self.pending.clear();
        self.bell.ring();
    }

    /// All threads have ended.
    pub fn stopped(&self) -> bool {
        self.handles.is_empty()
    }
}

impl Drop for LiveMonitor {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    ring: LiveRing,
    analyzer: Analyzer,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    bell: Arc<Bell>,
    opts: MonitorOptions,
    generation: u64,
    stalls: Arc<AtomicU64>,
    /// This ring's place among `rings`: flow ids are made unique across the rings by it.
    index: u64,
    rings: u64,
}

impl Worker {
    fn run(mut self) {
        let mut next_house = Instant::now();
        let expire_every = Duration::from_secs_f64(self.opts.expire_interval.clamp(0.01, 86_400.0));
        let mut next_expire = Instant::now() + expire_every;
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(block) = self.ring.next_block(BLOCK_WAIT) {
                for rec in block.frames() {
                    self.analyzer.packet(rec.ts, rec.linktype, rec.data);
                }
            }
            let now = Instant::now();
            let house = now >= next_house;
            if house {
                next_house = now + HOUSEKEEPING;
                let reload = lock(&self.shared.reload).take();
                if let Some((engine, known, generation)) = reload {
                    self.analyzer.flows.set_engine(engine, known);
                    self.generation = generation;
                }
                if now >= next_expire {
                    next_expire = now + expire_every;
                    let wall = wall_clock();
                    self.analyzer.flows.expire_idle(wall);
                    let (active, reason) = (self.opts.active_timeout, &self.opts.active_reason);
                    self.analyzer.flows.split_long_flows(active, wall, reason);
                }
            }
            let flows = &self.analyzer.flows;
            if house || !flows.classified.is_empty() || !flows.finished.is_empty() {
                self.publish(false);
            }
        }
        // Frames already in the ring were counted by the kernel: analyse them before the end
        // (at most one pass over the ring, so a link that keeps sending cannot hold us here).
        // A partly filled block is handed over at its timeout: wait that long for it.
        let last = Duration::from_millis(u64::from(self.opts.ring.block_timeout_ms) + 20);
        for _ in 0..self.opts.ring.block_count {
            let Some(block) = self.ring.next_block(last) else {
                break;
            };
            for rec in block.frames() {
                self.analyzer.packet(rec.ts, rec.linktype, rec.data);
            }
        }
        self.analyzer.drain();
        self.publish(true);
    }

    /// Move the records out and refresh the counters; wait while the outbox is full.
    fn publish(&mut self, done: bool) {
        let ring = self.ring.stats();
        let mut out = lock(&self.shared.out);
        let mut stalled = false;
        while !done
            && out.classified.len() + out.finished.len() >= self.opts.max_pending
            && !self.stop.load(Ordering::Relaxed)
        {
            if !stalled {
                stalled = true;
                out.stats.stalls += 1;
                self.stalls.fetch_add(1, Ordering::Relaxed);
            }
            drop(out);
            self.bell.ring();
            std::thread::sleep(Duration::from_millis(5));
            out = lock(&self.shared.out);
        }
        // Each analyzer numbers its flows 1, 2, 3...: interleave the rings' numbers (ring i of n
        // gives (k - 1) * n + i + 1), so a flow_id names one flow of the whole monitor.
        let (index, rings) = (self.index, self.rings);
        let renumber = |r: &mut FlowRecord| {
            r.flow_id = r
                .flow_id
                .saturating_sub(1)
                .saturating_mul(rings)
                .saturating_add(index + 1);
        };
        self.analyzer.flows.classified.iter_mut().for_each(renumber);
        self.analyzer.flows.finished.iter_mut().for_each(renumber);
        out.classified.append(&mut self.analyzer.flows.classified);
        out.finished.append(&mut self.analyzer.flows.finished);
        out.stats.ring = ring;
        out.stats.analyzer = self.analyzer.flows.stats.clone();
        out.stats.live_flows = self.analyzer.flows.live_flows();
        out.stats.engine_generation = self.generation;
        out.done |= done;
        drop(out);
        self.bell.ring();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_refused() {
        let engine = Arc::new(Engine::new(Vec::new(), Default::default()));
        let known = Arc::new(KnownPorts::default());
        let open = |ifaces: &[String], workers| {
            LiveMonitor::open(
                ifaces,
                MonitorOptions {
                    workers,
                    ..MonitorOptions::default()
                },
                Config::default(),
                Arc::clone(&engine),
                Arc::clone(&known),
            )
            .err()
        };
        assert!(open(&[], 1).is_some());
        assert!(open(&["lo".into()], 0).is_some());
        assert!(open(&["no-such-if0".into()], 1).is_some());
    }
}
