//! The bidirectional flow table.
//!
//! A flow is stored once (in a slab) and indexed once (`super::index`), hashed by its canonical
//! key (the endpoints in a fixed order). The index entry holds only the flow's slot and whether that
//! order is the flow's own; the key is compared against the slot's. One look-up of either
//! direction finds the flow and the direction of the packet. The hash is keyed per process at
//! random (foldhash's RandomState): crafted addresses cannot be made to collide. Insertion
//! order is kept (oldest evicted first; sweeps and the final drain report flows in the order
//! they began, as the Python engine did).
#![forbid(unsafe_code)]

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use super::index::FlowIndex;
use super::key::{flow_hash, hash_canonical, Key};
use super::slab::Slab;
use super::slot::Flow;
use super::timers::TimerQueue;

pub type FlowId = usize;

/// A queue's reference to a flow: its slot and the low 32 bits of its insertion stamp, eight
/// bytes where (slot, stamp) took sixteen in every entry of the order and timer queues. It
/// names the flow whose full stamp has those bits (`current_ref`); a slot's later occupant
/// agrees with it only 2^32 insertions on, which the order queue's compaction never lets an
/// entry wait for (it holds at most twice the table's cap), and a timer entry that did would
/// only bring its flow up early, which the sweep checks for anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRef {
    id: u32,
    stamp: u32,
}

impl FlowRef {
    pub fn new(id: FlowId, stamp: u64) -> Self {
        FlowRef {
            // Slots are reused, so ids stay below the table's cap (at most 2^30).
            id: u32::try_from(id).unwrap_or(u32::MAX),
            // The low bits on purpose: see the type.
            stamp: stamp as u32,
        }
    }

    pub fn id(self) -> FlowId {
        self.id as FlowId
    }

    pub fn stamp_low(self) -> u32 {
        self.stamp
    }
}

/// A closed TCP flow waiting out its linger, due in order of close time, then closing order.
///
/// A heap by time rather than a queue in closing order: a flow that reopens and closes again,
/// or capture times that step back, would otherwise hold up the flows queued behind it, so
/// when a flow is released would depend on which other flows share its table (and with
/// `--workers`, on the shard count).
#[derive(Clone, Copy, Debug)]
pub struct Closing {
    /// The flow's `closed_at` when it was queued: an entry whose flow closed again is stale.
    pub at: f64,
    /// Index of the packet that closed it.
    pub seq: u64,
    pub id: FlowId,
    pub stamp: u64,
}

