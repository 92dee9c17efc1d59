//! A capture's frames framed and decoded on a thread of their own, a few chunks ahead of the
//! analysis that tracks their flows.
//!
//! Which packet a frame holds (link layer, IP, transport: `decode::peek`) depends on the frame
//! alone, except for IP fragments. Found here, beside the analysis, it takes the framing, the
//! walk through the layers and the frame's bytes' trip through the cache off the analysing
//! thread, which on a 2-core machine is the one every other thread waits for; the analysis
//! then reads a frame's bytes only where a flow is still inspected. A frame whose packet is
//! not settled by the frame alone (a fragment, a tunnel's datagram, no packet at all) comes
//! without one and is decoded by the analysis itself, with its defragmenter, as before.
//!
//! The frames come in the source's order, each exactly once; the chunks are bounded
//! (`DEPTH`). Stopping (`stop`) ends the reading after the chunk under way, and the chunks
//! read by then still come out: every frame read is analysed.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::decode::Peeked;
use crate::handoff::{Handoff, Producer};
use crate::parallel::FrameSource;
use crate::source::{Chunk, Record};

/// Frames asked for per chunk. A capture's chunk ends with its read buffer (128 KiB: a hundred
/// frames of an average mix, a couple of thousand of minimum-size ones), so a chunk is one
/// block: ended inside a block, a chunk takes that block with it and the reading goes on in a
/// fresh one. At 256 frames a chunk (and 4 chunks queued) mix-2m's reading made 56 blocks, most
/// of them such fresh windows; at a block a chunk and 16 queued, 24. This bounds a source that
/// copies its frames into chunks, and with `DEPTH` how far the reading runs ahead of a stop.
const CHUNK_FRAMES: usize = 4096;
/// Chunks decoded and not yet taken. On 2 cores the decoding and reading threads run only
/// where Python's and the analysing thread leave room; the deeper their queue, the fewer times
/// they must take a CPU from one of those. 16 rather than 4: the CLI 10-15% faster on mix-2m and
/// the 3,191-second capture, peak RSS the same (32: a few percent faster still, 6 MB more).
pub(crate) const DEPTH: usize = 16;
/// A decoding thread held by a full queue resumes once it is down to this many chunks, and
/// decodes `DEPTH - LOW_WATER` in a row (`crate::handoff`): woken at every chunk taken (the
/// standard bounded channel), it preempted the analysing thread on its own CPU at a quarter of
/// that thread's context switches.
const LOW_WATER: usize = 4;
/// The most frames read ahead of the analysis: the queue, the chunk being decoded and the one
/// being taken (for tests that need a source longer than that).
#[cfg(test)]
pub(crate) const MAX_AHEAD_FRAMES: usize = (DEPTH + 2) * CHUNK_FRAMES;

/// A chunk of frames and the packet of each, where the frame alone settles it.
struct PeekedChunk {
    chunk: Chunk,
    packets: Vec<Option<Peeked>>,
}

/// The frames of `source`, each with its packet when the decoding thread found it.
pub struct Predecoder {
    /// None once the decoding thread has ended and every chunk it made was taken.
    chunks: Option<Arc<Handoff<PeekedChunk>>>,
    /// Chunks taken, back to the decoding thread: their buffers are the source's to reuse.
    spent: Sender<PeekedChunk>,
    current: Option<PeekedChunk>,
    /// The next frame of `current`.
    at: usize,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock<S: ?Sized>(source: &Mutex<S>) -> MutexGuard<'_, S> {
    source.lock().unwrap_or_else(|e| e.into_inner())
}

