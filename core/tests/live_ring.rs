//! The TPACKET_V3 ring against a real kernel: two network namespaces joined by a veth pair, the
//! ring on one end, UDP sent from the other. Needs root and `ip netns`; skipped (with a printed
//! reason) otherwise.
#![cfg(target_os = "linux")]

use std::collections::HashSet;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use _core::source::live::{BpfInsn, LiveRing, RingOptions};

const RX_MAC: &str = "02:70:77:00:00:0a";
const TX_MAC: &str = "02:70:77:00:00:0b";
const RX_IP: &str = "10.231.0.1";
const TX_IP: &str = "10.231.0.2";
/// Marks the test's datagrams: 4 magic bytes, then a u32 sequence number.
const MAGIC: &[u8; 4] = b"PWLR";
const PAYLOAD: usize = 200;
const FRAME_LEN: usize = 14 + 20 + 8 + PAYLOAD;

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Two namespaces, `rx` and `tx`, joined by a veth (`rx_if` in rx, `tx_if` in tx), with fixed
/// MAC addresses and permanent neighbours (no ARP), IPv6 off (no router solicitations): the
/// only frames on the link are the ones a test sends. Deleted on drop, even after a failure.
struct Netns {
    rx: String,
    tx: String,
    rx_if: String,
}

impl Netns {
    fn new(tag: &str) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: not root");
            return None;
        }
        if ip(&["netns", "list"]).is_err() {
            println!("skipped: `ip netns` is not available");
            return None;
        }
        let id = std::process::id() % 100_000;
        let ns = Netns {
            rx: format!("pwlr-{id}-{tag}-rx"),
            tx: format!("pwlr-{id}-{tag}-tx"),
            rx_if: format!("r{id}{tag}"),
        };
        let tx_if = format!("t{id}{tag}");
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &ns.rx])?;
            ip(&["netns", "add", &ns.tx])?;
            for n in [&ns.rx, &ns.tx] {
                let out = Command::new("ip")
                    .args(["netns", "exec", n, "sysctl", "-qw"])
                    .args([
                        "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1",
                    ])
                    .output()
                    .map_err(|e| format!("sysctl: {e}"))?;
                if !out.status.success() {
                    return Err("sysctl disable_ipv6 failed".into());
                }
            }
            ip(&[
                "link", "add", &ns.rx_if, "netns", &ns.rx, "address", RX_MAC, "type", "veth",
                "peer", "name", &tx_if, "netns", &ns.tx, "address", TX_MAC,
            ])?;
            for (n, dev, me, peer, peer_mac) in [
                (&ns.rx, &ns.rx_if, RX_IP, TX_IP, TX_MAC),
                (&ns.tx, &tx_if, TX_IP, RX_IP, RX_MAC),
            ] {
                ip(&["-n", n, "addr", "add", &format!("{me}/24"), "dev", dev])?;
                ip(&["-n", n, "link", "set", dev, "mtu", "9000", "up"])?;
                ip(&[
                    "-n",
                    n,
                    "neigh",
                    "replace",
                    peer,
                    "lladdr",
                    peer_mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ])?;
            }
            Ok(())
        };
        if let Err(e) = setup() {
            // `ns` drops here and deletes whatever was made.
            panic!("namespace setup failed: {e}");
        }
        Some(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth pair with it.
        let _ = ip(&["netns", "del", &self.rx]);
        let _ = ip(&["netns", "del", &self.tx]);
    }
}

/// Run `f` on a thread that has entered network namespace `ns` (setns changes only the calling
/// thread's namespace; sockets made there stay in it wherever they are used afterwards).
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns file");
            // SAFETY: a valid namespace descriptor, held open across the call; only this
            // thread changes namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("thread in namespace")
    })
}

/// Sockets bound on the receiving side so that the kernel does not answer with ICMP
/// port-unreachable (which the ring would see too).
fn sinks(ns: &Netns, ports: &[u16]) -> Vec<UdpSocket> {
    in_netns(&ns.rx, || {
        ports
            .iter()
            .map(|p| UdpSocket::bind((RX_IP, *p)).expect("bind sink"))
            .collect()
    })
}

/// Send datagrams from the tx namespace: `(flow, dst port, seq)`; flow picks the source socket.
fn send(ns: &Netns, flows: usize, packets: &[(usize, u16, u32)]) {
    send_sized(ns, flows, packets, PAYLOAD)
}

fn send_sized(ns: &Netns, flows: usize, packets: &[(usize, u16, u32)], payload: usize) {
    in_netns(&ns.tx, || {
        let socks: Vec<UdpSocket> = (0..flows)
            .map(|_| UdpSocket::bind((TX_IP, 0)).expect("bind sender"))
            .collect();
        let mut buf = vec![0u8; payload];
        buf[..4].copy_from_slice(MAGIC);
        for &(flow, port, seq) in packets {
            buf[4..8].copy_from_slice(&seq.to_be_bytes());
            socks[flow % flows]
                .send_to(&buf, (RX_IP, port))
                .expect("send");
        }
    });
}

