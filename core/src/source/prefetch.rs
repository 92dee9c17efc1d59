//! The capture's bytes read on a thread of their own, a few blocks ahead of the parser.
//!
//! Copying a file out of the page cache is the kernel's work on the reading thread (a seventh of
//! the core's time on a cached capture, all of a gzip capture's inflating): here it runs beside
//! the analysis instead of in its way, and a cold file's disk waits overlap it too. Each block
//! has room in front for the unconsumed tail of the block before it (`HEADROOM`), so a record
//! that spans two reads is made whole by copying that tail, never the block.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::pcap::MAX_RECORD;

/// The most a parser asks to have whole (a pcap record with its header, a pcapng block): the
/// room left in front of every block.
pub(crate) const HEADROOM: usize = MAX_RECORD as usize + 64;
/// What one block holds past its headroom: about a hundred packets, many reads fewer than per
/// packet. 128 KiB rather than 256: the same speed (the copy runs beside the analysis), 2 MB
/// less peak RSS on mix-2m (only the headroom's last pages are ever touched).
pub(crate) const BLOCK: usize = 128 << 10;
/// A block's whole length.
pub(crate) const BLOCK_BYTES: usize = HEADROOM + BLOCK;
/// Blocks read and not yet taken: enough to ride out one slow read, few enough to bound memory
/// (the thread waits once they are there).
pub(crate) const DEPTH: usize = 4;
/// A waiting thread is woken once the queue is down to this many blocks, not at every block
/// taken, so it reads `DEPTH - LOW_WATER` blocks in a row. A wake is a system call on the
/// parser's side, and on a VM an interrupt to the other CPU; a wake per block (the standard
/// bounded channel's way) put the two threads through 12,000 sleep/wake rounds on mix-2m.
/// Three blocks per wake made the core alone about 1.2x faster there.
const LOW_WATER: usize = 1;

/// What the thread hands over, in stream order.
pub(crate) enum Piece {
    /// A block with `len` bytes read at `HEADROOM..`.
    Data(Vec<u8>, usize),
    /// The end of input: cleanly (None) or the read error that stopped it.
    End(Option<io::Error>),
}