impl Predecoder {
    /// Start reading `source` (locked for each chunk only) on a thread of its own; `stop` ends
    /// the reading after the chunk under way.
    pub fn start<S: FrameSource + Send + ?Sized + 'static>(
        source: Arc<Mutex<S>>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let chunks = Arc::new(Handoff::new(DEPTH, LOW_WATER));
        let producer = Producer(Arc::clone(&chunks));
        let (spent, spent_rx) = channel();
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("portwatch-decode".into())
            .spawn(move || decode_ahead(&source, &producer, &spent_rx, &stopping))?;
        Ok(Predecoder {
            chunks: Some(chunks),
            spent,
            current: None,
            at: 0,
            stop,
            thread: Some(thread),
        })
    }

    /// The decoding thread has ended (its queue is finished): joined, its panic carried on here.
    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl FrameSource for Predecoder {
    fn next_frame(&mut self) -> Option<Record<'_>> {
        self.next_decoded().map(|(rec, _)| rec)
    }

    fn upcoming(&self, n: usize) -> Option<&Peeked> {
        let cur = self.current.as_ref()?;
        cur.packets.get(self.at.checked_add(n)?)?.as_ref()
    }

    fn next_decoded(&mut self) -> Option<(Record<'_>, Option<Peeked>)> {
        loop {
            if let Some(cur) = &self.current {
                if self.at < cur.chunk.frames.len() {
                    break;
                }
            }
            if let Some(done) = self.current.take() {
                // The thread may have ended: the chunk is then freed here.
                let _ = self.spent.send(done);
            }
            let next = self.chunks.as_ref().and_then(|q| q.take());
            match next {
                Some(decoded) => {
                    self.current = Some(decoded);
                    self.at = 0;
                }
                None => {
                    self.chunks = None;
                    self.join();
                    return None;
                }
            }
        }
        let cur = self.current.as_mut()?;
        let at = self.at;
        self.at += 1;
        let f = *cur.chunk.frames.get(at)?;
        let packet = cur.packets.get_mut(at).and_then(Option::take);
        let data = cur.chunk.data.get(f.start..f.start + f.len).unwrap_or(&[]);
        Some((
            Record {
                ts: f.ts,
                linktype: f.linktype,
                data,
                orig_len: f.orig_len,
            },
            packet,
        ))
    }
}