impl Ord for Closing {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.total_cmp(&other.at).then(self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Closing {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Closing {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Closing {}

/// Flows by directional key, a cap (oldest evicted first), and the order queues timers walk.
pub struct FlowTable {
    pub max_flows: usize,
    slab: Slab,
    free: Vec<FlowId>,
    /// Flow id shifted left once, or'ed with whether the flow's key is the reverse of its
    /// canonical one, hashed by that canonical key. The key itself is not stored: a candidate
    /// is compared against its slot's, which the packet reads next anyway. Four bytes an entry
    /// rather than 44 keep the index a tenth of the size, and mostly in cache, on a large
    /// table (one entry a flow, not one per direction, halves it again).
    index: FlowIndex,
    /// The last key looked up and what it found: packets come in trains of one flow, and
    /// this spares their look-ups. Cleared whenever its flow leaves.
    last: Option<(Key, u32)>,
    /// The flows in insertion order; entries of removed flows are skipped and compacted.
    order: VecDeque<FlowRef>,
    /// Closed TCP flows, earliest close first.
    closed: BinaryHeap<Reverse<Closing>>,
    /// When each flow's timeouts may next fall due (see `super::timers`).
    timers: TimerQueue,
    live: usize,
    next_stamp: u64,
    pub evicted: u64,
}

impl FlowTable {
    pub fn new(max_flows: usize) -> Self {
        FlowTable {
            // The index packs ids in 31 bits; a billion flows is past any memory anyway.
            max_flows: max_flows.clamp(1, 1 << 30),
            slab: Slab::default(),
            free: Vec::new(),
            index: FlowIndex::default(),
            last: None,
            order: VecDeque::new(),
            closed: BinaryHeap::new(),
            timers: TimerQueue::default(),
            live: 0,
            next_stamp: 0,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The flow and the direction of a packet with this key.
    pub fn lookup(&mut self, key: &Key) -> Option<(FlowId, usize)> {
        self.lookup_with(key, None)
    }

    /// `lookup`, with the key's `flow_hash` when it was worked out already (a packet decoded
    /// ahead); without, the hash is worked out only if the last look-up's memo misses.
    pub fn lookup_with(&mut self, key: &Key, hash: Option<u64>) -> Option<(FlowId, usize)> {
        let packed = match self.last {
            Some((k, v)) if k == *key => v,
            _ => {
                let (canonical, reversed) = key.canonical();
                let hash = hash.unwrap_or_else(|| hash_canonical(&canonical));
                let slab = &self.slab;
                let found = self
                    .index
                    .find(hash, |v| entry_key(slab, v) == Some(canonical))?;
                // The flow's own orientation against the canonical one, flipped when this
                // packet's is the other: the packet's direction in the flow.
                let v = found ^ u32::from(reversed);
                self.last = Some((*key, v));
                v
            }
        };
        Some(((packed >> 1) as FlowId, (packed & 1) as usize))
    }

    /// Ask the CPU for the index cells a look-up of the key with this `flow_hash` reads first
    /// (`crate::cpu_cache`), so that `prefetch` finds them in the cache a few packets later.
    pub fn prefetch_index(&self, hash: u64) {
        crate::cpu_cache::prefetch(self.index.cell_of(hash));
    }

    /// Ask the CPU for the slot of the flow whose key has this `flow_hash`
    /// (`crate::cpu_cache`): a hint that reads no slot, so a look-up a few packets later finds
    /// it in the cache.
    pub fn prefetch(&self, hash: u64) {
        for v in self.index.candidates(hash) {
            if let Some(slot) = self.slab.slot((v >> 1) as FlowId) {
                let p = std::ptr::from_ref(slot).cast::<u8>();
                for line in (0..std::mem::size_of::<Option<Flow>>()).step_by(64) {
                    crate::cpu_cache::prefetch(p.wrapping_add(line));
                }
            }
        }
    }

    pub fn get(&self, id: FlowId) -> &Flow {
        self.slab.get(id).expect("live flow id")
    }

    pub fn get_mut(&mut self, id: FlowId) -> &mut Flow {
        self.slab.get_mut(id).expect("live flow id")
    }

    /// Whether `(id, stamp)` from an order queue still names a live flow.
    pub fn is_current(&self, id: FlowId, stamp: u64) -> bool {
        self.current(id, stamp).is_some()
    }

    /// The flow in slot `id`, if it is still the one inserted with `stamp`.
    pub fn current(&self, id: FlowId, stamp: u64) -> Option<&Flow> {
        current(&self.slab, id, stamp)
    }

    /// Insert a flow (the caller evicts first when full: see `is_full`).
    pub fn insert(&mut self, mut flow: Flow) -> FlowId {
        self.next_stamp += 1;
        flow.stamp = self.next_stamp;
        let key = flow.key;
        let id = match self.free.pop() {
            Some(id) => {
                self.slab.put(id, flow);
                id
            }
            None => self.slab.push(flow),
        };
        // Slots are reused, so ids stay below the flow cap (and far below 2^31).
        let packed = u32::try_from(id).unwrap_or(u32::MAX >> 1) << 1;
        let (canonical, reversed) = key.canonical();
        let hash = hash_canonical(&canonical);
        let slab = &self.slab;
        // As a map's insert: a flow already under this key (the caller looks up first, so
        // none) would lose its entry to the new one.
        self.index.insert(hash, packed | u32::from(reversed), |v| {
            entry_key(slab, v) == Some(canonical)
        });
        self.order.push_back(FlowRef::new(id, self.next_stamp));
        self.live += 1;
        id
    }

    pub fn is_full(&self) -> bool {
        self.live >= self.max_flows
    }

    /// Take a flow out of the table (its keys and slot); the caller reports it.
    pub fn take(&mut self, id: FlowId) -> Flow {
        let flow = self.slab.take(id).expect("live flow id");
        let hash = flow_hash(&flow.key);
        self.index.remove(hash, |v| (v >> 1) as FlowId == id);
        if self.last.is_some_and(|(_, v)| (v >> 1) as FlowId == id) {
            self.last = None;
        }
        self.free.push(id);
        self.live -= 1;
        // Dead queue entries are skipped lazily; compact when they outnumber the live ones.
        if self.order.len() > 64 && self.order.len() > 2 * self.live {
            let slab = &self.slab;
            self.order.retain(|&r| current_ref(slab, r).is_some());
        }
        flow
    }

    /// The oldest live flow.
    pub fn oldest(&mut self) -> Option<FlowId> {
        while let Some(&r) = self.order.front() {
            if current_ref(&self.slab, r).is_some() {
                return Some(r.id());
            }
            self.order.pop_front();
        }
        None
    }

    /// Live flows in insertion order, with their stamps (a snapshot: the caller may remove
    /// while walking it).
    pub fn ids_in_order(&self) -> Vec<(FlowId, u64)> {
        self.order
            .iter()
            .filter_map(|&r| current_ref(&self.slab, r).map(|f| (r.id(), f.stamp)))
            .collect()
    }

    /// Queue a flow that just closed (`seq`: the closing packet's index) for release.
    pub fn mark_closed(&mut self, id: FlowId, seq: u64) {
        let flow = self.get(id);
        let Some(at) = flow.closed_at() else { return };
        let stamp = flow.stamp;
        self.closed.push(Reverse(Closing { at, seq, id, stamp }));
        // Entries of flows removed meanwhile (swept, evicted, reopened) are dropped lazily;
        // compact when they outnumber the live flows.
        if self.closed.len() > 64 && self.closed.len() > 2 * self.live {
            let slab = &self.slab;
            self.closed.retain(|Reverse(c)| is_closing(slab, c));
        }
    }

    /// The closed flow due first, dropping entries that no longer name a closed flow.
    pub fn next_closed(&mut self) -> Option<Closing> {
        while let Some(&Reverse(c)) = self.closed.peek() {
            if is_closing(&self.slab, &c) {
                return Some(c);
            }
            self.closed.pop();
        }
        None
    }

    pub fn pop_closed(&mut self) {
        self.closed.pop();
    }

    pub fn clear_closed(&mut self) {
        self.closed.clear();
        self.timers.clear();
    }

    /// Look at flow `id` again at the first sweep at or after `at` (see `super::timers`).
    pub fn schedule(&mut self, id: FlowId, at: f64) {
        let stamp = self.get(id).stamp;
        self.timers.schedule(at, id, stamp);
        // Entries of removed flows and earlier schedules go when they come due; compact when
        // they outnumber the live flows.
        if self.timers.len() > 64 && self.timers.len() > 3 * self.live {
            let slab = &self.slab;
            self.timers.compact(|r| current_ref(slab, r).is_some());
        }
    }

    /// Entries in the timer queue (bounded by `schedule`'s compaction).
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// The live flows with a schedule due at `now`, in insertion order, unscheduled.
    pub fn take_due(&mut self, now: f64) -> Vec<(FlowId, u64)> {
        let slab = &self.slab;
        self.timers
            .take_due(now, |r| current_ref(slab, r).map(|f| f.stamp))
    }
}

/// The canonical key of the flow an index entry names (None: a slot emptied meanwhile).
fn entry_key(slab: &Slab, v: u32) -> Option<Key> {
    let flow = slab.get((v >> 1) as FlowId)?;
    Some(if v & 1 == 1 {
        flow.key.reversed()
    } else {
        flow.key
    })
}

/// Whether a release entry still names a live flow closed at the entry's time.
fn is_closing(slab: &Slab, c: &Closing) -> bool {
    current(slab, c.id, c.stamp).is_some_and(|f| f.closed_at() == Some(c.at))
}

/// The flow in slot `id` if it is the one inserted with `stamp` (queue entries outlive flows,
/// and slots are reused).
fn current(slab: &Slab, id: FlowId, stamp: u64) -> Option<&Flow> {
    slab.get(id).filter(|f| f.stamp == stamp)
}

/// The flow `r` names, if its slot still holds it.
fn current_ref(slab: &Slab, r: FlowRef) -> Option<&Flow> {
    slab.get(r.id())
        .filter(|f| FlowRef::new(r.id(), f.stamp) == r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Addr, TCP};
    use crate::flow::slab::SLAB_CHUNK;
    use crate::flow::slot::{Buffers, Orientation};

    /// A flow of `key` that began with a handshake at time 0, its client endpoint `a`.
    fn handshake_flow(key: Key) -> Flow {
        Flow::new(key, 0.0, 0, Orientation::Handshake, None)
    }

    fn key(a: u8, pa: u16) -> Key {
        Key {
            proto: TCP,
            a: Addr::V4([10, 0, 0, a]),
            b: Addr::V4([10, 0, 0, 99]),
            a_port: pa,
            b_port: 80,
        }
    }

    #[test]
    fn both_directions_find_the_flow() {
        let mut t = FlowTable::new(10);
        let id = t.insert(handshake_flow(key(1, 1234)));
        assert_eq!(t.lookup(&key(1, 1234)), Some((id, 0)));
        assert_eq!(t.lookup(&key(1, 1234).reversed()), Some((id, 1)));
        t.take(id);
        assert_eq!(t.lookup(&key(1, 1234)), None);
        assert!(t.is_empty());
    }

    /// The queues keep a stamp's low 32 bits: past 2^32 insertions the flows still come in
    /// insertion order, with their full stamps, and a recycled slot is still told apart.
    #[test]
    fn the_queues_keep_insertion_order_across_the_stamps_low_bits_wrapping() {
        let mut t = FlowTable::new(10);
        t.next_stamp = u64::from(u32::MAX) - 1;
        let ids: Vec<FlowId> = (1..=4)
            .map(|a| t.insert(handshake_flow(key(a, 1))))
            .collect();
        let stamps: Vec<u64> = ids.iter().map(|&id| t.get(id).stamp).collect();
        assert_eq!(stamps[0] as u32, u32::MAX);
        assert_eq!(stamps[1] as u32, 0, "the low bits wrapped");
        let in_order: Vec<(FlowId, u64)> = ids.iter().copied().zip(stamps.clone()).collect();
        assert_eq!(t.ids_in_order(), in_order);
        for &id in ids.iter().rev() {
            t.schedule(id, 5.0);
        }
        assert_eq!(t.take_due(5.0), in_order, "due flows in insertion order");
        // A slot given to a newer flow: the old flow's entries no longer name it.
        t.schedule(ids[0], 6.0);
        t.take(ids[0]);
        let newer = t.insert(handshake_flow(key(9, 1)));
        assert_eq!(newer, ids[0], "the slot is reused");
        assert_eq!(t.take_due(6.0), vec![]);
        assert_eq!(t.oldest(), Some(ids[1]));
        let newest = t.get(newer).stamp;
        assert_eq!(t.ids_in_order().last(), Some(&(newer, newest)));
    }

    #[test]
    fn a_look_up_with_the_hash_worked_out_ahead_finds_what_a_plain_one_does() {
        let mut t = FlowTable::new(10);
        let id = t.insert(handshake_flow(key(200, 1234)));
        let other = t.insert(handshake_flow(key(1, 1234)));
        // Both directions of a key hash alike: the index holds one entry a flow.
        assert_eq!(
            flow_hash(&key(200, 1234)),
            flow_hash(&key(200, 1234).reversed())
        );
        for k in [key(200, 1234), key(1, 1234)] {
            for k in [k, k.reversed()] {
                let want = t.lookup(&k);
                t.last = None; // the memo would answer before any hash is used
                assert_eq!(t.lookup_with(&k, Some(flow_hash(&k))), want, "{k:?}");
            }
        }
        assert_eq!(t.lookup(&key(200, 1234)), Some((id, 0)));
        assert_eq!(t.lookup(&key(1, 1234).reversed()), Some((other, 1)));
        t.last = None;
        assert_eq!(t.lookup_with(&key(7, 1), Some(flow_hash(&key(7, 1)))), None);
    }

    #[test]
    fn directions_hold_whichever_endpoint_sorts_first() {
        let mut t = FlowTable::new(10);
        // Its client (10.0.0.200) sorts after its server: the flow's key is the canonical
        // key reversed.
        let client_first = key(200, 1234);
        assert!(client_first.canonical().1);
        let id = t.insert(handshake_flow(client_first));
        let other = t.insert(handshake_flow(key(1, 1234)));
        for _ in 0..2 {
            // Alternating keys, so the one-entry memo is missed and hit.
            assert_eq!(t.lookup(&client_first.reversed()), Some((id, 1)));
            assert_eq!(t.lookup(&client_first), Some((id, 0)));
            assert_eq!(t.lookup(&key(1, 1234).reversed()), Some((other, 1)));
        }
        t.take(id);
        assert_eq!(t.lookup(&client_first), None);
        assert_eq!(t.lookup(&client_first.reversed()), None);
        assert_eq!(t.lookup(&key(1, 1234)), Some((other, 0)));
    }

    #[test]
    fn a_host_talking_to_itself_on_one_port_is_one_direction() {
        let mut t = FlowTable::new(10);
        let land = Key {
            proto: TCP,
            a: Addr::V4([10, 0, 0, 7]),
            b: Addr::V4([10, 0, 0, 7]),
            a_port: 139,
            b_port: 139,
        };
        let id = t.insert(handshake_flow(land));
        assert_eq!(t.lookup(&land.reversed()), Some((id, 0)));
        t.take(id);
        assert_eq!(t.lookup(&land), None);
    }

    #[test]
    fn order_survives_removal_and_slot_reuse() {
        let mut t = FlowTable::new(10);
        let a = t.insert(handshake_flow(key(1, 1)));
        let b = t.insert(handshake_flow(key(2, 1)));
        t.take(a);
        let c = t.insert(handshake_flow(key(3, 1)));
        assert_eq!(c, a); // slot reused, but ordered after b
        let ids: Vec<_> = t.ids_in_order().into_iter().map(|(i, _)| i).collect();
        assert_eq!(ids, vec![b, c]);
        assert_eq!(t.oldest(), Some(b));
    }

    #[test]
    fn the_index_holds_one_entry_a_live_flow_through_growth_removal_and_slot_reuse() {
        let k = |i: u32, port: u16| Key {
            proto: TCP,
            a: Addr::V4([10, 0, 0, 99]),
            b: Addr::V4(i.to_be_bytes()),
            a_port: port,
            b_port: 40000,
        };
        let mut t = FlowTable::new(1 << 20);
        let mut live: Vec<(Key, FlowId)> = (0..5000)
            .map(|i| (k(i, 80), t.insert(handshake_flow(k(i, 80)))))
            .collect();
        // Every third leaves; as many new flows take their slots, some under a key a removed
        // flow had (a new connection on the same 5-tuple).
        let gone: Vec<(Key, FlowId)> = live.iter().copied().step_by(3).collect();
        for &(_, id) in &gone {
            t.take(id);
        }
        live.retain(|(_, id)| !gone.iter().any(|(_, g)| g == id));
        for (n, &(old, _)) in gone.iter().enumerate() {
            let key = if n % 2 == 0 {
                old
            } else {
                k(100_000 + n as u32, 443)
            };
            live.push((key, t.insert(handshake_flow(key))));
        }
        assert_eq!(t.index.len(), t.len());
        assert_eq!(t.len(), live.len());
        for &(key, id) in &live {
            t.last = None;
            assert_eq!(t.lookup(&key), Some((id, 0)));
            t.last = None;
            assert_eq!(t.lookup(&key.reversed()), Some((id, 1)));
        }
        for (n, &(old, _)) in gone.iter().enumerate() {
            if n % 2 == 1 {
                t.last = None;
                assert_eq!(t.lookup(&old), None);
            }
        }
    }

    #[test]
    fn a_syn_number_is_kept_once_per_direction_zero_included() {
        let mut f = Flow::new(key(1, 1234), 0.0, 1, Orientation::Handshake, None);
        assert!(f.midstream());
        assert_eq!((f.isn(0), f.isn(1)), (None, None));
        assert!(f.set_isn(1, 0)); // 0 is a sequence number like any other
        assert!(!f.set_isn(1, 77)); // a retransmitted or forged second SYN changes nothing
        assert_eq!((f.isn(0), f.isn(1)), (None, Some(0)));
        assert!(!f.midstream());
        assert!(f.set_isn(0, u32::MAX));
        assert_eq!((f.isn(0), f.isn(1)), (Some(u32::MAX), Some(0)));
        assert_eq!(f.client_dir(), 1);
        f.number = 5;
        assert_eq!(f.created(), 4);
    }

    #[test]
    fn inspection_buffers_stay_small() {
        // Every flow under inspection holds one (a busy link's ramp-up holds tens of thousands
        // at once); was 248 bytes when each held room for both streams and both datagram lists,
        // 160 while each stream kept its out-of-order map in place.
        assert_size_at_most!(Buffers, 128);
        let (tcp, udp) = (Buffers::new(true), Buffers::new(false));
        assert_eq!((tcp.streams().len(), tcp.datagrams().len()), (2, 0));
        assert_eq!((udp.streams().len(), udp.datagrams().len()), (0, 2));
        assert!(!tcp.full() && !udp.full());
    }

    #[test]
    fn slab_grows_in_chunks_and_reuses_slots() {
        let mut t = FlowTable::new(1 << 20);
        let ids: Vec<_> = (0..3 * SLAB_CHUNK as u32)
            .map(|i| {
                let k = Key {
                    proto: TCP,
                    a: Addr::V4(i.to_be_bytes()),
                    b: Addr::V4([10, 0, 0, 99]),
                    a_port: 1,
                    b_port: 80,
                };
                t.insert(handshake_flow(k))
            })
            .collect();
        assert_eq!(t.slab.chunks.len(), 3);
        assert!(t.slab.chunks.iter().all(|c| c.capacity() == SLAB_CHUNK));
        assert_eq!(ids, (0..3 * SLAB_CHUNK).collect::<Vec<_>>());
        let last = ids[ids.len() - 1];
        let f = t.take(last);
        assert_eq!(t.insert(f), last);
        assert_eq!(t.slab.chunks.len(), 3);
        assert_eq!(
            t.get(SLAB_CHUNK + 5).key.a,
            Addr::V4(((SLAB_CHUNK + 5) as u32).to_be_bytes())
        );
    }

    #[test]
    fn shard_is_symmetric_and_matches_python() {
        let k = Key {
            proto: TCP,
            a: Addr::V4([192, 168, 1, 2]),
            b: Addr::V4([10, 0, 0, 1]),
            a_port: 51000,
            b_port: 443,
        };
        for n in 1..6 {
            assert_eq!(k.shard(n), k.reversed().shard(n));
        }
        // portwatch.capture.flows.shard_of(bytes([192,168,1,2,10,0,0,1]) + (51000).to_bytes(2,'big') + (443).to_bytes(2,'big'), 7)
        assert_eq!(k.shard(7), 2);
    }
}