/// The sequence number of one of the test's frames (IPv4, UDP, our magic), with its length.
fn test_seq(frame: &[u8]) -> Option<(u32, usize, u16)> {
    if frame.get(12..14)? != [0x08, 0x00] || *frame.get(23)? != 17 {
        return None;
    }
    let dport = u16::from_be_bytes(frame.get(36..38)?.try_into().ok()?);
    let payload = frame.get(42..)?;
    if payload.get(..4)? != MAGIC {
        return None;
    }
    let seq = u32::from_be_bytes(payload.get(4..8)?.try_into().ok()?);
    Some((seq, frame.len(), dport))
}

/// Read a ring until `want` test frames came, then until it stays quiet for longer than a
/// block timeout (so that the kernel's counters and ours cover the same frames).
fn drain(ring: &mut LiveRing, want: usize, seen: &mut Vec<(u32, usize, u16)>, others: &mut u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        match ring.next_block(Duration::from_millis(50)) {
            Some(block) => {
                quiet_since = None;
                for rec in block.frames() {
                    assert_eq!(rec.linktype, 1);
                    assert!(rec.ts > 1.6e9, "kernel timestamp");
                    match test_seq(rec.data) {
                        Some(s) => seen.push(s),
                        None => *others += 1,
                    }
                }
            }
            None => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if seen.len() >= want && since.elapsed() > Duration::from_millis(300) {
                    return;
                }
            }
        }
    }
}

fn small_ring() -> RingOptions {
    RingOptions {
        block_size: 1 << 16,
        block_count: 64,
        block_timeout_ms: 20,
        ..RingOptions::default()
    }
}

#[test]
fn ring_receives_a_burst_and_stats_add_up() {
    let Some(ns) = Netns::new("a") else { return };
    let _sinks = sinks(&ns, &[7000]);
    let mut ring =
        in_netns(&ns.rx, || LiveRing::open(&ns.rx_if, &small_ring())).expect("open ring");
    const N: u32 = 3000;
    let packets: Vec<_> = (0..N).map(|i| (0, 7000, i)).collect();
    send(&ns, 1, &packets);
    let (mut seen, mut others) = (Vec::new(), 0);
    drain(&mut ring, N as usize, &mut seen, &mut others);
    let stats = ring.stats();
    println!("{stats:?}, other frames {others}");
    let seqs: Vec<u32> = seen.iter().map(|s| s.0).collect();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "every datagram, in order");
    assert!(seen.iter().all(|s| s.1 == FRAME_LEN && s.2 == 7000));
    assert_eq!(stats.received, u64::from(N) + others);
    assert_eq!(stats.received + stats.drops, stats.packets);
    assert_eq!((stats.drops, stats.truncated, stats.bad_blocks), (0, 0, 0));
}

/// A ring far too small for the burst: the kernel drops, and the counters still add up.
#[test]
fn overflow_is_counted_as_drops() {
    let Some(ns) = Netns::new("o") else { return };
    let _sinks = sinks(&ns, &[7000]);
    let opts = RingOptions {
        block_size: 1 << 12,
        block_count: 2,
        block_timeout_ms: 1000,
        ..RingOptions::default()
    };
    let mut ring = in_netns(&ns.rx, || LiveRing::open(&ns.rx_if, &opts)).expect("open ring");
    const N: u32 = 500;
    let packets: Vec<_> = (0..N).map(|i| (0, 7000, i)).collect();
    send(&ns, 1, &packets);
    let (mut seen, mut others) = (Vec::new(), 0);
    drain(&mut ring, 0, &mut seen, &mut others);
    let stats = ring.stats();
    println!("{stats:?}");
    assert!(stats.drops > 0);
    assert_eq!(stats.packets, u64::from(N));
    assert_eq!(stats.received + stats.drops, stats.packets);
    assert_eq!(stats.received, seen.len() as u64);
}

/// `udp dst port <port>` for Ethernet and IPv4 (what `tcpdump -dd` makes of it, minus IPv6).
fn udp_dst_port(port: u16) -> Vec<BpfInsn> {
    vec![
        (0x28, 0, 0, 12),              // ldh [12]
        (0x15, 0, 6, 0x0800),          // jeq IPv4, else drop
        (0x30, 0, 0, 23),              // ldb [23]
        (0x15, 0, 4, 17),              // jeq UDP, else drop
        (0xb1, 0, 0, 14),              // ldxb 4*([14]&0xf)
        (0x48, 0, 0, 16),              // ldh [x + 16]
        (0x15, 0, 1, u32::from(port)), // jeq port, else drop
        (0x06, 0, 0, 0x40000),         // accept
        (0x06, 0, 0, 0),               // drop
    ]
}