impl Drop for Predecoder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Its next put fails once the queue is closed, and the thread ends.
        if let Some(chunks) = self.chunks.take() {
            chunks.close();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Spent chunks' packet vectors kept for reuse at most.
const SPARE: usize = DEPTH + 2;

fn decode_ahead<S: FrameSource + ?Sized>(
    source: &Mutex<S>,
    out: &Handoff<PeekedChunk>,
    spent: &Receiver<PeekedChunk>,
    stop: &AtomicBool,
) {
    let mut spare: Vec<Vec<Option<Peeked>>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let chunk = {
            let mut src = lock(source);
            for done in spent.try_iter() {
                src.recycle(done.chunk.data);
                if spare.len() < SPARE {
                    spare.push(done.packets);
                }
            }
            src.next_chunk(CHUNK_FRAMES)
        };
        let Some(chunk) = chunk else {
            return;
        };
        let mut packets = spare.pop().unwrap_or_default();
        packets.clear();
        packets.extend(chunk.records().map(|r| Peeked::of(r.linktype, r.data)));
        if !out.put(PeekedChunk { chunk, packets }) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Decoded, Decoder};

    /// Raw IPv4 frames (link type 101) from memory; `panic_at`: the frame whose reading panics.
    struct Frames {
        frames: Vec<Vec<u8>>,
        next: usize,
        panic_at: Option<usize>,
    }

    impl FrameSource for Frames {
        fn next_frame(&mut self) -> Option<Record<'_>> {
            assert_ne!(Some(self.next), self.panic_at, "a reading that fails");
            let data = self.frames.get(self.next)?;
            self.next += 1;
            Some(Record {
                ts: self.next as f64,
                linktype: 101,
                data,
                orig_len: data.len() as u32,
            })
        }
    }

    fn udp(sport: u16, frag: u16) -> Vec<u8> {
        let mut f = vec![0x45, 0, 0, 32, 0, 1];
        f.extend(frag.to_be_bytes());
        f.extend([64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend(sport.to_be_bytes());
        f.extend([0, 53, 0, 12, 0, 0]);
        f.extend(b"abcd");
        f
    }

    /// Mostly packets, every seventh a fragment and every eleventh not IP.
    fn frames(n: usize) -> Frames {
        let frames = (0..n)
            .map(|i| match i {
                _ if i % 11 == 0 => vec![0x00; 20],
                _ if i % 7 == 0 => udp(i as u16, 0x2000),
                _ => udp(i as u16, 0),
            })
            .collect();
        Frames {
            frames,
            next: 0,
            panic_at: None,
        }
    }

    fn start(source: Frames) -> (Predecoder, Arc<Mutex<Frames>>, Arc<AtomicBool>) {
        let source = Arc::new(Mutex::new(source));
        let stop = Arc::new(AtomicBool::new(false));
        let pre = Predecoder::start(Arc::clone(&source), Arc::clone(&stop)).unwrap();
        (pre, source, stop)
    }

    #[test]
    fn every_frame_comes_once_in_order_with_the_packet_the_decoder_finds() {
        let want = frames(3000).frames;
        let (mut pre, _, _) = start(frames(3000));
        let mut n = 0;
        while let Some((rec, packet)) = pre.next_decoded() {
            assert_eq!(rec.data, want[n]);
            assert_eq!(rec.ts, (n + 1) as f64);
            let mut dec = Decoder::new();
            match (dec.decode(rec.ts, 101, rec.data), packet) {
                (Decoded::Packet(p), Some(peeked)) => assert_eq!(peeked.packet(rec.data), p),
                // A fragment is held, not IP is not IP: the analysis decodes those itself.
                (Decoded::Held | Decoded::NotIp, None) => assert!(n % 7 == 0 || n % 11 == 0),
                (d, p) => panic!("frame {n}: decoded {d:?}, came with {p:?}"),
            }
            n += 1;
        }
        assert_eq!(n, 3000);
        assert!(pre.next_decoded().is_none(), "the end stays the end");
    }

    /// `upcoming(n)` names the packet that `next_decoded` gives n calls later, within the chunk
    /// at hand; none past its end, and none for a frame that comes without its packet.
    #[test]
    fn upcoming_names_a_later_frame_of_the_chunk_at_hand() {
        let (mut pre, _, _) = start(frames(3000));
        assert!(pre.upcoming(0).is_none(), "no chunk taken yet");
        let mut seen = Vec::new();
        let mut asked: Vec<(usize, Option<crate::flow::key::Key>)> = Vec::new();
        while let Some((_, packet)) = pre.next_decoded() {
            let n = seen.len();
            seen.push(packet.map(|p| p.key()));
            asked.push((n + 1 + 8, pre.upcoming(8).map(Peeked::key)));
        }
        let mut named = 0;
        for (at, key) in asked {
            if let Some(key) = key {
                assert_eq!(Some(&Some(key)), seen.get(at), "frame {at}");
                named += 1;
            }
        }
        // Only the last 8 frames of each chunk and the frames without a packet go unnamed.
        assert!(named > 3000 / 2, "{named}");
    }

    #[test]
    fn a_stop_ends_the_reading_and_every_frame_read_still_comes() {
        let total = MAX_AHEAD_FRAMES + 5 * CHUNK_FRAMES;
        let (mut pre, source, stop) = start(frames(total));
        assert!(pre.next_decoded().is_some());
        stop.store(true, Ordering::Relaxed);
        let mut n = 1;
        while pre.next_decoded().is_some() {
            n += 1;
        }
        let read = source.lock().unwrap().next;
        assert!(read < total, "the reading stopped: {read} frames read");
        assert_eq!(n, read);
    }

    #[test]
    fn a_panic_while_reading_comes_out_where_the_frames_are_taken() {
        let mut source = frames(1000);
        source.panic_at = Some(600);
        let (mut pre, _, _) = start(source);
        let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut n = 0;
            while pre.next_decoded().is_some() {
                n += 1;
            }
            n
        }));
        assert!(taken.is_err(), "the reading thread's panic is not lost");
    }

    #[test]
    fn dropped_early_the_thread_ends_and_lets_go_of_the_source() {
        let (mut pre, source, _) = start(frames(50_000));
        assert!(pre.next_decoded().is_some());
        drop(pre);
        assert_eq!(Arc::strong_count(&source), 1);
        assert!(source.lock().unwrap().next < 50_000);
    }
}
