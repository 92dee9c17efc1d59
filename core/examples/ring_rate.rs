//! Capture rate of the TPACKET_V3 ring: N threads, one ring each in one fanout group on an
//! interface, count frames and bytes for a fixed time, then print received and dropped.
//!
//!     ring_rate --iface IF [--threads 1] [--seconds 5] [--block-size 1048576] [--blocks 64]
//!               [--timeout-ms 50] [--group 4242] [--touch]
//!
//! `--touch` reads every byte of every frame (a checksum), as a decoder would; without it only
//! the frame headers are read. The clock starts at the first frame, so the sender may start late.
//!
//! The benchmark (veth between two namespaces; examples/udp_burst.rs replays a capture):
//!
//!     ip netns add prx; ip netns add ptx
//!     ip link add vrx netns prx type veth peer name vtx netns ptx
//!     ip -n prx link set vrx mtu 9000 up; ip -n ptx link set vtx mtu 9000 up
//!     ip netns exec prx target/release/examples/ring_rate --iface vrx --threads 2 --seconds 8 &
//!     ip netns exec ptx target/release/examples/udp_burst --iface vtx --pcap mixed.pcap \
//!         --rate 300000 --count 1200000
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use _core::source::live::{LiveRing, RingOptions};

struct Args {
    iface: String,
    threads: usize,
    seconds: f64,
    opts: RingOptions,
    touch: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        iface: String::new(),
        threads: 1,
        seconds: 5.0,
        opts: RingOptions::default(),
        touch: false,
    };
    let mut group = 4242u16;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--touch" {
            a.touch = true;
            continue;
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--iface" => a.iface = v,
            "--threads" => a.threads = num(&v)? as usize,
            "--seconds" => a.seconds = num(&v)?,
            "--block-size" => a.opts.block_size = num(&v)? as usize,
            "--blocks" => a.opts.block_count = num(&v)? as usize,
            "--timeout-ms" => a.opts.block_timeout_ms = num(&v)? as u32,
            "--group" => group = num(&v)? as u16,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.iface.is_empty() || a.threads == 0 {
        return Err("usage: ring_rate --iface IF [--threads N] [--seconds S] ...".into());
    }
    if a.threads > 1 {
        a.opts.fanout = Some(group);
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // Open every ring before any thread starts, so no frame goes to a group of one.
    let rings: Vec<LiveRing> = (0..args.threads)
        .map(|_| LiveRing::open(&args.iface, &args.opts))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1);
        });
    let started = Arc::new(AtomicBool::new(false));
    let start_at = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    let run = Duration::from_secs_f64(args.seconds);
    let handles: Vec<_> = rings
        .into_iter()
        .map(|mut ring| {
            let (started, start_at, touch) = (started.clone(), start_at.clone(), args.touch);
            std::thread::spawn(move || {
                let (mut frames, mut bytes, mut sum) = (0u64, 0u64, 0u64);
                let idle_limit = epoch + Duration::from_secs(30);
                loop {
                    let now = Instant::now();
                    if started.load(Ordering::Relaxed) {
                        let t0 = epoch + Duration::from_nanos(start_at.load(Ordering::Relaxed));
                        if now >= t0 + run {
                            break;
                        }
                    } else if now > idle_limit {
                        break;
                    }
                    let Some(block) = ring.next_block(Duration::from_millis(20)) else {
                        continue;
                    };
                    if !started.swap(true, Ordering::Relaxed) {
                        start_at.store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    }
                    for rec in block.frames() {
                        frames += 1;
                        bytes += rec.data.len() as u64;
                        if touch {
                            sum = rec
                                .data
                                .iter()
                                .fold(sum, |s, &b| s.wrapping_add(u64::from(b)));
                        }
                    }
                }
                (frames, bytes, sum, ring.stats())
            })
        })
        .collect();
    let mut total = (0u64, 0u64, 0u64, 0u64);
    for (i, h) in handles.into_iter().enumerate() {
        let (frames, bytes, sum, st) = h.join().expect("capture thread");
        println!(
            "thread {i}: frames {frames} bytes {bytes} kernel packets {} drops {} freeze {} truncated {} (sum {sum})",
            st.packets, st.drops, st.freeze_q_cnt, st.truncated
        );
        total.0 += frames;
        total.1 += bytes;
        total.2 += st.packets;
        total.3 += st.drops;
    }
    let secs = args.seconds;
    // SAFETY: all-zero is a valid rusage, and it is live for the call that fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live rusage the kernel writes.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let (user, sys) = (cpu(ru.ru_utime), cpu(ru.ru_stime));
    println!(
        "cpu: user {user:.3} s sys {sys:.3} s: {:.0} frames per cpu-second",
        total.0 as f64 / (user + sys).max(1e-6)
    );
    println!(
        "total: received {} drops {} kernel packets {} | {:.0} frames/s {:.1} Mbit/s over {secs} s",
        total.0,
        total.3,
        total.2,
        total.0 as f64 / secs,
        total.1 as f64 * 8.0 / secs / 1e6
    );
}
