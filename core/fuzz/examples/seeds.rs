//! Writes the fuzz seeds to core/fuzz/seeds/<target>/ (not committed: `cargo fuzz cmin` turns
//! them into the committed corpus/<target>/; see README.md).
//!
//! Sources, and only these: core/tests/vectors/*.jsonl (probe inputs), ../captures/*.pcap (capture
//! files and their frames), ../signatures/*.toml (signature texts). Never the evaluation corpus.
//!
//! Run from core/fuzz: `cargo run --example seeds`.
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let core = fuzz.parent().unwrap().to_path_buf();
    let repo = core.parent().unwrap().to_path_buf();
    let out = fuzz.join("seeds");
    let captures = pcaps(&repo.join("captures"));

    let n = write_all(
        &out.join("probes"),
        probe_seeds(&core.join("tests/vectors")),
    );
    println!("probes: {n} seeds");
    let n = write_all(&out.join("source"), source_seeds(&captures));
    println!("source: {n} seeds");
    let n = write_all(&out.join("decode"), decode_seeds(&captures));
    println!("decode: {n} seeds");
    let n = write_all(
        &out.join("signature"),
        signature_seeds(&repo.join("signatures")),
    );
    println!("signature: {n} seeds");
    let n = write_all(&out.join("meta"), meta_seeds(&core.join("tests/vectors")));
    println!("meta: {n} seeds");
    let n = write_all(&out.join("bpf"), bpf_seeds(&captures));
    println!("bpf: {n} seeds");
}

fn write_all(dir: &Path, seeds: BTreeSet<Vec<u8>>) -> usize {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    for (i, s) in seeds.iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:05}")), s).unwrap();
    }
    seeds.len()
}

fn sorted_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// One seed per distinct vector input: `[selector][input]`, or the units joined.
fn probe_seeds(vectors: &Path) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for path in sorted_files(vectors, "jsonl") {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let Some(sel) = pw_fuzz::probes::selector(&name) else {
            eprintln!("{name}: no probe of that name, skipped");
            continue;
        };
        for line in fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let mut seed = vec![sel];
            if let Some(input) = v["input"].as_str() {
                seed.extend(unhex(input));
            } else if let Some(units) = v["units"].as_array() {
                let units: Vec<Vec<u8>> =
                    units.iter().map(|u| unhex(u.as_str().unwrap())).collect();
                let refs: Vec<&[u8]> = units.iter().map(|u| u.as_slice()).collect();
                seed.extend(pw_fuzz::probes::join_units(&refs));
            }
            seeds.insert(seed);
        }
    }
    seeds
}

/// JSON objects for `meta`: every probe vector's facts (the texts records carry), and the
/// numbers, escapes and nesting where Python's reader and serde_json part ways.
fn meta_seeds(vectors: &Path) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for path in sorted_files(vectors, "jsonl") {
        for line in fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(meta) = v
                .get("meta")
                .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
            {
                seeds.insert(serde_json::to_vec(meta).unwrap());
            }
        }
    }
    let deep = |n: usize| format!("{{\"d\":{}1{}}}", "[".repeat(n), "]".repeat(n));
    for text in [
        r#"{"i":9223372036854775807,"u":18446744073709551615,"big":18446744073709551616}"#,
        r#"{"f":-0.0,"z":-0,"e":1e400,"g":9.2233720368547758e18,"h":0.1,"k":5e-324}"#,
        r#"{"s":"\ud800","t":"\ud83d\ude00","c":"\u0000\u001f\"\\\/","x":"é☃"}"#,
        r#"{"digest":"00ff10a0b0c0d0e0f0a1b2c3d4e5f607","odd":"abc","upper":"ABCDEF"}"#,
        r#"{"a":1,"a":2,"b":{"a":[],"b":{}},"c":[null,true,false,"",0]}"#,
        r#"{"shape":{"sizes":[1,-2,1448],"iat_ms":[0.5,12.125,null]},"end_reason":"idle"}"#,
        &deep(63),
        &deep(64),
        &deep(200),
    ] {
        seeds.insert(text.as_bytes().to_vec());
    }
    seeds
}

