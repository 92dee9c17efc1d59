//! `--workers N`: the same traffic through one analyzer and through 1, 2 and 3 worker threads
//! gives the same records in the same order (flow_id included).
use std::sync::Arc;

use _core::detect::builtin::BUILTIN;
use _core::detect::engine::Engine;
use _core::detect::signature::load_texts_and;
use _core::parallel::{FrameSource, ParallelAnalyzer, BATCH, DEPTH};
use _core::pipeline::{Analyzer, Config, KnownPorts};
use _core::record::FlowRecord;
use _core::source::Record;

const TCP: u8 = 6;
const UDP: u8 = 17;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

type End = ([u8; 4], u16);

fn frame(proto: u8, src: End, dst: End, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let l4 = if proto == TCP { 20 } else { 8 };
    let total = (20 + l4 + payload.len()) as u16;
    let mut f = vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6, 0x08, 0x00, 0x45, 0];
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    if proto == TCP {
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    f
}

/// A small deterministic generator (no dependency for a test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A conversation still to be played: its packets, in order.
struct Script {
    packets: Vec<(bool, u8, Vec<u8>)>,
    proto: u8,
    client: End,
    server: End,
    seq: [u32; 2],
    /// The GTP-U tunnel (one of `TUNNELS`) the conversation is carried in, if any: the
    /// tunnel's flow and the inner flows are reported apart, and must be alike in every shard.
    tunnel: Option<usize>,
}

const TUNNELS: [(End, End); 3] = [
    (([192, 0, 2, 1], 2152), ([198, 51, 100, 1], 2152)),
    (([192, 0, 2, 2], 2152), ([198, 51, 100, 1], 2152)),
    (([192, 0, 2, 3], 40001), ([198, 51, 100, 2], 2152)),
];

/// `inner` (an Ethernet frame) carried as a G-PDU from `src` to `dst`.
fn gtpu(src: End, dst: End, inner: &[u8]) -> Vec<u8> {
    let ip = &inner[14..];
    let mut g = vec![0x30, 0xFF];
    g.extend_from_slice(&(ip.len() as u16).to_be_bytes());
    g.extend_from_slice(&[0, 0, 0, 7]);
    g.extend_from_slice(ip);
    frame(UDP, src, dst, 0, 0, &g)
}

