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
//! Bounds: a verdict is kept for the hour of capture time its flow ended in and the next (the
//! two generations: the one before goes when a flow ends in a new hour, having passed the
//! horizon), and at most `capacity` in all: past it the older generation goes early, and past
//! that no more are kept. A look-up is two probes and nothing is ever scanned.
//!
//! A shard of `parallel` holds its own (its flows' 5-tuples are its own, and `max_flows` and so
//! the capacity are divided among the shards). What is kept depends on capture time alone, so
//! the records are the same for every worker count as long as no shard's capacity fills, as for
//! the flow table.
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
    /// By the parity of the hour (`RESUME_WITHIN`) of capture time each flow ended in.
    generations: [ByKey; 2],
    /// The latest hour a remembered flow ended in.
    hour: i64,
    capacity: usize,
}

/// The hour of capture time `ts` falls in (a time no capture can hold saturates).
fn hour_of(ts: f64) -> i64 {
    (ts / RESUME_WITHIN).floor() as i64
}

impl Resumable {
    /// At most `capacity` remembered (at least 1).
    pub fn new(capacity: usize) -> Self {
        Resumable {
            generations: [ByKey::default(), ByKey::default()],
            hour: i64::MIN,
            capacity: capacity.max(1),
        }
    }

    /// `ended` for `key`'s 5-tuple, either way round, in place of any earlier one.
    pub fn remember(&mut self, key: &Key, ended: Ended) {
        let hour = hour_of(ended.ts_end);
        if hour > self.hour {
            // A flow ended in a new hour: whatever ended two hours before is past the horizon
            // for every flow from now on (freed, not only emptied).
            if hour != self.hour.saturating_add(1) {
                self.generations[parity(hour.wrapping_add(1))] = ByKey::default();
            }
            self.generations[parity(hour)] = ByKey::default();
            self.hour = hour;
        }
        let (canonical, _) = key.canonical();
        for generation in &mut self.generations {
            generation.remove(&canonical);
        }
        if self.len() >= self.capacity {
            self.generations[parity(self.hour.wrapping_add(1))] = ByKey::default();
            if self.len() >= self.capacity {
                return;
            }
        }
        self.generations[parity(hour)].insert(canonical, ended);
    }

    /// The flow that ended on `key`'s 5-tuple, forgotten now; None when there is none, or when it
    /// ended more than `RESUME_WITHIN` seconds before `ts`.
    pub fn take(&mut self, key: &Key, ts: f64) -> Option<Ended> {
        if self.is_empty() {
            return None;
        }
        let (canonical, _) = key.canonical();
        let [a, b] = &mut self.generations;
        let ended = a.remove(&canonical).or_else(|| b.remove(&canonical))?;
        (ts - ended.ts_end <= RESUME_WITHIN).then_some(ended)
    }

    /// A new signature set: each verdict as `renumber` gives it in the new set's numbers, or
    /// forgotten where it gives none (its signature is gone).
    pub fn renumber(&mut self, mut renumber: impl FnMut(&Verdict) -> Option<Arc<Verdict>>) {
        for generation in &mut self.generations {
            generation.retain(|_, ended| match renumber(&ended.verdict) {
                Some(v) => {
                    ended.verdict = v;
                    true
                }
                None => false,
            });
        }
    }

    pub fn len(&self) -> usize {
        self.generations.iter().map(ByKey::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.generations.iter().all(ByKey::is_empty)
    }
}

fn parity(hour: i64) -> usize {
    usize::from(hour.rem_euclid(2) == 1)
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
    fn a_verdict_is_kept_for_the_hour_its_flow_ended_in_and_the_next() {
        let mut r = Resumable::new(16);
        let (k1, k2, k3) = (key(1000, 22), key(1001, 22), key(1002, 22));
        r.remember(&k1, ended(1, 100.0, &k1, 0));
        r.remember(&k2, ended(2, RESUME_WITHIN + 100.0, &k2, 0));
        assert_eq!(r.len(), 2, "the next hour keeps the one before");
        r.remember(&k3, ended(3, 2.0 * RESUME_WITHIN + 100.0, &k3, 0));
        assert_eq!(
            r.len(),
            2,
            "the hour after drops the first: past the horizon by then"
        );
        assert!(r.take(&k1, 100.0).is_none());
        assert_eq!(r.take(&k2, 2.0 * RESUME_WITHIN).map(|e| e.flow_id), Some(2));
        // A flow ending hours later frees both.
        r.remember(&k1, ended(4, 9.0 * RESUME_WITHIN, &k1, 0));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn past_the_capacity_the_older_hour_goes_then_nothing_more_is_kept() {
        let mut r = Resumable::new(4);
        for port in 0..2u16 {
            let k = key(1000 + port, 80);
            r.remember(&k, ended(u64::from(port), 10.0, &k, 0));
        }
        for port in 2..4u16 {
            let k = key(1000 + port, 80);
            r.remember(&k, ended(u64::from(port), RESUME_WITHIN + 10.0, &k, 0));
        }
        assert_eq!(r.len(), 4);
        let k = key(2000, 80);
        r.remember(&k, ended(9, RESUME_WITHIN + 20.0, &k, 0));
        assert_eq!(r.len(), 3, "the first hour's two went to make room");
        for port in 3000..3100u16 {
            let k = key(port, 80);
            r.remember(&k, ended(u64::from(port), RESUME_WITHIN + 30.0, &k, 0));
            assert!(r.len() <= 4, "{}", r.len());
        }
        for port in [1002, 1003, 2000, 3000] {
            assert!(
                r.take(&key(port, 80), RESUME_WITHIN + 40.0).is_some(),
                "{port}"
            );
        }
        assert!(r.take(&key(3001, 80), RESUME_WITHIN + 40.0).is_none());
    }

    #[test]
    fn any_capture_time_is_taken() {
        let mut r = Resumable::new(4);
        let k = key(6000, 443);
        for ts in [
            f64::MAX,
            f64::MIN,
            f64::NAN,
            0.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            r.remember(&k, ended(1, ts, &k, 0));
            assert!(r.len() <= 1);
        }
    }

    #[test]
    fn remembering_a_5_tuple_again_keeps_one_entry() {
        let k = key(5000, 25);
        let mut r = Resumable::new(4);
        r.remember(&k, ended(1, 1.0, &k, 0));
        // The same 5-tuple ends again in the next hour: the newer verdict replaces the older.
        r.remember(&k.reversed(), ended(3, RESUME_WITHIN + 2.0, &k, 0));
        assert_eq!(r.len(), 1);
        assert_eq!(r.take(&k, RESUME_WITHIN + 3.0).map(|e| e.flow_id), Some(3));
        assert!(r.take(&k, RESUME_WITHIN + 3.0).is_none());
    }
}
