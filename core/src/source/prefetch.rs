//! The capture's bytes read on a thread of their own, a few blocks ahead of the parser.
//!
//! Copying a file out of the page cache is the kernel's work on the reading thread (a seventh of
//! the core's time on a cached capture, all of a gzip capture's inflating): here it runs beside
//! the analysis instead of in its way, and a cold file's disk waits overlap it too. Each block
//! has room in front for the unconsumed tail of the block before it (`HEADROOM`), so a record
//! that spans two reads is made whole by copying that tail, never the block.
#![forbid(unsafe_code)]

use std::io::{self, ErrorKind, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use crate::handoff::{Handoff, Producer};

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
/// A waiting thread is woken once the queue is down to this many blocks, so it reads
/// `DEPTH - LOW_WATER` blocks in a row (`crate::handoff`). A wake per block (the standard
/// bounded channel's way) put the two threads through 12,000 sleep/wake rounds on mix-2m;
/// three blocks per wake made the core alone about 1.2x faster there.
const LOW_WATER: usize = 1;
/// Blocks given back and kept for the thread to read into at most; past them a block given back
/// is freed. Kept without a bound, they piled up wherever the parser hands blocks back faster
/// than the thread reads new ones (records under 32 bytes: 470 MB of blocks, by heaptrack, for a
/// 256 MB capture of zero-length records read by a slow consumer). Room for every block the
/// pipeline holds at once, which can all come back together while the thread waits on a full
/// queue: this queue, the decoding thread's chunks (a block each) with the one it decodes and the
/// one analysed, the parser's window and the one it detaches. At 16, blocks returned in such a
/// burst were freed and made anew, and mix-2m's peak RSS went from 60-62 MB to 67-99 MB.
const SPARES: usize = 32;
const _: () = assert!(SPARES >= DEPTH + crate::predecode::DEPTH + 4);

/// What the thread hands over, in stream order.
pub(crate) enum Piece {
    /// A block with `len` bytes read at `HEADROOM..`.
    Data(Vec<u8>, usize),
    /// The end of input: cleanly (None) or the read error that stopped it.
    End(Option<io::Error>),
}

/// The receiving side: blocks in order, and the way back for blocks done with.
pub(crate) struct Prefetch {
    queue: Arc<Handoff<Piece>>,
    pool: SyncSender<Vec<u8>>,
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
        let queue = Arc::new(Handoff::new(DEPTH, LOW_WATER));
        let producer = Producer(Arc::clone(&queue));
        let (pool, spares) = mpsc::sync_channel(SPARES);
        std::thread::Builder::new()
            .name("portwatch-read".into())
            .spawn(move || read_blocks(input, fill, &producer, &spares))?;
        Ok(Prefetch { queue, pool })
    }

    /// The next piece in stream order, waiting for the thread; None if it ended without saying
    /// so (it panicked).
    pub(crate) fn next(&self) -> Option<Piece> {
        self.queue.take()
    }

    /// A block back for the thread to read into again: false when it is freed instead (the
    /// thread holds `SPARES` already, or has ended, or the block is not one of its size).
    pub(crate) fn give_back(&self, block: Vec<u8>) -> bool {
        block.len() == BLOCK_BYTES && self.pool.try_send(block).is_ok()
    }
}

/// The thread's loop: ends at the end of input, after a read error, or once the receiver is
/// gone (the capture closed early), after the read under way.
fn read_blocks(
    mut input: Box<dyn Read + Send>,
    fill: bool,
    out: &Handoff<Piece>,
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

    /// The thread blocked on a full queue reads no spares: past `SPARES` of them, a block given
    /// back is freed, not kept (an unbounded pool held 470 MB of blocks on tiny records).
    #[test]
    fn spares_given_back_are_bounded() {
        let prefetch = Prefetch::start(Box::new(io::repeat(0)), true).unwrap();
        let first = prefetch.next();
        assert!(matches!(first, Some(Piece::Data(_, BLOCK))));
        // Wait for the thread to fill the queue again and block on it.
        while prefetch.queue.len() < DEPTH {
            std::thread::yield_now();
        }
        let kept = (0..SPARES + 3)
            .filter(|_| prefetch.give_back(vec![0u8; BLOCK_BYTES]))
            .count();
        assert_eq!(kept, SPARES);
        assert!(!prefetch.give_back(vec![0u8; 10]), "not a block");
    }
}