const REQUESTS: &[(u16, &[u8], &[u8])] = &[
    (
        80,
        b"GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ),
    (22, b"SSH-2.0-OpenSSH_9.6\r\n", b"SSH-2.0-OpenSSH_9.3\r\n"),
    (6379, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
    (
        8080,
        b"\x00\x01\x02\x03\x04\x05\x06\x07binary junk",
        b"\x10\x11\x12",
    ),
];

fn script(rng: &mut Lcg, n: u32) -> Script {
    let client = ([10, 1, (n >> 8) as u8, n as u8], 20000 + (n % 40000) as u16);
    let kind = rng.below(10);
    if kind < 3 {
        // UDP: DNS-like one-shot, or a few datagrams one way.
        let server = (
            [10, 9, 0, (rng.below(4) + 1) as u8],
            if kind == 0 {
                53
            } else {
                5000 + rng.below(3) as u16
            },
        );
        let mut packets = vec![(true, 0, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03org\x00\x00\x01\x00\x01".to_vec())];
        if kind == 0 {
            packets.push((false, 0, b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03org\x00\x00\x01\x00\x01".to_vec()));
        } else {
            for _ in 0..rng.below(4) {
                packets.push((
                    true,
                    0,
                    vec![rng.below(256) as u8; 1 + rng.below(40) as usize],
                ));
            }
        }
        return Script {
            packets,
            proto: UDP,
            client,
            server,
            seq: [0, 0],
            tunnel: None,
        };
    }
    let (port, req, resp) = REQUESTS[rng.below(REQUESTS.len() as u64) as usize];
    let server = ([10, 9, 1, (rng.below(8) + 1) as u8], port);
    let mut packets = vec![(true, SYN, vec![])];
    if kind == 3 {
        packets.push((false, RST | ACK, vec![])); // refused
    } else {
        packets.push((false, SYN | ACK, vec![]));
        packets.push((true, ACK, vec![]));
        packets.push((true, PSH | ACK, req.to_vec()));
        packets.push((false, PSH | ACK, resp.to_vec()));
        for _ in 0..rng.below(5) {
            packets.push((
                rng.below(2) == 0,
                PSH | ACK,
                vec![b'x'; 1 + rng.below(300) as usize],
            ));
        }
        match rng.below(5) {
            0 => packets.push((true, RST, vec![])),
            1 => {} // left open: idle expiry or the drain
            2 => {
                // RST, then data anyway (not honoured), then a FIN exchange.
                packets.push((false, RST, vec![]));
                packets.push((true, PSH | ACK, b"more".to_vec()));
                packets.push((true, FIN | ACK, vec![]));
                packets.push((false, FIN | ACK, vec![]));
            }
            _ => {
                packets.push((true, FIN | ACK, vec![]));
                packets.push((false, FIN | ACK, vec![]));
                packets.push((true, ACK, vec![])); // the last ACK, in the linger
            }
        }
    }
    Script {
        packets,
        proto: TCP,
        client,
        server,
        seq: [rng.next() as u32, rng.next() as u32],
        tunnel: None,
    }
}

/// Many interleaved conversations, with idle gaps that cross sweeps, expire flows and outlast
/// the linger, 5-tuples reused after a close, and frames that are not IP.
fn traffic(count: usize) -> Vec<(f64, Vec<u8>)> {
    let mut rng = Lcg(7);
    let mut live: Vec<Script> = Vec::new();
    let mut out = Vec::new();
    let mut ts = 1_700_000_000.0f64;
    let mut n = 0u32;
    while out.len() < count {
        if live.len() < 40 && rng.below(3) == 0 {
            // Reuse of a few client endpoints: a new SYN on a closed or lingering 5-tuple.
            n += 1;
            let k = if rng.below(10) == 0 { n % 7 } else { n };
            let mut s = script(&mut rng, k);
            if rng.below(4) == 0 {
                s.tunnel = Some(rng.below(TUNNELS.len() as u64) as usize);
            }
            live.push(s);
        }
        ts += match rng.below(200) {
            0 => 70.0,    // past the UDP idle time
            1 => 2.5,     // past the linger
            2..=9 => 0.6, // across a sweep boundary now and then
            _ => 0.001 * rng.below(20) as f64,
        };
        if rng.below(50) == 0 {
            out.push((
                ts,
                vec![0xff; 6]
                    .into_iter()
                    .chain([0, 1, 2, 3, 4, 5, 0x08, 0x06])
                    .chain([0; 28])
                    .collect(),
            ));
            continue;
        }
        if live.is_empty() {
            continue;
        }
        let i = rng.below(live.len() as u64) as usize;
        let s = &mut live[i];
        let (from_client, flags, payload) = s.packets.remove(0);
        let d = usize::from(!from_client);
        let (src, dst) = if from_client {
            (s.client, s.server)
        } else {
            (s.server, s.client)
        };
        let inner = frame(s.proto, src, dst, flags, s.seq[d], &payload);
        out.push((
            ts,
            match s.tunnel {
                Some(t) if from_client => gtpu(TUNNELS[t].0, TUNNELS[t].1, &inner),
                // Downlink: the gateway's own port towards the peer's (TS 29.281 4.4.2.3).
                Some(t) => gtpu((TUNNELS[t].1 .0, 2152), (TUNNELS[t].0 .0, 2152), &inner),
                None => inner,
            },
        ));
        s.seq[d] =
            s.seq[d].wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
        if s.packets.is_empty() {
            live.swap_remove(i);
        }
    }
    out
}

struct Frames<'a> {
    frames: &'a [(f64, Vec<u8>)],
    next: usize,
}

impl FrameSource for Frames<'_> {
    fn next_frame(&mut self) -> Option<Record<'_>> {
        let (ts, data) = self.frames.get(self.next)?;
        self.next += 1;
        Some(Record {
            ts: *ts,
            linktype: 1,
            data,
            orig_len: data.len() as u32,
        })
    }
}

fn config() -> Config {
    Config {
        idle_tcp: 30.0,
        idle_udp: 5.0,
        ..Config::default()
    }
}

fn engine() -> Arc<Engine> {
    Arc::new(Engine::new(
        load_texts_and(BUILTIN, &[]).expect("shipped signatures"),
        Default::default(),
    ))
}

fn single(frames: &[(f64, Vec<u8>)]) -> Vec<FlowRecord> {
    let mut a = Analyzer::new(
        config(),
        engine(),
        Arc::new(KnownPorts::default()),
        Some("t.pcap".into()),
    );
    for (ts, f) in frames {
        a.packet(*ts, 1, f);
    }
    a.drain();
    std::mem::take(&mut a.flows.finished)
}

fn parallel(frames: &[(f64, Vec<u8>)], workers: usize, chunk: usize) -> Vec<FlowRecord> {
    parallel_drained(frames, workers, chunk, usize::MAX)
}

/// `parallel`, with the flows left at the end drained `slice` records at a time (as Python does).
fn parallel_drained(
    frames: &[(f64, Vec<u8>)],
    workers: usize,
    chunk: usize,
    slice: usize,
) -> Vec<FlowRecord> {
    let mut p = ParallelAnalyzer::new(
        config(),
        engine(),
        Arc::new(KnownPorts::default()),
        Some("t.pcap".into()),
        workers,
    );
    let mut src = Frames { frames, next: 0 };
    let mut out = Vec::new();
    loop {
        let (recs, done) = p.run(&mut src, chunk, usize::MAX);
        out.extend(recs);
        if done {
            break;
        }
    }
    loop {
        let recs = p.drain_some(slice);
        assert!(recs.len() <= slice, "a slice holds at most {slice} records");
        if recs.is_empty() {
            break;
        }
        out.extend(recs);
    }
    assert_eq!(p.live_flows(), 0, "drained to the last flow");
    assert_eq!(p.stats().packets, frames.len() as u64);
    out
}

#[test]
fn a_record_bound_ends_reads_early_and_keeps_the_records() {
    // Reads of 1,000,000 packets would take the whole capture in one; a bound of one record
    // ends each at the next chunk after a flow ended (the chunks in flight, up to DEPTH + 1 of
    // BATCH frames, still finish).
    let frames = traffic(3 * (DEPTH + 1) * BATCH);
    let want = single(&frames);
    let mut p = ParallelAnalyzer::new(
        config(),
        engine(),
        Arc::new(KnownPorts::default()),
        Some("t.pcap".into()),
        2,
    );
    let mut src = Frames {
        frames: &frames,
        next: 0,
    };
    let (mut got, mut reads) = (Vec::new(), 0);
    loop {
        let (recs, done) = p.run(&mut src, 1_000_000, 1);
        reads += 1;
        got.extend(recs);
        if done {
            break;
        }
    }
    got.extend(p.drain());
    assert!(reads > 2, "the bound ended reads early ({reads} reads)");
    assert_eq!(got, want);
}

#[test]
fn every_worker_count_gives_the_single_run_records_in_order() {
    let frames = traffic(14_000);
    let want = single(&frames);
    assert!(want.len() > 1000, "{} flows", want.len());
    let reasons = |r: &FlowRecord| {
        r.meta
            .get("end_reason")
            .and_then(|v| v.as_str())
            .unwrap_or("end")
            .to_string()
    };
    for reason in ["closed", "idle", "end"] {
        assert!(
            want.iter().any(|r| reasons(r) == reason),
            "no flow ended by {reason}"
        );
    }
    // A flow's id is the number of its first packet: distinct, and within the capture, except
    // that a tunnel's first packet starts the tunnel's flow and the first flow inside it.
    let inside = |r: &FlowRecord| r.meta.contains_key("encap");
    for layer in [false, true] {
        let mut ids: Vec<u64> = want
            .iter()
            .filter(|r| inside(r) == layer)
            .map(|r| r.flow_id)
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            n,
            "flow ids are distinct (inside tunnels: {layer})"
        );
        assert!(
            ids.iter().all(|&id| id >= 1 && id <= frames.len() as u64),
            "flow ids are packet numbers"
        );
    }
    // The tunnels' own flows are there, and every inner flow names one of them.
    let tunnels: Vec<&str> = want
        .iter()
        .filter(|r| &*r.protocol == "gtp")
        .map(|r| r.community_id.as_str())
        .collect();
    assert!(
        tunnels.len() >= TUNNELS.len(),
        "{} tunnel records",
        tunnels.len()
    );
    let inner: Vec<&FlowRecord> = want.iter().filter(|r| inside(r)).collect();
    assert!(inner.len() > 100, "{} inner flows", inner.len());
    for r in inner {
        let join = r.meta["tunnel_community_id"].as_str().unwrap();
        assert!(tunnels.contains(&join), "{join} names no tunnel record");
    }
    for (workers, chunk) in [
        (1, 100_000),
        (2, 100_000),
        (3, 100_000),
        (2, 5_000),
        (3, 4_097),
    ] {
        let got = parallel(&frames, workers, chunk);
        assert_eq!(got.len(), want.len(), "{workers} workers");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{workers} workers, chunk {chunk}: record {i} differs");
        }
    }
    // The flows open at the end, drained a slice at a time: the same records in the same order
    // (slices smaller than a shard's share make the merge wait for the other shard).
    let open_at_end = want.iter().filter(|r| reasons(r) == "end").count();
    assert!(open_at_end > 50, "{open_at_end} flows open at the end");
    for (workers, slice) in [(2, 1), (2, 7), (3, 13), (3, 1000)] {
        let got = parallel_drained(&frames, workers, 100_000, slice);
        assert_eq!(
            got.len(),
            want.len(),
            "{workers} workers, slices of {slice}"
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g, w,
                "{workers} workers, slices of {slice}: record {i} differs"
            );
        }
    }
}

