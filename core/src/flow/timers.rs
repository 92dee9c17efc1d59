//! When each flow next needs the sweep's attention: flows filed by the second their timeout
//! may fall due, so that a sweep visits the flows that may be due rather than every live flow.
//!
//! Walking the whole table each second of capture time made the sweep's cost the number of
//! live flows times the capture's length: on a long, slow capture it outgrew the packets'
//! own. Zeek keeps its timers in a priority queue for the same reason; a queue of seconds is
//! cheaper still here, as a sweep takes whole seconds at once. A binary heap of entries cost
//! more than the walk it replaced on such a capture (a cache miss at each level of each pop).
//!
//! An entry is a hint, not a verdict: the caller files a flow no later than the first time
//! its timeout could fall due, checks the flow itself when the entry comes up (up to a second
//! early, within its second), and files it again if it is not due yet. Entries of flows
//! removed meanwhile, or of an older filing of the same flow, are dropped when they come up or
//! when the queue is compacted.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use super::table::{FlowId, FlowRef};

#[derive(Default)]
pub struct TimerQueue {
    /// Whole seconds (`at` rounded down) -> the flows filed for that second.
    seconds: BTreeMap<i64, Vec<FlowRef>>,
    entries: usize,
}

/// The second an entry at `at` is filed under; None for NaN, which never comes due.
fn second(at: f64) -> Option<i64> {
    // `as` saturates: -inf comes up at once, +inf only past 9.2e18 seconds (and is checked).
    (!at.is_nan()).then(|| at.floor() as i64)
}

impl TimerQueue {
    /// Look at flow (`id`, `stamp`) again at the first sweep at or after `at` (seconds).
    pub fn schedule(&mut self, at: f64, id: FlowId, stamp: u64) {
        let Some(s) = second(at) else { return };
        self.seconds
            .entry(s)
            .or_default()
            .push(FlowRef::new(id, stamp));
        self.entries += 1;
    }

    /// The flows filed up to `now`'s second, each once, in order of their stamps (the table's
    /// insertion order), among those `current` finds still live (it gives a reference's full
    /// stamp); their entries are gone.
    pub fn take_due(
        &mut self,
        now: f64,
        current: impl Fn(FlowRef) -> Option<u64>,
    ) -> Vec<(FlowId, u64)> {
        let Some(until) = second(now) else {
            return Vec::new();
        };
        let mut due = Vec::new();
        while let Some(entry) = self.seconds.first_entry() {
            if *entry.key() > until {
                break;
            }
            let flows = entry.remove();
            self.entries -= flows.len();
            due.extend(
                flows
                    .into_iter()
                    .filter_map(|r| current(r).map(|stamp| (r.id(), stamp))),
            );
        }
        due.sort_unstable_by_key(|&(_, stamp)| stamp);
        due.dedup_by_key(|&mut (_, stamp)| stamp);
        due
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Drop the entries of flows no longer live and all but the earliest entry of each live
    /// one (a flow is filed again whenever its timeout may have moved earlier, so a hostile
    /// capture could otherwise pile entries up).
    pub fn compact(&mut self, current: impl Fn(FlowRef) -> bool) {
        // By slot: one live flow a slot (a reference's stamp is only its low bits).
        let mut seen = hashbrown::HashSet::new();
        self.entries = 0;
        // Earliest second first, so the entry a flow keeps is its earliest.
        for flows in self.seconds.values_mut() {
            flows.retain(|&r| current(r) && seen.insert(r.id()));
            self.entries += flows.len();
        }
        self.seconds.retain(|_, flows| !flows.is_empty());
    }

    pub fn clear(&mut self) {
        self.seconds.clear();
        self.entries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every filing's flow still live, its full stamp its low bits (stamps below 2^32).
    fn live(r: FlowRef) -> Option<u64> {
        Some(u64::from(r.stamp_low()))
    }

    #[test]
    fn due_entries_come_once_each_in_stamp_order() {
        let mut q = TimerQueue::default();
        q.schedule(5.0, 1, 30);
        q.schedule(2.0, 2, 10);
        q.schedule(3.0, 2, 10); // a second entry of the same flow
        q.schedule(4.0, 3, 20);
        q.schedule(9.0, 4, 40);
        assert_eq!(q.take_due(5.0, live), vec![(2, 10), (3, 20), (1, 30)]);
        assert_eq!(q.len(), 1);
        assert!(q.take_due(8.9, live).is_empty());
        assert_eq!(q.take_due(9.0, live), vec![(4, 40)]);
        assert!(q.is_empty());
    }

    #[test]
    fn an_entry_comes_up_within_its_second_never_after_it() {
        let mut q = TimerQueue::default();
        q.schedule(7.6, 1, 1);
        assert!(q.take_due(6.99, live).is_empty());
        assert_eq!(q.take_due(7.0, live), vec![(1, 1)]); // early: the caller checks
        q.schedule(-3.5, 2, 2); // capture times before 1970
        assert_eq!(q.take_due(-4.0, live), vec![(2, 2)]);
    }

    #[test]
    fn entries_of_flows_gone_are_dropped() {
        let mut q = TimerQueue::default();
        q.schedule(1.0, 7, 1);
        q.schedule(1.0, 7, 2); // slot 7 reused by a newer flow
        assert_eq!(
            q.take_due(1.0, |r| (r.stamp_low() == 2).then_some(2)),
            vec![(7, 2)]
        );
        assert!(q.is_empty());
    }

    #[test]
    fn nan_never_comes_due_and_infinity_only_at_infinity() {
        let mut q = TimerQueue::default();
        q.schedule(f64::NAN, 1, 1);
        q.schedule(f64::INFINITY, 2, 2);
        q.schedule(f64::NEG_INFINITY, 3, 3);
        assert_eq!(q.len(), 2);
        assert_eq!(q.take_due(f64::NAN, live), vec![]);
        assert_eq!(q.take_due(1e12, live), vec![(3, 3)]);
        assert_eq!(q.take_due(f64::INFINITY, live), vec![(2, 2)]);
        assert!(q.is_empty());
    }

    #[test]
    fn compaction_keeps_each_live_flows_earliest_entry() {
        let mut q = TimerQueue::default();
        for i in 0..10u64 {
            q.schedule(10.0 - i as f64, 1, 5); // ten entries of one flow
            q.schedule(1.0, 2, 100 + i); // entries of ten flows, nine of them gone
        }
        q.compact(|r| matches!(r.stamp_low(), 5 | 109));
        assert_eq!(q.len(), 2);
        assert!(q.take_due(0.9, live).is_empty());
        assert_eq!(q.take_due(1.0, live), vec![(1, 5), (2, 109)]);
        assert!(q.is_empty());
    }
}