/// Filters as libpcap compiles them for Ethernet (`tcpdump -dd`, as `portwatch/bpf.py` asks;
/// none without tcpdump), each over the first frames of every Ethernet capture.
fn bpf_seeds(captures: &[(PathBuf, Vec<u8>, Pcap)]) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for expr in [
        "tcp port 443",
        "udp and not port 53",
        "ip6 and tcp[tcpflags] & tcp-syn != 0",
        "vlan and ip",
        "net 10.0.0.0/8 and greater 100",
        "ip[6:2] & 0x1fff != 0",
        "ether host 02:00:00:00:00:01 or arp",
    ] {
        let Ok(run) = std::process::Command::new("tcpdump")
            .args(["-y", "EN10MB", "-dd", expr])
            .output()
        else {
            eprintln!("bpf: no tcpdump, no seeds");
            return seeds;
        };
        let program: Vec<u8> = String::from_utf8_lossy(&run.stdout)
            .lines()
            .filter_map(|line| {
                let fields: Vec<u64> = line
                    .trim_matches(|c| "{}, ".contains(c))
                    .split(", ")
                    .map(|f| {
                        let f = f.trim();
                        f.strip_prefix("0x")
                            .map_or_else(|| f.parse(), |h| u64::from_str_radix(h, 16))
                            .ok()
                    })
                    .collect::<Option<_>>()?;
                let [code, jt, jf, k] = fields[..] else {
                    return None;
                };
                let mut insn = (code as u16).to_be_bytes().to_vec();
                insn.extend([jt as u8, jf as u8]);
                insn.extend((k as u32).to_be_bytes());
                Some(insn)
            })
            .flatten()
            .collect();
        let count = program.len() / 8;
        if count == 0 || count > 64 {
            continue;
        }
        for (_, _, pcap) in captures.iter().filter(|c| c.2.linktype == 1) {
            for (_, _, frame) in pcap.records.iter().take(4) {
                let mut seed = vec![count as u8];
                seed.extend((frame.len().min(65535) as u16).to_be_bytes());
                seed.extend(&program);
                seed.extend(frame);
                seeds.insert(seed);
            }
        }
    }
    seeds
}

/// A classic pcap: its link type and its records as (seconds, fraction, frame).
struct Pcap {
    linktype: u32,
    records: Vec<(u32, u32, Vec<u8>)>,
}

fn pcaps(dir: &Path) -> Vec<(PathBuf, Vec<u8>, Pcap)> {
    let mut out = Vec::new();
    for path in sorted_files(dir, "pcap") {
        let raw = fs::read(&path).unwrap();
        // Only little-endian microsecond files are in captures/; others are skipped.
        if raw.get(..4) != Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]) {
            continue;
        }
        let le = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap());
        let linktype = le(20);
        let mut records = Vec::new();
        let mut at = 24;
        while at + 16 <= raw.len() {
            let incl = le(at + 8) as usize;
            let Some(frame) = raw.get(at + 16..at + 16 + incl) else {
                break;
            };
            records.push((le(at), le(at + 4), frame.to_vec()));
            at += 16 + incl;
        }
        out.push((path, raw, Pcap { linktype, records }));
    }
    out
}

/// Each capture as it is; a few rewritten as big-endian nanosecond pcap, as pcapng, gzipped,
/// and cut short, so that every reader branch starts from a valid file.
fn source_seeds(captures: &[(PathBuf, Vec<u8>, Pcap)]) -> BTreeSet<Vec<u8>> {
    let mut seeds = BTreeSet::new();
    for (i, (_, raw, pcap)) in captures.iter().enumerate() {
        seeds.insert(raw.clone());
        // A handful of variants suffice: the fuzzer carries the structure over to the rest.
        if i % 6 == 0 {
            let few = Pcap {
                linktype: pcap.linktype,
                records: pcap.records.iter().take(6).cloned().collect(),
            };
            seeds.insert(pcap_be_nano(&few));
            let ng = pcapng(&few);
            seeds.insert(gzip(&ng));
            seeds.insert(ng);
            seeds.insert(gzip(&pcap_le_micro(&few)));
            seeds.insert(raw[..raw.len() * 2 / 3].to_vec());
        }
    }
    seeds
}