/// `traffic`, with frames in the shapes a worker cannot route from one decode alone or that
/// take the decoder's long way: VLAN tags, IP-in-IP, IPv4 fragments (in order or not, of
/// plain frames and of GTP-U datagrams), frames cut short.
fn mangled(frames: &[(f64, Vec<u8>)]) -> Vec<(f64, Vec<u8>)> {
    let mut rng = Lcg(11);
    let mut out = Vec::new();
    for (ts, f) in frames {
        if f.get(12..14) != Some(&[0x08, 0x00][..]) || f.len() < 34 {
            out.push((*ts, f.clone()));
            continue;
        }
        let (eth, ip) = (&f[..14], &f[14..]);
        match rng.below(10) {
            0 | 1 => {
                let mut g = f[..12].to_vec();
                for _ in 0..=rng.below(2) {
                    g.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
                }
                g.extend_from_slice(&f[12..]);
                out.push((*ts, g));
            }
            2 | 3 if ip.len() >= 20 + 16 => {
                let payload = &ip[20..];
                let cut = (payload.len() / 2) & !7;
                let ident = rng.below(65536) as u16;
                let piece = |data: &[u8], at: usize, more: bool| {
                    let mut h = eth.to_vec();
                    h.extend_from_slice(&ip[..2]);
                    h.extend_from_slice(&((20 + data.len()) as u16).to_be_bytes());
                    h.extend_from_slice(&ident.to_be_bytes());
                    let frag = (at / 8) as u16 | if more { 0x2000 } else { 0 };
                    h.extend_from_slice(&frag.to_be_bytes());
                    h.extend_from_slice(&ip[8..20]);
                    h.extend_from_slice(data);
                    h
                };
                let (a, b) = (
                    piece(&payload[..cut], 0, true),
                    piece(&payload[cut..], cut, false),
                );
                if rng.below(3) == 0 {
                    out.push((*ts, b));
                    out.push((*ts, a));
                } else {
                    out.push((*ts, a));
                    out.push((*ts, b));
                }
            }
            4 => {
                let mut g = eth.to_vec();
                g.extend_from_slice(&[0x45, 0]);
                g.extend_from_slice(&((20 + ip.len()) as u16).to_be_bytes());
                g.extend_from_slice(&[0, 2, 0x40, 0, 64, 4, 0, 0]);
                g.extend_from_slice(&[172, 16, 0, 1 + rng.below(3) as u8]);
                g.extend_from_slice(&[172, 16, 1, 1]);
                g.extend_from_slice(ip);
                out.push((*ts, g));
            }
            5 if rng.below(4) == 0 => out.push((*ts, f[..30].to_vec())),
            _ => out.push((*ts, f.clone())),
        }
    }
    out
}

