//! Replay the Ethernet frames of a capture out of an interface at a chosen packet rate, for the
//! capture-rate benchmark: AF_PACKET SOCK_RAW, batches of frames per sendmmsg(2), qdisc bypassed.
//!
//!     udp_burst --iface IF --pcap FILE [--rate PPS] [--count N] [--batch 64] [--max-frames N]
//!
//! `--rate 0` (the default) sends as fast as it can. The capture's frames are loaded into memory
//! (at most --max-frames of them, Ethernet only) and sent round and round until N have gone.
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
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        iface: String::new(),
        pcap: String::new(),
        rate: 0.0,
        count: 1_000_000,
        batch: 64,
        max_frames: 1_000_000,
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

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let frames = load(&args.pcap, args.max_frames).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let fd = open(&args.iface).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args.iface);
        std::process::exit(1)
    });
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
        if args.rate > 0.0 {
            // Pace on the schedule, not on the last send: late batches catch up.
            let due = start + Duration::from_secs_f64((sent + errors) as f64 / args.rate);
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