#[test]
fn bpf_filter_drops_in_the_kernel() {
    let Some(ns) = Netns::new("f") else { return };
    let _sinks = sinks(&ns, &[7000, 7001]);
    let opts = RingOptions {
        filter: Some(udp_dst_port(7001)),
        ..small_ring()
    };
    let mut ring = in_netns(&ns.rx, || LiveRing::open(&ns.rx_if, &opts)).expect("open ring");
    const N: u32 = 1000;
    let packets: Vec<_> = (0..N).map(|i| (0, 7000 + (i % 2) as u16, i)).collect();
    send(&ns, 1, &packets);
    let (mut seen, mut others) = (Vec::new(), 0);
    drain(&mut ring, N as usize / 2, &mut seen, &mut others);
    let stats = ring.stats();
    println!("{stats:?}");
    assert_eq!(others, 0);
    assert_eq!(seen.len(), N as usize / 2);
    assert!(seen.iter().all(|s| s.2 == 7001 && s.0 % 2 == 1));
    // The kernel counts only what passed the filter.
    assert_eq!(stats.packets, u64::from(N / 2));
}

#[test]
fn fanout_splits_flows_between_rings_without_duplicates() {
    let Some(ns) = Netns::new("h") else { return };
    let _sinks = sinks(&ns, &[7000]);
    let group = (std::process::id() % 60_000) as u16 + 1;
    let opts = RingOptions {
        fanout: Some(group),
        ..small_ring()
    };
    let mut rings = in_netns(&ns.rx, || {
        [
            LiveRing::open(&ns.rx_if, &opts),
            LiveRing::open(&ns.rx_if, &opts),
        ]
    })
    .map(|r| r.expect("open ring"));
    const FLOWS: usize = 16;
    const N: u32 = 1600;
    let packets: Vec<_> = (0..N).map(|i| (i as usize % FLOWS, 7000, i)).collect();
    send(&ns, FLOWS, &packets);
    let mut per_ring = Vec::new();
    for ring in &mut rings {
        let (mut seen, mut others) = (Vec::new(), 0);
        drain(ring, 0, &mut seen, &mut others);
        let stats = ring.stats();
        println!("{stats:?}");
        assert_eq!(stats.received + stats.drops, stats.packets);
        per_ring.push(seen.iter().map(|s| s.0).collect::<Vec<u32>>());
    }
    let (a, b) = (&per_ring[0], &per_ring[1]);
    println!("ring 0: {} frames, ring 1: {} frames", a.len(), b.len());
    assert!(!a.is_empty() && !b.is_empty(), "both rings got a share");
    let sa: HashSet<u32> = a.iter().copied().collect();
    let sb: HashSet<u32> = b.iter().copied().collect();
    assert_eq!(sa.len(), a.len());
    assert_eq!(sb.len(), b.len());
    assert!(sa.is_disjoint(&sb), "no frame on both rings");
    assert_eq!(sa.len() + sb.len(), N as usize, "every frame on one ring");
    // One flow, one ring: the sequence numbers of a flow are i ≡ flow (mod FLOWS).
    for flow in 0..FLOWS as u32 {
        let on_a = sa.iter().any(|s| s % FLOWS as u32 == flow);
        let on_b = sb.iter().any(|s| s % FLOWS as u32 == flow);
        assert!(on_a != on_b, "flow {flow} split between rings");
    }
}

/// A frame longer than a block is cut to fit: delivered short, counted as truncated, and its
/// wire length still told.
#[test]
fn frames_longer_than_a_block_are_truncated_and_counted() {
    let Some(ns) = Netns::new("t") else { return };
    let _sinks = sinks(&ns, &[7000]);
    let opts = RingOptions {
        block_size: 4096,
        block_count: 16,
        block_timeout_ms: 10,
        ..RingOptions::default()
    };
    let mut ring = in_netns(&ns.rx, || LiveRing::open(&ns.rx_if, &opts)).expect("open ring");
    const N: u32 = 10;
    const BIG: usize = 6000;
    let packets: Vec<_> = (0..N).map(|i| (0, 7000, i)).collect();
    send_sized(&ns, 1, &packets, BIG);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut lens = Vec::new();
    while lens.len() < N as usize && Instant::now() < deadline {
        if let Some(block) = ring.next_block(Duration::from_millis(50)) {
            for (rec, wire) in block.frames_with_len() {
                lens.push((rec.data.len(), wire));
            }
        }
    }
    let stats = ring.stats();
    println!("{stats:?} {lens:?}");
    assert_eq!(lens.len(), N as usize);
    assert!(lens
        .iter()
        .all(|&(cap, wire)| cap < 4096 && wire as usize == 14 + 20 + 8 + BIG));
    assert_eq!(stats.truncated, u64::from(N));
}