#[test]
fn fragments_tags_and_tunnels_give_the_single_run_records_and_counters() {
    let frames = mangled(&traffic(8_000));
    let mut a = Analyzer::new(
        config(),
        engine(),
        Arc::new(KnownPorts::default()),
        Some("t.pcap".into()),
    );
    for (ts, f) in &frames {
        a.packet(*ts, 1, f);
    }
    a.drain();
    let want = std::mem::take(&mut a.flows.finished);
    let stats = a.flows.stats.clone();
    assert!(stats.fragments > 500, "{} fragments", stats.fragments);
    assert!(stats.malformed > 10, "{} malformed", stats.malformed);
    for (workers, chunk) in [(2, 100_000), (3, 100_000), (2, 333)] {
        let mut p = ParallelAnalyzer::new(
            config(),
            engine(),
            Arc::new(KnownPorts::default()),
            Some("t.pcap".into()),
            workers,
        );
        let mut src = Frames {
            frames: &frames,
            next: 0,
        };
        let mut got = Vec::new();
        loop {
            let (recs, done) = p.run(&mut src, chunk, usize::MAX);
            got.extend(recs);
            if done {
                break;
            }
        }
        got.extend(p.drain());
        assert_eq!(got.len(), want.len(), "{workers} workers");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{workers} workers, chunk {chunk}: record {i} differs");
        }
        let mut s = p.stats();
        s.other_shard = stats.other_shard;
        assert_eq!(s, stats, "{workers} workers: counters");
    }
}

