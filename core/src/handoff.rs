//! A bounded queue between a thread that produces in order and the one that consumes, which
//! wakes a sleeper only when there is reason to.
//!
//! The standard bounded channel wakes a waiting producer at every item taken. On a 2-core
//! machine the producer then often preempts the consumer on its own CPU (the scheduler places a
//! woken thread beside its waker), and a wake is a system call on the consumer's side and, on a
//! VM, an interrupt to the other CPU. Here a full queue's producer sleeps until the queue is
//! down to `low_water` items and then produces `depth - low_water` in a row; a consumer is woken
//! only when it waits. A condition variable's notify is a system call even when nobody waits,
//! so each side notes whether it sleeps.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

struct State<T> {
    items: VecDeque<T>,
    /// The consumer is gone: the producer stops.
    closed: bool,
    /// The producer has ended: once the queue is empty, nothing more comes.
    finished: bool,
    producer_waits: bool,
    consumer_waits: bool,
}

pub(crate) struct Handoff<T> {
    state: Mutex<State<T>>,
    /// For the producer: room in the queue (or the consumer gone).
    room: Condvar,
    /// For the consumer: an item (or the producer ended).
    ready: Condvar,
    depth: usize,
    low_water: usize,
}

impl<T> Handoff<T> {
    /// At most `depth` items queued; a producer held by a full queue resumes once it is down to
    /// `low_water` (below `depth`).
    pub(crate) fn new(depth: usize, low_water: usize) -> Self {
        let depth = depth.max(1);
        Handoff {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(depth),
                closed: false,
                finished: false,
                producer_waits: false,
                consumer_waits: false,
            }),
            room: Condvar::new(),
            ready: Condvar::new(),
            depth,
            low_water: low_water.min(depth - 1),
        }
    }

    /// Items queued now (for tests that wait for a producer to fill the queue).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves plain data behind: go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The producer's side: queue `item` once there is room; false (the item dropped) if the
    /// consumer is gone.
    pub(crate) fn put(&self, item: T) -> bool {
        let mut st = self.lock();
        while st.items.len() >= self.depth && !st.closed {
            st.producer_waits = true;
            st = self.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.producer_waits = false;
        if st.closed {
            return false;
        }
        st.items.push_back(item);
        if st.consumer_waits {
            st.consumer_waits = false;
            self.ready.notify_one();
        }
        true
    }

    /// The consumer's side: the next item, waiting for it; None once the producer has ended and
    /// everything it queued was taken.
    pub(crate) fn take(&self) -> Option<T> {
        let mut st = self.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                if st.producer_waits && st.items.len() <= self.low_water {
                    st.producer_waits = false;
                    self.room.notify_one();
                }
                return Some(item);
            }
            if st.finished {
                return None;
            }
            st.consumer_waits = true;
            st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The consumer is gone: what is queued is dropped and the producer's next `put` fails.
    pub(crate) fn close(&self) {
        let items = {
            let mut st = self.lock();
            st.closed = true;
            if st.producer_waits {
                st.producer_waits = false;
                self.room.notify_one();
            }
            std::mem::take(&mut st.items)
        };
        // Dropped outside the lock: an item's drop may take time.
        drop(items);
    }

    fn finish(&self) {
        let mut st = self.lock();
        st.finished = true;
        if st.consumer_waits {
            st.consumer_waits = false;
            self.ready.notify_one();
        }
    }
}

/// The producer's end of a queue: says the producer has ended when dropped, however its thread
/// ends (a panic included), so the consumer never waits for nothing.
pub(crate) struct Producer<T>(pub(crate) Arc<Handoff<T>>);

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

impl<T> std::ops::Deref for Producer<T> {
    type Target = Handoff<T>;
    fn deref(&self) -> &Handoff<T> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    const DEPTH: usize = 4;
    const LOW_WATER: usize = 1;

    fn queue() -> Arc<Handoff<usize>> {
        Arc::new(Handoff::new(DEPTH, LOW_WATER))
    }

    #[test]
    fn items_come_out_in_order_and_none_after_the_end() {
        let q = queue();
        let producer = Producer(Arc::clone(&q));
        for n in 1..=DEPTH {
            assert!(producer.put(n));
        }
        drop(producer);
        for n in 1..=DEPTH {
            assert_eq!(q.take(), Some(n));
        }
        assert!(q.take().is_none());
    }

    #[test]
    fn a_full_queue_holds_the_producer_until_it_is_down_to_the_low_water_mark() {
        let q = queue();
        let put = Arc::new(AtomicUsize::new(0));
        let (q2, put2) = (Arc::clone(&q), Arc::clone(&put));
        let thread = std::thread::spawn(move || {
            for n in 0..DEPTH + 1 {
                assert!(q2.put(n));
                put2.fetch_add(1, Ordering::SeqCst);
            }
        });
        let settle = || std::thread::sleep(Duration::from_millis(100));
        // However slow the machine, the producer fills the queue, and then waits.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while put.load(Ordering::SeqCst) < DEPTH && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        settle();
        assert_eq!(put.load(Ordering::SeqCst), DEPTH, "the queue is bounded");
        // Taking items above the mark leaves the producer asleep (no wake per item)...
        for _ in 0..DEPTH - LOW_WATER - 1 {
            q.take();
        }
        settle();
        assert_eq!(
            put.load(Ordering::SeqCst),
            DEPTH,
            "woken above the low-water mark"
        );
        // ...the one that reaches the mark wakes it.
        q.take();
        thread.join().expect("the producer ends");
        assert_eq!(put.load(Ordering::SeqCst), DEPTH + 1);
    }

    #[test]
    fn a_waiting_consumer_gets_an_item_as_soon_as_it_is_put_and_a_waiting_producer_ends_on_close() {
        let q = queue();
        let q2 = Arc::clone(&q);
        let consumer = std::thread::spawn(move || q2.take());
        std::thread::sleep(Duration::from_millis(50));
        assert!(q.put(7));
        assert_eq!(consumer.join().expect("consumer"), Some(7));

        for n in 0..DEPTH {
            assert!(q.put(n));
        }
        let q3 = Arc::clone(&q);
        let thread = std::thread::spawn(move || q3.put(99));
        std::thread::sleep(Duration::from_millis(50));
        q.close();
        assert!(!thread.join().expect("thread"), "put after close");
    }

    #[test]
    fn a_producer_that_panics_still_ends_the_queue() {
        let q = queue();
        let producer = Producer(Arc::clone(&q));
        let thread = std::thread::spawn(move || {
            assert!(producer.put(1));
            panic!("a producer that fails");
        });
        assert_eq!(q.take(), Some(1));
        assert_eq!(
            q.take(),
            None,
            "the consumer does not wait for a dead producer"
        );
        assert!(thread.join().is_err());
    }

    #[test]
    fn a_low_water_mark_at_or_above_the_depth_still_wakes_the_producer() {
        let q = Arc::new(Handoff::new(2, 5));
        assert!(q.put(1));
        assert!(q.put(2));
        let q2 = Arc::clone(&q);
        let thread = std::thread::spawn(move || q2.put(3));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(q.take(), Some(1));
        assert!(thread.join().expect("thread"), "woken by the first take");
    }
}
