//! Replay the Ethernet frames of a capture out of an interface at a chosen packet rate, for the
//! capture-rate benchmark: AF_PACKET SOCK_RAW, qdisc bypassed, frames handed to the kernel either
//! in batches per sendmmsg(2) or through a PACKET_TX_RING (TPACKET_V2, `--tx-ring`).
//!
//!     udp_burst --iface IF --pcap FILE [--rate PPS] [--count N] [--batch 64] [--max-frames N]
//!               [--tx-ring 1] [--ring-frames 4096] [--cpu N]
//!
//! `--rate 0` (the default) sends as fast as it can. The capture's frames are loaded into memory
//! (at most --max-frames of them, Ethernet only) and sent round and round until N have gone.
//!
//! Why a TX ring: with sendmmsg each frame still costs a message header and an iovec to import
//! and a copy from user space into a fresh skb; with the ring the frames are written once into
//! memory shared with the kernel and one `send` call hands over a whole batch (the kernel maps the
//! ring's pages into the skbs). On a veth the receive side (the monitor's rings) runs in the
//! sender's context, so every cycle saved here is one the receive path can use. `--cpu N` pins
//! the sender to one CPU, so the scheduler does not move it onto the monitor's threads.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use _core::source::CaptureReader;

struct Args {
    iface: String,
    pcap: String,
    rate: f64,
    count: u64,
    batch: usize,
    max_frames: usize,
    tx_ring: bool,
    ring_frames: usize,
    cpu: Option<usize>,
}

/// Bounds of the TX ring: frames in it, and the largest frame slot (a jumbo frame and its header).
const MAX_RING_FRAMES: usize = 1 << 16;
const MAX_SLOT: usize = 16 << 10;
/// Where the frame starts in a TPACKET_V2 slot: TPACKET2_HDRLEN - sizeof(struct sockaddr_ll),
/// i.e. the 32-byte header aligned to TPACKET_ALIGNMENT (16).
const V2_DATA: usize = 32;
const _: () = {
    assert!(std::mem::size_of::<libc::tpacket2_hdr>() == V2_DATA);
    assert!(std::mem::offset_of!(libc::tpacket2_hdr, tp_status) == 0);
    assert!(std::mem::offset_of!(libc::tpacket2_hdr, tp_len) == 4);
};

