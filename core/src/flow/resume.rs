//! Resumed connections: the verdict of a TCP flow the table ended, for the flow that continues it.
//!
//! A TCP connection outlives any silence: the endpoints keep no timer on an idle connection
//! (RFC 9293 3.8.4; keep-alives are optional and two hours apart by default, RFC 1122
//! 4.2.3.6), but the flow table ends a flow quiet for its idle timeout, as Zeek and Suricata do,
//! and evicts the oldest when it is full. When the connection speaks again, its bytes come from
//! the middle of a stream: no signature finds an SSH session or a TLS connection there, and the
//! continuation of a classified flow would be reported as unknown, as encrypted traffic nobody
//! can explain, or as clear text on a secure port. So the tracker remembers the verdict of every
//! classified TCP flow that ends idle or evicted, and a flow picked up without a SYN on the same
//! 5-tuple within `RESUME_WITHIN` seconds continues it: the same protocol, confidence and roles,
//! `meta.resumes` naming the flow it continues and an evidence line that says so around the
//! earlier one's. A SYN is a new connection on the 5-tuple and is classified afresh.
//!
//! Bounds: at most `capacity` verdicts, kept in two generations. Remembering goes into the
//! newer; once it holds half the capacity it becomes the older and the older is dropped. A
//! look-up is two probes and nothing is ever scanned.
//!
//! A shard of `parallel` holds its own (its flows' 5-tuples are its own, and `max_flows` and so
//! the capacity are divided among the shards), so the records are the same for every worker
//! count as long as no shard's generations turn over.
#![forbid(unsafe_code)]

use std::hash::RandomState;
use std::sync::Arc;

use hashbrown::HashMap;

use super::key::Key;
use super::slot::Verdict;

/// Seconds of silence after which a flow picked up mid-stream no longer continues an earlier
/// one: a stateful firewall's established-connection timeout (an hour on Cisco's ASA).
pub const RESUME_WITHIN: f64 = 3600.0;

/// What a flow the table ended leaves for the one that may continue it.
#[derive(Clone, Debug)]
pub struct Ended {
    pub verdict: Arc<Verdict>,
    /// Its `flow_id`.
    pub flow_id: u64,
    pub ts_end: f64,
    /// Whether its client was endpoint `a` of its canonical key (`Key::canonical`).
    client_is_a: bool,
}

impl Ended {
    /// `client_dir`: the ended flow's client direction as its key `key` had it.
    pub fn new(
        verdict: Arc<Verdict>,
        flow_id: u64,
        ts_end: f64,
        key: &Key,
        client_dir: usize,
    ) -> Self {
        let (_, reversed) = key.canonical();
        Ended {
            verdict,
            flow_id,
            ts_end,
            client_is_a: (client_dir == 0) != reversed,
        }
    }

    /// The client direction for a flow keyed `key` (same 5-tuple, either way round).
    pub fn client_dir(&self, key: &Key) -> usize {
        let (_, reversed) = key.canonical();
        usize::from(self.client_is_a == reversed)
    }
}

/// The verdicts of the TCP flows the table ended, by canonical 5-tuple.
///
/// Hashed with std's SipHash under its per-process random key rather than the flow index's
/// foldhash: a second user of `Key`'s foldhash made the compiler stop inlining the hash into
/// every packet's flow look-up (3.6% more instructions on a capture of 200 flows open), and this
/// map is asked once per new TCP flow at most.
type ByKey = HashMap<Key, Ended, RandomState>;

#[derive(Debug)]
pub struct Resumable {
    newer: ByKey,
    older: ByKey,
    capacity: usize,
}

impl Resumable {
    /// At most `capacity` remembered (at least 2, one per generation).
    pub fn new(capacity: usize) -> Self {
        Resumable {
            newer: ByKey::default(),
            older: ByKey::default(),
            capacity: capacity.max(2),
        }
    }

    /// `ended` for `key`'s 5-tuple, either way round, in place of any earlier one.
    pub fn remember(&mut self, key: &Key, ended: Ended) {
        let (canonical, _) = key.canonical();
        if self.newer.len() >= self.capacity / 2 {
            self.older = std::mem::take(&mut self.newer);
        }
        self.older.remove(&canonical);
        self.newer.insert(canonical, ended);
    }