fn pcap_le_micro(p: &Pcap) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(p.linktype.to_le_bytes());
    for (s, us, f) in &p.records {
        for v in [*s, *us, f.len() as u32, f.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        out.extend(f);
    }
    out
}

fn pcap_be_nano(p: &Pcap) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xa1b2_3c4du32.to_be_bytes());
    out.extend(2u16.to_be_bytes());
    out.extend(4u16.to_be_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_be_bytes());
    out.extend(p.linktype.to_be_bytes());
    for (s, us, f) in &p.records {
        for v in [*s, us.saturating_mul(1000), f.len() as u32, f.len() as u32] {
            out.extend(v.to_be_bytes());
        }
        out.extend(f);
    }
    out
}

/// A pcapng block: type, total length, body padded to 4, total length again.
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let pad = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + pad) as u32;
    out.extend(kind.to_le_bytes());
    out.extend(total.to_le_bytes());
    out.extend(body);
    out.extend(std::iter::repeat_n(0u8, pad));
    out.extend(total.to_le_bytes());
}

/// Little-endian pcapng: section header, two interfaces (the second with if_tsresol = 10^-9 and
/// the other link type, raw IP), enhanced packets alternating between them.
fn pcapng(p: &Pcap) -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend(0x1a2b_3c4du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend((p.linktype as u16).to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(65535u32.to_le_bytes());
    block(&mut out, 1, &idb);
    let mut idb2 = Vec::new();
    idb2.extend(101u16.to_le_bytes());
    idb2.extend(0u16.to_le_bytes());
    idb2.extend(65535u32.to_le_bytes());
    // option if_tsresol (9) = 9, then opt_endofopt
    idb2.extend([9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    block(&mut out, 1, &idb2);
    for (i, (s, us, f)) in p.records.iter().enumerate() {
        let second = i % 2 == 1 && p.linktype == 1 && f.len() > 14;
        let (iface, ticks, data) = if second {
            (
                1u32,
                (*s as u64) * 1_000_000_000 + (*us as u64) * 1000,
                &f[14..],
            )
        } else {
            (0u32, (*s as u64) * 1_000_000 + *us as u64, &f[..])
        };
        let mut epb = Vec::new();
        epb.extend(iface.to_le_bytes());
        epb.extend(((ticks >> 32) as u32).to_le_bytes());
        epb.extend((ticks as u32).to_le_bytes());
        epb.extend((data.len() as u32).to_le_bytes());
        epb.extend((data.len() as u32).to_le_bytes());
        epb.extend(data);
        let pad = (4 - data.len() % 4) % 4;
        epb.extend(std::iter::repeat_n(0u8, pad));
        block(&mut out, 6, &epb);
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn signature_seeds(dir: &Path) -> BTreeSet<Vec<u8>> {
    sorted_files(dir, "toml")
        .into_iter()
        .map(|p| fs::read(p).unwrap())
        .collect()
}

/// `[link][frame]...` inputs (see src/decode.rs) from the captures' frames: each capture's
/// frames as captured (Ethernet), some rewrapped for the other link types, and IP fragments
/// cut from UDP and TCP datagrams (in order, out of order, duplicated; IPv4 and IPv6).
fn decode_seeds(captures: &[(PathBuf, Vec<u8>, Pcap)]) -> BTreeSet<Vec<u8>> {
    use pw_fuzz::decode::{frame_record, selector};
    let mut seeds = BTreeSet::new();
    let seed = |link: u32, frames: &[Vec<u8>]| {
        let mut s = vec![selector(link).unwrap()];
        for f in frames {
            s.extend(frame_record(1, f));
        }
        s
    };
    for (_, _, pcap) in captures {
        if pcap.linktype != 1 {
            // A real capture of another link type (NFLOG): its frames as recorded.
            let frames: Vec<Vec<u8>> = pcap.records.iter().take(24).map(|r| r.2.clone()).collect();
            if selector(pcap.linktype).is_some() {
                seeds.insert(seed(pcap.linktype, &frames));
            }
            continue;
        }
        let eth: Vec<Vec<u8>> = pcap.records.iter().take(24).map(|r| r.2.clone()).collect();
        seeds.insert(seed(1, &eth));
        // Rewrapped: the IPv4 packets of the first frames under each other link header.
        let ip: Vec<Vec<u8>> = eth
            .iter()
            .filter(|f| f.len() > 34 && f[12..14] == [8, 0])
            .take(4)
            .map(|f| f[14..].to_vec())
            .collect();
        let wrap =
            |head: &[u8]| -> Vec<Vec<u8>> { ip.iter().map(|p| [head, p].concat()).collect() };
        seeds.insert(seed(101, &ip));
        seeds.insert(seed(228, &ip));
        seeds.insert(seed(12, &ip));
        seeds.insert(seed(0, &wrap(&[2, 0, 0, 0])));
        seeds.insert(seed(108, &wrap(&[0, 0, 0, 2])));
        seeds.insert(seed(9, &wrap(&[0x00, 0x21])));
        seeds.insert(seed(50, &wrap(&[0xff, 0x03, 0x00, 0x21])));
        seeds.insert(seed(104, &wrap(&[0x0f, 0x00, 0x08, 0x00])));
        seeds.insert(seed(
            113,
            &wrap(&[0, 0, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0, 8, 0]),
        ));
        seeds.insert(seed(
            276,
            &wrap(&[8, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 1, 2, 3, 4, 5, 0, 0]),
        ));
        seeds.insert(seed(14, &ip));
        // 802.11 data frames (radiotap with an FCS, PPI, Prism, AVS before them), FDDI and
        // NFLOG around the same packets.
        let snap = |p: &Vec<u8>| [&[0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00][..], p].concat();
        let mut dot11_head = vec![0x88, 0x01, 0x3a, 0x01];
        dot11_head.extend([
            2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 3, 0x10, 0,
        ]);
        dot11_head.extend([5, 0]); // QoS control
        let dot11: Vec<Vec<u8>> = ip
            .iter()
            .map(|p| [&dot11_head[..], &snap(p)].concat())
            .collect();
        seeds.insert(seed(105, &dot11));
        // TSFT, then Flags with "FCS at end": 17 bytes.
        let radiotap = [0, 0, 17, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x10];
        let rt: Vec<Vec<u8>> = dot11
            .iter()
            .map(|f| [&radiotap[..], f, &[0xde, 0xad, 0xbe, 0xef]].concat())
            .collect();
        seeds.insert(seed(127, &rt));
        let mut ppi = vec![0, 0, 32, 0, 105, 0, 0, 0, 2, 0, 20, 0];
        ppi.extend([0; 8]);
        ppi.extend([1, 0]); // flags: FCS present
        ppi.extend([0; 10]);
        let ppi_frames: Vec<Vec<u8>> = dot11
            .iter()
            .map(|f| [&ppi[..], f, &[0xde, 0xad, 0xbe, 0xef]].concat())
            .collect();
        seeds.insert(seed(192, &ppi_frames));
        let mut prism = vec![0x44, 0, 0, 0, 144, 0, 0, 0];
        prism.resize(144, 0);
        seeds.insert(seed(
            119,
            &dot11
                .iter()
                .map(|f| [&prism[..], f].concat())
                .collect::<Vec<_>>(),
        ));
        let mut avs = vec![0x80, 0x21, 0x10, 0x01, 0, 0, 0, 64];
        avs.resize(64, 0);
        seeds.insert(seed(
            163,
            &dot11
                .iter()
                .map(|f| [&avs[..], f].concat())
                .collect::<Vec<_>>(),
        ));
        let fddi: Vec<Vec<u8>> = eth
            .iter()
            .filter(|f| f.len() > 34 && f[12..14] == [8, 0])
            .take(4)
            .map(|f| [&[0x50][..], &f[..12], &snap(&f[14..].to_vec())].concat())
            .collect();
        seeds.insert(seed(10, &fddi));
        for le in [true, false] {
            let tlv = |kind: u16, value: &[u8]| -> Vec<u8> {
                let len = (4 + value.len()) as u16;
                let (l, k) = if le {
                    (len.to_le_bytes(), kind.to_le_bytes())
                } else {
                    (len.to_be_bytes(), kind.to_be_bytes())
                };
                let mut t = [&l[..], &k[..], value].concat();
                t.resize(t.len().next_multiple_of(4), 0);
                t
            };
            let nflog: Vec<Vec<u8>> = ip
                .iter()
                .map(|p| {
                    let mut f = vec![2, 0, 0, 5];
                    f.extend(tlv(1, &[8, 0, 3, 0]));
                    f.extend(tlv(10, b"pw \0"));
                    f.extend(tlv(9, p));
                    f
                })
                .collect();
            seeds.insert(seed(239, &nflog));
        }
        // Fragments of the first IPv4 datagram with a payload of 64 bytes or more.
        if let Some(f) = eth
            .iter()
            .find(|f| f.len() >= 34 + 64 && f[12..14] == [8, 0] && f[14] == 0x45)
        {
            let (eth_head, ip4) = f.split_at(14);
            let frags = ipv4_fragments(ip4, 24);
            let with = |v: Vec<&Vec<u8>>| -> Vec<Vec<u8>> {
                v.into_iter().map(|p| [eth_head, p].concat()).collect()
            };
            seeds.insert(seed(1, &with(frags.iter().collect())));
            seeds.insert(seed(1, &with(frags.iter().rev().collect())));
            let mut dup: Vec<&Vec<u8>> = frags.iter().collect();
            dup.insert(1, &frags[0]);
            seeds.insert(seed(1, &with(dup)));
            // One fragment, then 40 s later the rest: the first has timed out by then.
            let mut late = vec![selector(1).unwrap()];
            late.extend(frame_record(1, &[eth_head, &frags[0]].concat()));
            for (i, p) in frags.iter().enumerate().skip(1) {
                late.extend(frame_record(
                    if i == 1 { 80 } else { 1 },
                    &[eth_head, p].concat(),
                ));
            }
            seeds.insert(late);
            let v6 = ipv6_fragments(&ip4[20..], ip4[9], 24);
            seeds.insert(seed(229, &v6));
            seeds.insert(seed(229, &v6.iter().rev().cloned().collect::<Vec<_>>()));
        }
    }
    seeds
}

fn checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (20-byte header) cut into fragments of `step` payload bytes (a multiple of 8).
fn ipv4_fragments(ip4: &[u8], step: usize) -> Vec<Vec<u8>> {
    let total = usize::from(u16::from_be_bytes([ip4[2], ip4[3]])).min(ip4.len());
    let payload = &ip4[20..total];
    payload
        .chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let mut h = ip4[..20].to_vec();
            h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
            let more = (i + 1) * step < payload.len();
            let field = ((i * step / 8) as u16) | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&field.to_be_bytes());
            h[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            [&h[..], chunk].concat()
        })
        .collect()
}

/// The same transport payload in IPv6 fragments (fragment extension header, id 0x4242).
fn ipv6_fragments(transport: &[u8], proto: u8, step: usize) -> Vec<Vec<u8>> {
    let src: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    transport
        .chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = vec![0x60, 0, 0, 0];
            p.extend(((8 + chunk.len()) as u16).to_be_bytes());
            p.extend([44, 64]);
            p.extend(src);
            p.extend(dst);
            let more = (i + 1) * step < transport.len();
            let field = ((i * step / 8) as u16) << 3 | u16::from(more);
            p.extend([proto, 0]);
            p.extend(field.to_be_bytes());
            p.extend(0x4242u32.to_be_bytes());
            p.extend(chunk);
            p
        })
        .collect()
}