fn parse() -> Result<Args, String> {
    let mut a = Args {
        iface: String::new(),
        pcap: String::new(),
        rate: 0.0,
        count: 1_000_000,
        batch: 64,
        max_frames: 1_000_000,
        tx_ring: false,
        ring_frames: 4096,
        cpu: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--iface" => a.iface = v,
            "--pcap" => a.pcap = v,
            "--rate" => a.rate = num(&v)?,
            "--count" => a.count = num(&v)? as u64,
            "--batch" => a.batch = (num(&v)? as usize).clamp(1, 1024),
            "--max-frames" => a.max_frames = num(&v)? as usize,
            "--tx-ring" => a.tx_ring = num(&v)? != 0.0,
            "--ring-frames" => a.ring_frames = (num(&v)? as usize).clamp(16, MAX_RING_FRAMES),
            "--cpu" => a.cpu = Some(num(&v)? as usize),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.iface.is_empty() || a.pcap.is_empty() {
        return Err("usage: udp_burst --iface IF --pcap FILE [--rate PPS] [--count N]".into());
    }
    Ok(a)
}

fn load(path: &str, max: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut src = CaptureReader::open(path).map_err(|e| e.to_string())?;
    let mut frames = Vec::new();
    while let Some(rec) = src.next_record() {
        if rec.linktype == 1 && rec.data.len() >= 14 {
            frames.push(rec.data.to_vec());
            if frames.len() >= max {
                break;
            }
        }
    }
    if frames.is_empty() {
        return Err(format!("{path}: no Ethernet frames"));
    }
    Ok(frames)
}

fn open(iface: &str) -> io::Result<OwnedFd> {
    let name = std::ffi::CString::new(iface)?;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(io::Error::other(format!("{iface}: no such interface")));
    }
    // SAFETY: plain system call; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    // SAFETY: `one` is a live c_int and the length is its size. Failure only costs speed.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    // Protocol 0: the socket sends on `ifindex` and receives nothing.
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is live and the length passed is its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Wait until `done` frames are due at `rate` frames/s from `start` (no wait at rate 0). Paced on
/// the schedule, not on the last send: late batches catch up.
fn pace(start: Instant, done: u64, rate: f64) {
    if rate <= 0.0 {
        return;
    }
    let due = start + Duration::from_secs_f64(done as f64 / rate);
    let now = Instant::now();
    if due > now {
        let wait = due - now;
        if wait > Duration::from_micros(200) {
            std::thread::sleep(wait - Duration::from_micros(100));
        }
        while Instant::now() < due {
            std::hint::spin_loop();
        }
    }
}

fn pin(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain old data; CPU_SET writes within it (cpu is bounded by its size).
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

struct Outcome {
    sent: u64,
    errors: u64,
    last_err: Option<io::Error>,
}

/// sendmmsg(2), `batch` frames a call.
fn send_mmsg(args: &Args, frames: &[Vec<u8>], fd: &OwnedFd) -> Outcome {
    let mut iovs: Vec<libc::iovec> = vec![
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0
        };
        args.batch
    ];
    // SAFETY: mmsghdr is plain old data; all-zero (no name, no control) is valid.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; args.batch];
    let start = Instant::now();
    let (mut sent, mut errors, mut next) = (0u64, 0u64, 0usize);
    let mut last_err: Option<io::Error> = None;
    while sent + errors < args.count {
        pace(start, sent + errors, args.rate);
        let n = (args.count - sent - errors).min(args.batch as u64) as usize;
        for i in 0..n {
            let frame = &frames[next];
            next = (next + 1) % frames.len();
            iovs[i].iov_base = frame.as_ptr() as *mut libc::c_void;
            iovs[i].iov_len = frame.len();
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_len = 0;
        }
        // SAFETY: `msgs[..n]` are initialised headers, each pointing at one live iovec over a
        // frame in `frames`; all outlive the call, and the kernel only reads them.
        let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted || err.raw_os_error() == Some(libc::ENOBUFS)
            {
                continue;
            }
            // The first frame of the batch was refused (too long for the MTU...): skip it.
            errors += 1;
            last_err = Some(err);
        } else {
            sent += rc as u64;
            if (rc as usize) < n {
                // The frame after the last sent one failed: count it and move on.
                errors += 1;
            }
        }
    }
    Outcome {
        sent,
        errors,
        last_err,
    }
}

/// A PACKET_TX_RING (TPACKET_V2) mapped into this process.
struct TxRing {
    base: *mut u8,
    len: usize,
    slot: usize,
    slots: usize,
}

impl Drop for TxRing {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `TxRing::new`, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

impl TxRing {
    fn new(fd: &OwnedFd, largest: usize, slots: usize) -> io::Result<TxRing> {
        let slot = (V2_DATA + largest).next_power_of_two().max(2048);
        if slot > MAX_SLOT {
            return Err(io::Error::other(format!(
                "a frame of {largest} bytes does not fit a ring slot"
            )));
        }
        let page = 4096usize;
        let block = slot.max(page);
        let per_block = block / slot;
        let blocks = slots.div_ceil(per_block);
        let set = |opt: libc::c_int, val: *const libc::c_void, len: usize| -> io::Result<()> {
            // SAFETY: `val` points at a live value of `len` bytes for the duration of the call.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    opt,
                    val,
                    len as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        set(
            libc::PACKET_VERSION,
            (&version as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        )?;
        // A malformed frame is marked TP_STATUS_WRONG_FORMAT and skipped, not the end of the send.
        let one: libc::c_int = 1;
        set(
            libc::PACKET_LOSS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        )?;
        let req = libc::tpacket_req {
            tp_block_size: block as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: slot as u32,
            tp_frame_nr: (blocks * per_block) as u32,
        };
        set(
            libc::PACKET_TX_RING,
            (&req as *const libc::tpacket_req).cast(),
            std::mem::size_of::<libc::tpacket_req>(),
        )?;
        let len = block * blocks;
        // SAFETY: maps the ring just configured on `fd`; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(TxRing {
            base: base.cast(),
            len,
            slot,
            slots: blocks * per_block,
        })
    }

    /// The status word of slot `i` (shared with the kernel, hence atomic).
    fn status(&self, i: usize) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: slot `i` lies in the mapping (i < slots), its header starts with the u32
        // tp_status, slot-aligned (so 4-byte aligned), and lives as long as `self`.
        unsafe { &*(self.base.add(i * self.slot) as *const std::sync::atomic::AtomicU32) }
    }