/// The queue between the thread and the parser, and who sleeps on it. A sleeper is woken only
/// when there is reason to (`Queue::take`, `Queue::put`): a condition variable's notify is a
/// system call even when nobody waits.
#[derive(Default)]
struct State {
    pieces: VecDeque<Piece>,
    /// The parser is gone (the reader dropped): the thread stops.
    closed: bool,
    /// The thread has ended: once the queue is empty, nothing more comes.
    finished: bool,
    reader_waits: bool,
    parser_waits: bool,
}

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    /// For the thread: room in the queue (or the parser gone).
    room: Condvar,
    /// For the parser: a piece (or the thread ended).
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The thread's side: queue `piece` once there is room; false if the parser is gone.
    fn put(&self, piece: Piece) -> bool {
        let mut st = self.lock();
        while st.pieces.len() >= DEPTH && !st.closed {
            st.reader_waits = true;
            st = self.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.reader_waits = false;
        if st.closed {
            return false;
        }
        st.pieces.push_back(piece);
        if st.parser_waits {
            st.parser_waits = false;
            self.ready.notify_one();
        }
        true
    }

    /// The parser's side: the next piece, waiting for it; None once the thread has ended and
    /// everything it queued was taken.
    fn take(&self) -> Option<Piece> {
        let mut st = self.lock();
        loop {
            if let Some(piece) = st.pieces.pop_front() {
                if st.reader_waits && st.pieces.len() <= LOW_WATER {
                    st.reader_waits = false;
                    self.room.notify_one();
                }
                return Some(piece);
            }
            if st.finished {
                return None;
            }
            st.parser_waits = true;
            st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.pieces.clear();
        if st.reader_waits {
            st.reader_waits = false;
            self.room.notify_one();
        }
    }

    fn finish(&self) {
        let mut st = self.lock();
        st.finished = true;
        if st.parser_waits {
            st.parser_waits = false;
            self.ready.notify_one();
        }
    }
}

/// The thread's end of the queue: says so when dropped, however the thread ends.
struct Producer(Arc<Queue>);

impl Drop for Producer {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The receiving side: blocks in order, and the way back for blocks done with.
pub(crate) struct Prefetch {
    queue: Arc<Queue>,
    pool: Sender<Vec<u8>>,
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Prefetch {
    /// Start reading `input` on a thread. `fill`: keep reading into a block until it is full
    /// (a file, where a read never waits long); otherwise each read is handed over as it comes,
    /// so a pipe's packets reach the parser without waiting for a block's worth.
    pub(crate) fn start(input: Box<dyn Read + Send>, fill: bool) -> io::Result<Self> {
        let queue = Arc::new(Queue::default());
        let producer = Producer(Arc::clone(&queue));
        let (pool, spares) = mpsc::channel();
        std::thread::Builder::new()
            .name("portwatch-read".into())
            .spawn(move || read_blocks(input, fill, &producer.0, &spares))?;
        Ok(Prefetch { queue, pool })
    }

    /// The next piece in stream order, waiting for the thread; None if it ended without saying
    /// so (it panicked).
    pub(crate) fn next(&self) -> Option<Piece> {
        self.queue.take()
    }

    /// A block back for the thread to read into again (dropped if the thread has ended).
    pub(crate) fn give_back(&self, block: Vec<u8>) {
        if block.len() == BLOCK_BYTES {
            let _ = self.pool.send(block);
        }
    }
}

/// The thread's loop: ends at the end of input, after a read error, or once the receiver is
/// gone (the capture closed early), after the read under way.
fn read_blocks(
    mut input: Box<dyn Read + Send>,
    fill: bool,
    out: &Queue,
    spares: &Receiver<Vec<u8>>,
) {
    loop {
        let mut block = spares.try_recv().unwrap_or_else(|_| vec![0u8; BLOCK_BYTES]);
        let mut len = 0;
        let mut ended = None;
        while len < BLOCK {
            let free = block.get_mut(HEADROOM + len..).unwrap_or(&mut []);
            match input.read(free) {
                Ok(0) => {
                    ended = Some(None);
                    break;
                }
                Ok(got) => {
                    len = (len + got).min(BLOCK);
                    if !fill {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    ended = Some(Some(e));
                    break;
                }
            }
        }
        if len > 0 && !out.put(Piece::Data(block, len)) {
            return;
        }
        if let Some(end) = ended {
            out.put(Piece::End(end));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn data(n: usize) -> Piece {
        Piece::Data(Vec::new(), n)
    }

    fn len_of(piece: Option<Piece>) -> Option<usize> {
        match piece {
            Some(Piece::Data(_, n)) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn pieces_come_out_in_order_and_none_after_the_end() {
        let q = Queue::default();
        for n in 1..=DEPTH {
            assert!(q.put(data(n)));
        }
        q.finish();
        for n in 1..=DEPTH {
            assert_eq!(len_of(q.take()), Some(n));
        }
        assert!(q.take().is_none());
    }

    #[test]
    fn a_full_queue_holds_the_thread_until_it_is_down_to_the_low_water_mark() {
        let q = Arc::new(Queue::default());
        let put = Arc::new(AtomicUsize::new(0));
        let (q2, put2) = (Arc::clone(&q), Arc::clone(&put));
        let thread = std::thread::spawn(move || {
            for n in 0..DEPTH + 1 {
                assert!(q2.put(data(n)));
                put2.fetch_add(1, Ordering::SeqCst);
            }
        });
        let settle = || std::thread::sleep(Duration::from_millis(100));
        // However slow the machine, the thread fills the queue, and then waits.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while put.load(Ordering::SeqCst) < DEPTH && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        settle();
        assert_eq!(put.load(Ordering::SeqCst), DEPTH, "the queue is bounded");
        // Taking blocks above the mark leaves the thread asleep (no wake per block)...
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
        thread.join().expect("the thread ends");
        assert_eq!(put.load(Ordering::SeqCst), DEPTH + 1);
    }

    #[test]
    fn a_waiting_parser_gets_a_piece_as_soon_as_it_is_put_and_a_waiting_thread_ends_on_close() {
        let q = Arc::new(Queue::default());
        let q2 = Arc::clone(&q);
        let parser = std::thread::spawn(move || len_of(q2.take()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(q.put(data(7)));
        assert_eq!(parser.join().expect("parser"), Some(7));

        for n in 0..DEPTH {
            assert!(q.put(data(n)));
        }
        let q3 = Arc::clone(&q);
        let thread = std::thread::spawn(move || q3.put(data(99)));
        std::thread::sleep(Duration::from_millis(50));
        q.close();
        assert!(!thread.join().expect("thread"), "put after close");
    }
}