    /// The flow that ended on `key`'s 5-tuple, forgotten now; None when there is none, or when it
    /// ended more than `RESUME_WITHIN` seconds before `ts`.
    pub fn take(&mut self, key: &Key, ts: f64) -> Option<Ended> {
        if self.is_empty() {
            return None;
        }
        let (canonical, _) = key.canonical();
        let ended = self
            .newer
            .remove(&canonical)
            .or_else(|| self.older.remove(&canonical))?;
        (ts - ended.ts_end <= RESUME_WITHIN).then_some(ended)
    }

    /// A new signature set: each verdict as `renumber` gives it in the new set's numbers, or
    /// forgotten where it gives none (its signature is gone).
    pub fn renumber(&mut self, mut renumber: impl FnMut(&Verdict) -> Option<Arc<Verdict>>) {
        for map in [&mut self.newer, &mut self.older] {
            map.retain(|_, ended| match renumber(&ended.verdict) {
                Some(v) => {
                    ended.verdict = v;
                    true
                }
                None => false,
            });
        }
    }

    pub fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    pub fn is_empty(&self) -> bool {
        self.newer.is_empty() && self.older.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Addr, TCP};

    fn key(a_port: u16, b_port: u16) -> Key {
        Key {
            proto: TCP,
            a: Addr::V4([10, 0, 0, 1]),
            b: Addr::V4([10, 0, 0, 2]),
            a_port,
            b_port,
        }
    }

    fn ended(flow_id: u64, ts_end: f64, key: &Key, client_dir: usize) -> Ended {
        let verdict = Arc::new(Verdict::new(Some(0), "ssh".into(), 1.0, "banner".into()));
        Ended::new(verdict, flow_id, ts_end, key, client_dir)
    }

    #[test]
    fn an_entry_is_small() {
        assert_size_at_most!((Key, Ended), 72);
    }

    #[test]
    fn the_roles_follow_the_endpoints_whichever_way_the_key_comes() {
        let k = key(40000, 22);
        let mut r = Resumable::new(16);
        r.remember(&k, ended(7, 10.0, &k, 0));
        // The continuation's first packet came from the server: its key is reversed.
        let back = r.take(&k.reversed(), 500.0).expect("remembered");
        assert_eq!(back.flow_id, 7);
        assert_eq!(back.client_dir(&k.reversed()), 1);
        assert_eq!(back.client_dir(&k), 0);
        assert!(r.take(&k, 500.0).is_none(), "taken once");
    }

    #[test]
    fn a_verdict_older_than_the_horizon_is_not_taken() {
        let k = key(40000, 443);
        let mut r = Resumable::new(16);
        r.remember(&k, ended(1, 10.0, &k, 1));
        assert!(r.take(&k, 10.0 + RESUME_WITHIN + 1.0).is_none());
        r.remember(&k, ended(2, 10.0, &k, 1));
        assert_eq!(r.take(&k, 10.0 + RESUME_WITHIN).map(|e| e.flow_id), Some(2));
    }

    #[test]
    fn memory_is_bounded_by_the_capacity_and_the_newest_survive() {
        let mut r = Resumable::new(8);
        for port in 0..100u16 {
            let k = key(1000 + port, 80);
            r.remember(&k, ended(u64::from(port), 1.0, &k, 0));
            assert!(r.len() <= 8, "{}", r.len());
        }
        // The last half-capacity are in the newer generation, the half before in the older.
        for port in 92..100u16 {
            assert!(r.take(&key(1000 + port, 80), 2.0).is_some(), "{port}");
        }
        assert!(r.take(&key(1000, 80), 2.0).is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn remembering_a_5_tuple_again_keeps_one_entry() {
        let k = key(5000, 25);
        let mut r = Resumable::new(4);
        r.remember(&k, ended(1, 1.0, &k, 0));
        r.remember(&key(5001, 25), ended(2, 1.0, &k, 0));
        // The newer generation turns over, and the older one's copy of the 5-tuple goes.
        r.remember(&k, ended(3, 2.0, &k, 0));
        assert_eq!(r.len(), 2);
        assert_eq!(r.take(&k, 3.0).map(|e| e.flow_id), Some(3));
        assert!(r.take(&k, 3.0).is_none());
    }
}