/// Frames with timestamps 10 ms apart, and the FTP control connection's sequence numbers.
struct Trace {
    out: Vec<(f64, Vec<u8>)>,
    t: f64,
    seq: [u32; 2],
}

const FTP_C: End = ([10, 77, 0, 2], 40000);
const FTP_S: End = ([10, 77, 0, 1], 21);

impl Trace {
    fn push(&mut self, f: Vec<u8>) {
        self.t += 0.01;
        self.out.push((self.t, f));
    }

    /// A line on the FTP control connection.
    fn ctl(&mut self, from_client: bool, text: &[u8]) {
        let (src, dst, d) = if from_client {
            (FTP_C, FTP_S, 0)
        } else {
            (FTP_S, FTP_C, 1)
        };
        let f = frame(TCP, src, dst, PSH | ACK, self.seq[d], text);
        self.push(f);
        self.seq[d] = self.seq[d].wrapping_add(text.len() as u32);
    }

    /// A short data connection from `from` to `to`.
    fn data(&mut self, from: End, to: End) {
        self.push(frame(TCP, from, to, SYN, 1, b""));
        self.push(frame(TCP, to, from, SYN | ACK, 1, b""));
        let listing = b"-rw-r--r-- 1 ftp ftp 24 readme.txt\r\n";
        self.push(frame(TCP, to, from, PSH | ACK, 2, listing));
        self.push(frame(TCP, to, from, FIN | ACK, 40, b""));
        self.push(frame(TCP, from, to, FIN | ACK, 2, b""));
    }
}

/// An FTP control connection announcing data connections (EPSV, PASV, PORT, and a PORT naming a
/// third host), each followed by the connection; and a SIP call whose SDP announces RTP.
fn announced_traffic() -> Vec<(f64, Vec<u8>)> {
    let (srv, cli, third) = (FTP_S.0, FTP_C.0, [192, 0, 2, 99]);
    let mut tr = Trace {
        out: Vec::new(),
        t: 1.0,
        seq: [1000, 9000],
    };
    tr.push(frame(TCP, FTP_C, FTP_S, SYN, 999, b""));
    tr.push(frame(TCP, FTP_S, FTP_C, SYN | ACK, 8999, b""));
    tr.ctl(false, b"220 portwatch vsftpd ready.\r\n");
    tr.ctl(true, b"USER pwcap\r\n");
    tr.ctl(false, b"331 Please specify the password.\r\n");
    for i in 0..6u16 {
        let port = 50000 + i;
        tr.ctl(true, b"EPSV\r\n");
        let reply = format!("229 Entering Extended Passive Mode (|||{port}|)\r\n");
        tr.ctl(false, reply.as_bytes());
        tr.data((cli, 41000 + i), (srv, port));
        tr.ctl(true, b"PASV\r\n");
        let reply = format!("227 Entering Passive Mode (10,77,0,1,{},{}).\r\n", 196, i);
        tr.ctl(false, reply.as_bytes());
        tr.data((cli, 42000 + i), (srv, 196 * 256 + i));
        let cmd = format!("PORT 10,77,0,2,{},{}\r\n", 160, i);
        tr.ctl(true, cmd.as_bytes());
        tr.ctl(false, b"200 PORT command successful.\r\n");
        tr.data((srv, 20), (cli, 160 * 256 + i));
    }
    // FTP bounce: the server is told to connect to a third host; that connection is not named.
    tr.ctl(true, b"PORT 192,0,2,99,0,25\r\n");
    tr.data((srv, 20), (third, 25));
    // SIP over UDP: the INVITE's SDP announces RTP on 10.77.0.2:6000, the 200 OK's on
    // 10.77.0.1:7000; media then flows between them.
    let invite = b"INVITE sip:service@10.77.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.77.0.2:5060\r\n\
        Call-ID: 1-1@10.77.0.2\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\n\
        v=0\r\no=- 1 1 IN IP4 10.77.0.2\r\ns=-\r\nc=IN IP4 10.77.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
    let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.77.0.2:5060\r\nCall-ID: 1-1@10.77.0.2\r\n\
        CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\n\
        v=0\r\no=- 2 2 IN IP4 10.77.0.1\r\ns=-\r\nc=IN IP4 10.77.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n";
    tr.push(frame(UDP, (cli, 5060), (srv, 5060), 0, 0, invite));
    tr.push(frame(UDP, (srv, 5060), (cli, 5060), 0, 0, ok));
    for n in 0..6u16 {
        let mut rtp = vec![0x80, 0x00];
        rtp.extend_from_slice(&(100 + n).to_be_bytes());
        rtp.extend_from_slice(&(160 * u32::from(n)).to_be_bytes());
        rtp.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        rtp.extend_from_slice(&[0xff; 160]);
        tr.push(frame(UDP, (cli, 6000), (srv, 7000), 0, 0, &rtp));
    }
    tr.push(frame(
        UDP,
        (cli, 6001),
        (srv, 7001),
        0,
        0,
        &[0x80, 0xc8, 0, 6],
    ));
    tr.out
}