    /// Write `frame` into slot `i` (owned by user space: status AVAILABLE or WRONG_FORMAT) and
    /// hand it to the kernel.
    fn fill(&self, i: usize, frame: &[u8]) {
        use std::sync::atomic::Ordering;
        // SAFETY: slot `i` is ours until its status says SEND_REQUEST; the frame fits it
        // (checked in `new`), tp_len is the u32 at offset 4 of the header.
        unsafe {
            let hdr = self.base.add(i * self.slot);
            std::ptr::copy_nonoverlapping(frame.as_ptr(), hdr.add(V2_DATA), frame.len());
            (hdr.add(4) as *mut u32).write_volatile(frame.len() as u32);
        }
        // Release: the frame and its length are visible before the kernel sees the request.
        self.status(i)
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
    }
}

/// PACKET_TX_RING: frames are copied into the shared ring, one `send` a batch hands them over.
fn send_ring(args: &Args, frames: &[Vec<u8>], fd: &OwnedFd) -> Outcome {
    use std::sync::atomic::Ordering;
    let largest = frames.iter().map(Vec::len).max().unwrap_or(0);
    let ring = match TxRing::new(fd, largest, args.ring_frames) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: PACKET_TX_RING: {e}", args.iface);
            std::process::exit(1)
        }
    };
    // Hand the marked frames to the kernel; Some(error) only for a real failure: a full ring
    // or queue (EAGAIN, ENOBUFS) or a signal is a reason to wait and try again.
    let flush = || -> Option<io::Error> {
        // SAFETY: no buffer: the kernel sends the ring's frames marked SEND_REQUEST.
        if unsafe { libc::send(fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT) } >= 0 {
            return None;
        }
        let err = io::Error::last_os_error();
        let transient = matches!(
            err.raw_os_error(),
            Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR)
        );
        (!transient).then_some(err)
    };
    let start = Instant::now();
    let (mut queued, mut errors, mut next, mut slot) = (0u64, 0u64, 0usize, 0usize);
    let mut last_err: Option<io::Error> = None;
    while queued < args.count {
        pace(start, queued, args.rate);
        let n = (args.count - queued).min(args.batch as u64);
        for _ in 0..n {
            // Wait for the slot to come back (the kernel frees it when its skb is consumed).
            loop {
                let st = ring.status(slot).load(Ordering::Acquire);
                if st == libc::TP_STATUS_AVAILABLE {
                    break;
                }
                if st & libc::TP_STATUS_WRONG_FORMAT != 0 {
                    errors += 1;
                    break;
                }
                if let Some(err) = flush() {
                    last_err = Some(err);
                }
                std::thread::yield_now();
            }
            ring.fill(slot, &frames[next]);
            next = (next + 1) % frames.len();
            slot = (slot + 1) % ring.slots;
            queued += 1;
        }
        if let Some(err) = flush() {
            last_err = Some(err);
        }
    }
    // Drain: every slot back with user space, counting those the kernel refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..ring.slots {
        loop {
            let st = ring.status(i).load(Ordering::Acquire);
            if st == libc::TP_STATUS_AVAILABLE || Instant::now() > deadline {
                break;
            }
            if st & libc::TP_STATUS_WRONG_FORMAT != 0 {
                errors += 1;
                ring.status(i)
                    .store(libc::TP_STATUS_AVAILABLE, Ordering::Release);
                break;
            }
            flush();
            std::thread::yield_now();
        }
    }
    Outcome {
        sent: queued - errors,
        errors,
        last_err,
    }
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    if let Some(cpu) = args.cpu {
        if let Err(e) = pin(cpu) {
            eprintln!("--cpu {cpu}: {e}");
            std::process::exit(2)
        }
    }
    let frames = load(&args.pcap, args.max_frames).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let fd = open(&args.iface).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args.iface);
        std::process::exit(1)
    });
    let start = Instant::now();
    let Outcome {
        sent,
        errors,
        last_err,
    } = if args.tx_ring {
        send_ring(&args, &frames, &fd)
    } else {
        send_mmsg(&args, &frames, &fd)
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} frames, {errors} refused, in {secs:.3} s: {:.0} frames/s (asked {})",
        sent as f64 / secs,
        args.rate
    );
    if let Some(e) = last_err {
        println!("last error: {e}");
    }
}