#[test]
fn announced_connections_are_named_alike_for_every_worker_count() {
    let frames = announced_traffic();
    let want = single(&frames);
    let named =
        |recs: &[FlowRecord], proto: &str| recs.iter().filter(|r| &*r.protocol == proto).count();
    assert_eq!(named(&want, "ftp-data"), 18, "6 EPSV, 6 PASV, 6 PORT");
    let control = want
        .iter()
        .find(|r| r.dst_port == 21)
        .expect("control flow");
    for r in want.iter().filter(|r| &*r.protocol == "ftp-data") {
        assert_eq!(r.meta["control_flow_id"], control.flow_id);
        assert_eq!(
            r.meta["control_community_id"],
            control.community_id.as_str()
        );
    }
    let bounce = want
        .iter()
        .find(|r| r.dst_ip == "192.0.2.99")
        .expect("bounce flow");
    assert_ne!(&*bounce.protocol, "ftp-data");
    let foreign = control.meta["announced_foreign"]
        .as_array()
        .expect("listed");
    assert_eq!(foreign[0]["endpoint"], "192.0.2.99:25");
    let rtp = want.iter().find(|r| r.src_port == 6000).expect("rtp flow");
    assert_eq!(&*rtp.protocol, "rtp");
    assert_eq!(rtp.meta["announced_by"], "SDP");
    assert_eq!(
        &*want
            .iter()
            .find(|r| r.src_port == 6001)
            .expect("rtcp")
            .protocol,
        "rtcp"
    );
    // the test means something only if announcements cross shards
    for shards in [2u32, 3] {
        let shard_of = |r: &FlowRecord| {
            let ip = |s: &str| -> [u8; 4] {
                let v: Vec<u8> = s.split('.').map(|x| x.parse().unwrap()).collect();
                [v[0], v[1], v[2], v[3]]
            };
            _core::flow::Key {
                proto: TCP,
                a: _core::decode::Addr::V4(ip(&r.src_ip)),
                b: _core::decode::Addr::V4(ip(&r.dst_ip)),
                a_port: r.src_port,
                b_port: r.dst_port,
            }
            .shard(shards)
        };
        let home = shard_of(control);
        assert!(
            want.iter()
                .filter(|r| &*r.protocol == "ftp-data")
                .any(|r| shard_of(r) != home),
            "{shards} shards: some data connection in another shard"
        );
    }
    // chunk 1: every announcement and every creation in chunks of their own
    for (workers, chunk) in [(2, 100_000), (3, 100_000), (2, 1), (3, 7)] {
        let got = parallel(&frames, workers, chunk);
        assert_eq!(got, want, "{workers} workers, chunk {chunk}");
    }
}
