//! Captures built in code, read back: both formats, both byte orders, clocks, gzip, cut files.
use std::io::{self, Read, Write};

use super::{CaptureReader, SourceCounters};

fn pkt(i: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|k| i.wrapping_mul(7).wrapping_add(k as u8))
        .collect()
}

fn w32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn w16(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

/// A classic pcap: magic, snaplen, link type, then (seconds, fraction, frame) records.
fn pcap(
    be: bool,
    nano: bool,
    snaplen: u32,
    linktype: u32,
    recs: &[(u32, u32, Vec<u8>)],
) -> Vec<u8> {
    let mut out = Vec::new();
    w32(&mut out, if nano { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }, be);
    w16(&mut out, 2, be);
    w16(&mut out, 4, be);
    w32(&mut out, 0, be);
    w32(&mut out, 0, be);
    w32(&mut out, snaplen, be);
    w32(&mut out, linktype, be);
    for (sec, frac, data) in recs {
        for v in [*sec, *frac, data.len() as u32, data.len() as u32] {
            w32(&mut out, v, be);
        }
        out.extend_from_slice(data);
    }
    out
}

fn block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let n = body.len() as u32 + 12;
    let mut out = Vec::new();
    w32(&mut out, btype, be);
    w32(&mut out, n, be);
    out.extend_from_slice(&body);
    w32(&mut out, n, be);
    out
}

fn shb(be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    w32(&mut body, 0x1A2B_3C4D, be);
    w16(&mut body, 1, be);
    w16(&mut body, 0, be);
    body.extend_from_slice(&[0xFF; 8]);
    block(be, 0x0A0D_0D0A, &body)
}

fn idb(be: bool, linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    w16(&mut body, linktype, be);
    w16(&mut body, 0, be);
    w32(&mut body, 65535, be);
    if let Some(r) = tsresol {
        // A comment first, so that the option walk steps over a padded option.
        w16(&mut body, 1, be);
        w16(&mut body, 5, be);
        body.extend_from_slice(b"hello\0\0\0");
        w16(&mut body, 9, be);
        w16(&mut body, 1, be);
        body.extend_from_slice(&[r, 0, 0, 0]);
        body.extend_from_slice(&[0; 4]);
    }
    block(be, 1, &body)
}

fn epb(be: bool, ifid: u32, ticks: u64, data: &[u8], caplen: Option<u32>) -> Vec<u8> {
    let mut body = Vec::new();
    let caplen = caplen.unwrap_or(data.len() as u32);
    for v in [
        ifid,
        (ticks >> 32) as u32,
        ticks as u32,
        caplen,
        data.len() as u32,
    ] {
        w32(&mut body, v, be);
    }
    body.extend_from_slice(data);
    block(be, 6, &body)
}

fn spb(be: bool, origlen: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    w32(&mut body, origlen, be);
    body.extend_from_slice(data);
    block(be, 3, &body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("in memory");
    enc.finish().expect("in memory")
}

/// A reader handing out at most `step` bytes a read: every record spans reads somewhere.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[derive(Debug, PartialEq)]
struct Out {
    records: Vec<(u64, u32, Vec<u8>)>,
    error: Option<String>,
    counters: SourceCounters,
}

fn read_all(mut src: CaptureReader) -> Out {
    let mut records = Vec::new();
    while let Some(r) = src.next_record() {
        records.push((r.ts.to_bits(), r.linktype, r.data.to_vec()));
    }
    Out {
        records,
        error: src.error().map(str::to_owned),
        counters: src.counters(),
    }
}

fn read(data: &[u8]) -> Out {
    read_all(CaptureReader::from_reader("t", io::Cursor::new(data.to_vec())).expect("a capture"))
}

fn open_error(data: &[u8]) -> String {
    match CaptureReader::from_reader("t", io::Cursor::new(data.to_vec())) {
        Ok(_) => panic!("opened"),
        Err(e) => e.0,
    }
}

#[test]
fn classic_pcap_both_orders_and_clocks() {
    let recs = vec![
        (1_700_000_000, 123_456, pkt(1, 60)),
        (1_700_000_000, 999_999, pkt(2, 0)),
    ];
    for be in [false, true] {
        let out = read(&pcap(be, false, 65535, 0x1000_0001, &recs));
        assert_eq!(out.error, None);
        assert_eq!(out.records.len(), 2);
        // The Python reader's float, bit for bit (1700000000 + 123456 * 1e-6).
        assert_eq!(f64::from_bits(out.records[0].0), 1700000000.123456);
        assert_eq!(
            out.records[0].1, 1,
            "the top bits of the link type field are flags"
        );
        assert_eq!(out.records[0].2, pkt(1, 60));
        assert_eq!(out.records[1].2, Vec::<u8>::new());
        let nano = read(&pcap(
            be,
            true,
            65535,
            1,
            &[(1_700_000_000, 123_456_789, pkt(1, 60))],
        ));
        assert_eq!(f64::from_bits(nano.records[0].0), 1700000000.1234567);
        let nano = read(&pcap(
            be,
            true,
            65535,
            1,
            &[(1_700_000_000, 999_999_999, pkt(1, 60))],
        ));
        assert_eq!(f64::from_bits(nano.records[0].0), 1700000001.0);
    }
}

#[test]
fn pcap_errors_at_the_python_reader_points() {
    let recs = vec![(1, 2, pkt(1, 60)), (1, 3, pkt(2, 60))];
    let file = pcap(false, false, 65535, 1, &recs);
    let out = read(&file[..24 + 76 + 9]);
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.error.as_deref(),
        Some("t: truncated record header at end of file")
    );
    let out = read(&file[..24 + 76 + 16 + 10]);
    assert_eq!(
        out.error.as_deref(),
        Some("t: truncated packet data at end of file (10 of 60 bytes)")
    );
    assert_eq!(read(&file[..24 + 76]).error, None);
    assert_eq!(
        read(&file[..20]).error.as_deref(),
        Some("t: truncated pcap file header")
    );
    let mut bad = file.clone();
    bad[24 + 76 + 8..24 + 76 + 12].copy_from_slice(&65536u32.to_le_bytes());
    let out = read(&bad);
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.error.as_deref(),
        Some("t: corrupt record at byte offset 100: caplen 65536 exceeds 65535")
    );
    // No snap length: the bound is MAX_RECORD, and 70000 is a sound caplen.
    let big = read(&pcap(false, false, 0, 1, &[(1, 2, pkt(1, 70000))]));
    assert_eq!((big.records.len(), big.error), (1, None));
}

#[test]
fn records_spanning_reads_are_whole() {
    // Records over many blocks in all, and a reader giving 7 bytes at a time.
    let recs: Vec<_> = (0..60)
        .map(|i| (i, i, pkt(i as u8, 60_000 + i as usize)))
        .collect();
    let file = pcap(true, false, 0, 1, &recs);
    let whole = read(&file);
    assert_eq!(whole.records.len(), 60);
    assert_eq!(whole.records[59].2, pkt(59, 60_059));
    let trickled = CaptureReader::from_reader(
        "t",
        Trickle {
            data: file,
            at: 0,
            step: 7,
        },
    )
    .expect("pcap");
    assert_eq!(read_all(trickled), whole);
}

#[test]
fn the_largest_records_are_whole_however_the_reads_fall() {
    // Records of MAX_RECORD bytes span several of the reading thread's blocks: from a file (the
    // thread fills each block), from a stream whose reads are handed over as they come, and
    // from reads that end at every offset within a block.
    let max = super::pcap::MAX_RECORD as usize;
    let recs: Vec<_> = (0..9u32)
        .map(|i| {
            (
                i,
                i,
                pkt(
                    i as u8,
                    if i % 2 == 0 {
                        max
                    } else {
                        1 + 4099 * i as usize
                    },
                ),
            )
        })
        .collect();
    let file = pcap(false, false, 0, 1, &recs);
    let whole = read(&file);
    assert_eq!((whole.records.len(), whole.error.as_deref()), (9, None));
    for (got, (_, _, want)) in whole.records.iter().zip(&recs) {
        assert_eq!(&got.2, want);
    }
    let path = std::env::temp_dir().join(format!("pw-largest-{}.pcap", std::process::id()));
    std::fs::write(&path, &file).expect("write");
    let from_file = CaptureReader::open(&path).map(read_all);
    let _ = std::fs::remove_file(&path);
    assert_eq!(from_file.expect("opened"), whole);
    for step in [7, 4096, 100_003, 131_071] {
        let src = CaptureReader::from_reader(
            "t",
            Trickle {
                data: file.clone(),
                at: 0,
                step,
            },
        )
        .expect("pcap");
        assert_eq!(read_all(src), whole, "reads of {step} bytes");
    }
}

/// Clocks of more ticks a second than 64 bits count (10^20 to 10^30): a timestamp's ticks (64
/// bits) are all fraction; and under the finest clocks with whole seconds in 64 bits of ticks
/// (10^19, 2^30) the largest ticks split exactly.
#[test]
fn pcapng_clocks_past_64_bits() {
    let ticks = [1_700_000_000_123_456u64, u64::MAX];
    let mut f = shb(false);
    for r in [20, 30, 19, 0x80 | 30] {
        f.extend(idb(false, 1, Some(r)));
    }
    for ifid in 0..4 {
        for t in ticks {
            f.extend(epb(false, ifid, t, &pkt(1, 60), None));
        }
    }
    let out = read(&f);
    assert_eq!(out.error, None);
    let got: Vec<f64> = out.records.iter().map(|r| f64::from_bits(r.0)).collect();
    let mut want = Vec::new();
    for tick in [1e-20, 1e-30] {
        want.extend(ticks.map(|t| t as f64 * tick));
    }
    // 10^19 a second: u64::MAX is 1 second and 8,446,744,073,709,551,615 ticks.
    let per_sec = 10_000_000_000_000_000_000u64;
    want.push(ticks[0] as f64 * 1e-19);
    want.push(1.0 + (u64::MAX - per_sec) as f64 * 1e-19);
    // 2^30 a second: whole seconds are the ticks' top 34 bits.
    let tick = 1.0 / f64::from(1u32 << 30);
    for t in ticks {
        want.push((t >> 30) as f64 + (t & ((1 << 30) - 1)) as f64 * tick);
    }
    assert_eq!(got, want);
}

#[test]
fn pcapng_sections_interfaces_and_clocks() {
    let t = 1_700_000_000_123_456u64;
    let mut f = shb(false);
    f.extend(idb(false, 1, None));
    f.extend(idb(false, 101, Some(9)));
    f.extend(idb(false, 228, Some(0x94)));
    f.extend(idb(false, 1, Some(31))); // beyond 10^-30: microseconds
    f.extend(epb(false, 0, t, &pkt(1, 60), None));
    f.extend(epb(false, 1, 1_700_000_000_123_456_789, &pkt(2, 60), None));
    f.extend(epb(
        false,
        2,
        (1_700_000_000 << 20) | 12345,
        &pkt(3, 60),
        None,
    ));
    f.extend(epb(false, 3, t, &pkt(4, 60), None));
    f.extend(spb(false, 1000, &pkt(5, 60)));
    f.extend(block(false, 0x999, b"unknown"));
    f.extend(epb(false, 9, t, &pkt(6, 60), None)); // no such interface
    f.extend(epb(false, 0, t, &pkt(7, 60), Some(200))); // caplen past the block
    f.extend(shb(true));
    f.extend(idb(true, 113, Some(6)));
    f.extend(epb(true, 0, t, &pkt(8, 60), None));
    f.extend(epb(true, 1, t, &pkt(9, 60), None)); // the first section's interfaces are gone
    let out = read(&f);
    assert_eq!(out.error, None);
    assert_eq!(out.counters.malformed, 3);
    let got: Vec<(f64, u32)> = out
        .records
        .iter()
        .map(|r| (f64::from_bits(r.0), r.1))
        .collect();
    assert_eq!(
        got,
        vec![
            (1700000000.123456, 1),
            (1700000000.1234567, 101),
            (1700000000.011773, 228),
            (1700000000.123456, 1),
            (0.0, 1),
            (1700000000.123456, 113),
        ]
    );
    assert_eq!(
        out.records[4].2,
        pkt(5, 60),
        "a simple packet's caplen is what the block holds"
    );
    assert_eq!(out.records[5].2, pkt(8, 60));
}

#[test]
fn pcapng_errors() {
    let mut f = shb(false);
    f.extend(idb(false, 1, None));
    f.extend(epb(false, 0, 5, &pkt(1, 60), None));
    let whole = f.len();
    f.extend(epb(false, 0, 6, &pkt(2, 60), None));
    let out = read(&f[..whole + 6]);
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        out.error.as_deref(),
        Some("t: truncated pcapng block header at end of file")
    );
    let out = read(&f[..whole + 20]);
    assert_eq!(
        out.error.as_deref(),
        Some("t: truncated pcapng block at end of file (type 0x6)")
    );
    let mut bad = f.clone();
    bad[whole + 4..whole + 8].copy_from_slice(&13u32.to_le_bytes());
    let out = read(&bad);
    assert_eq!(out.records.len(), 1);
    let msg = format!("t: corrupt pcapng block at byte offset {whole} (type 0x6, length 13)");
    assert_eq!(out.error, Some(msg));
    let mut bom = shb(false);
    bom[8..12].copy_from_slice(b"\x01\x02\x03\x04");
    assert_eq!(
        read(&bom).error.as_deref(),
        Some("t: corrupt section header (byte-order magic 01020304)")
    );
    let mut short = shb(false);
    short.extend(block(false, 1, &[0; 4]));
    assert_eq!(
        read(&short).error.as_deref(),
        Some("t: corrupt interface description block")
    );
}

#[test]
fn every_cut_stops_cleanly() {
    let mut f = shb(false);
    f.extend(idb(false, 1, Some(9)));
    for i in 0..5 {
        f.extend(epb(
            false,
            0,
            i as u64,
            &pkt(i as u8, 30 + i as usize),
            None,
        ));
    }
    let whole = read(&f);
    let p = pcap(
        false,
        true,
        65535,
        1,
        &(0..5).map(|i| (i, i, pkt(i as u8, 40))).collect::<Vec<_>>(),
    );
    let whole_p = read(&p);
    for (file, whole) in [(&f, &whole), (&p, &whole_p)] {
        for cut in 4..file.len() {
            let out = read(&file[..cut]);
            assert!(whole.records.starts_with(&out.records), "cut {cut}");
        }
    }
}

#[test]
fn gzip_plain_members_and_cuts() {
    let recs: Vec<_> = (0..200).map(|i| (i, i, pkt(i as u8, 500))).collect();
    let file = pcap(false, false, 65535, 1, &recs);
    let plain = read(&file);
    assert_eq!(read(&gzip(&file)), plain);
    let mut two = gzip(&file[..5000]);
    two.extend(gzip(&file[5000..]));
    two.extend([0u8; 3]); // zero padding after a member is allowed
    assert_eq!(read(&two), plain);
    let gz = gzip(&file);
    let out = read(&gz[..gz.len() / 2]);
    assert!(plain.records.starts_with(&out.records) && !out.records.is_empty());
    let eof = "t: read error: Compressed file ended before the end-of-stream marker was reached";
    assert_eq!(out.error.as_deref(), Some(eof));
    let mut garbage = gz.clone();
    garbage.extend(b"xy");
    assert_eq!(
        read(&garbage).error.as_deref(),
        Some("t: read error: Not a gzipped file (b'xy')")
    );
    let mut crc = gz.clone();
    let at = crc.len() - 8;
    crc[at] ^= 1;
    let out = read(&crc);
    assert_eq!(
        out.records, plain.records,
        "the trailer is checked after the data is out"
    );
    assert!(out
        .error
        .is_some_and(|e| e.starts_with("t: read error: CRC check failed 0x")));
}

#[test]
fn open_errors_are_the_python_messages() {
    assert_eq!(open_error(b""), "t: empty file, not a capture");
    assert_eq!(
        open_error(b"\xd4\xc3"),
        "t: not a pcap or pcapng capture (starts with d4c3)"
    );
    assert_eq!(
        open_error(b"hello"),
        "t: not a pcap or pcapng capture (starts with 68656c6c)"
    );
    assert_eq!(open_error(&gzip(b"")), "t: empty file, not a capture");
    assert_eq!(
        open_error(&gzip(b"hello")),
        "t: not a pcap or pcapng capture (starts with 68656c6c)"
    );
    assert_eq!(
        open_error(&gzip(b"hello")[..10]),
        "t: corrupt gzip data (Compressed file ended before the end-of-stream marker was reached)"
    );
    assert_eq!(
        open_error(b"\x1f\x8b\x07\0\0\0\0\0\0\0"),
        "t: corrupt gzip data (Unknown compression method)"
    );
    let dir = env!("CARGO_MANIFEST_DIR");
    let err = CaptureReader::open(dir).err().map(|e| e.0);
    assert_eq!(err, Some(format!("{dir}: Is a directory")));
    let missing = format!("{dir}/no-such.pcap");
    let err = CaptureReader::open(&missing).err().map(|e| e.0);
    assert_eq!(err, Some(format!("{missing}: No such file or directory")));
}

#[test]
fn names_are_cleaned() {
    assert_eq!(
        super::name::display_name("/x/a\u{1b}[31m.pcap"),
        "a\\x1b[31m.pcap"
    );
    assert_eq!(super::name::display_name("-"), "-");
    let long = "é".repeat(300);
    let name = super::name::display_name(&long);
    assert_eq!(name.chars().count(), 255);
    assert!(name.ends_with('\u{2026}'));
}

/// The records of `data` taken in chunks of at most `max`, with each chunk's buffer given
/// back only after the next chunk was taken (as `parallel` does), mixed with single records.
fn read_chunked(src: &mut CaptureReader, max: usize) -> Vec<(u64, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut held: Vec<(super::Chunk, usize)> = Vec::new();
    let mut turn = 0usize;
    loop {
        turn += 1;
        if turn.is_multiple_of(5) {
            // A single record between chunks: the lending API still agrees.
            match src.next_record() {
                Some(r) => out.push((r.ts.to_bits(), r.linktype, r.data.to_vec())),
                None => break,
            }
            continue;
        }
        let Some(chunk) = src.next_chunk(max) else {
            break;
        };
        assert!(!chunk.is_empty() && chunk.len() <= max);
        let first = out.len();
        for r in chunk.records() {
            out.push((r.ts.to_bits(), r.linktype, r.data.to_vec()));
        }
        held.push((chunk, first));
        if held.len() > 2 {
            let (old, first) = held.remove(0);
            // Still intact while later chunks were read.
            for (i, r) in old.records().enumerate() {
                assert_eq!(out[first + i].2, r.data);
            }
            src.recycle(old.data);
        }
    }
    out
}

#[test]
fn chunks_hold_the_same_records_as_single_reads() {
    let recs: Vec<_> = (0..400)
        .map(|i| (i, i, pkt(i as u8, 1 + (i as usize * 7919) % 70_000)))
        .collect();
    let file = pcap(false, true, 0, 1, &recs);
    let whole = read(&file);
    assert_eq!(whole.records.len(), 400);
    for max in [1, 3, 64, 4096] {
        let mut src = CaptureReader::from_reader("t", io::Cursor::new(file.clone())).expect("pcap");
        assert_eq!(read_chunked(&mut src, max), whole.records, "max {max}");
        assert_eq!(src.error(), None);
        let mut src = CaptureReader::from_reader(
            "t",
            Trickle {
                data: file.clone(),
                at: 0,
                step: 999,
            },
        )
        .expect("pcap");
        assert_eq!(
            read_chunked(&mut src, max),
            whole.records,
            "trickled, max {max}"
        );
    }
    // Cut in the middle of a record: every whole record, then the same error.
    let cut = &file[..file.len() - 100];
    let want = read(cut);
    let mut src = CaptureReader::from_reader("t", io::Cursor::new(cut.to_vec())).expect("pcap");
    assert_eq!(read_chunked(&mut src, 50), want.records);
    assert_eq!(src.error().map(str::to_owned), want.error);
    // pcapng, several interfaces.
    let mut ng = shb(false);
    ng.extend(idb(false, 1, None));
    ng.extend(idb(false, 101, Some(9)));
    for i in 0..300u32 {
        ng.extend(epb(
            false,
            i % 2,
            u64::from(i) * 1000,
            &pkt(i as u8, 100 + i as usize * 37),
            None,
        ));
    }
    let whole = read(&ng);
    assert_eq!(whole.records.len(), 300);
    let mut src = CaptureReader::from_reader("t", io::Cursor::new(ng)).expect("pcapng");
    assert_eq!(read_chunked(&mut src, 7), whole.records);
}

/// An endless pcap stream (one record repeated), counting the bytes handed out; optionally
/// held after its first `release_after` bytes until `go` says so (a pipe with nothing to give).
struct Endless {
    head: Vec<u8>,
    record: Vec<u8>,
    at: usize,
    given: std::sync::Arc<std::sync::atomic::AtomicU64>,
    hold: Option<(usize, std::sync::mpsc::Receiver<()>)>,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::sync::atomic::Ordering;
        if let Some((after, go)) = &self.hold {
            if self.at >= *after {
                let _ = go.recv();
                self.hold = None;
            }
        }
        let mut n = 0;
        while n < buf.len() {
            let (src, off) = if self.at < self.head.len() {
                (&self.head, self.at)
            } else {
                (
                    &self.record,
                    (self.at - self.head.len()) % self.record.len(),
                )
            };
            let take = (src.len() - off).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&src[off..off + take]);
            n += take;
            self.at += take;
            if self
                .hold
                .as_ref()
                .is_some_and(|(after, _)| self.at >= *after)
            {
                break;
            }
        }
        self.given.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn endless(
    hold: Option<(usize, std::sync::mpsc::Receiver<()>)>,
) -> (Endless, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let file = pcap(false, false, 0, 1, &[(1, 2, pkt(3, 1000))]);
    let given = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stream = Endless {
        head: file[..24].to_vec(),
        record: file[24..].to_vec(),
        at: 0,
        given: given.clone(),
        hold,
    };
    (stream, given)
}

#[test]
fn reading_ahead_stops_a_few_blocks_ahead_and_ends_with_the_reader() {
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    let (stream, given) = endless(None);
    let mut src = CaptureReader::from_reader("t", stream).expect("pcap");
    for _ in 0..10 {
        assert_eq!(src.next_record().expect("a record").data, pkt(3, 1000));
    }
    std::thread::sleep(Duration::from_millis(200));
    let ahead = given.load(Ordering::Relaxed) as usize;
    // The blocks queued, the one the thread waits to hand over, the window, and the 4 bytes read
    // first to tell the format: never the stream.
    let bound = (super::prefetch::DEPTH + 2) * super::prefetch::BLOCK + 4;
    assert!(
        ahead > 0 && ahead <= bound,
        "read {ahead} bytes ahead, bound {bound}"
    );
    drop(src);
    std::thread::sleep(Duration::from_millis(100));
    let at_end = given.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        given.load(Ordering::Relaxed),
        at_end,
        "the thread went on reading"
    );
}

#[test]
fn a_pipe_read_reaches_the_parser_without_waiting_for_a_block() {
    // The stream gives its header and three records, then nothing until told: those three
    // records must come out while it waits (a capture piped from tcpdump, live).
    let (go, wait) = std::sync::mpsc::channel();
    let (stream, _) = endless(Some((24 + 3 * 1016, wait)));
    let mut src = CaptureReader::from_reader("t", stream).expect("pcap");
    for _ in 0..3 {
        assert_eq!(src.next_record().expect("a record").data, pkt(3, 1000));
    }
    go.send(()).expect("the stream waits");
    assert_eq!(src.next_record().expect("a record").data, pkt(3, 1000));
}

/// 50 records of a pcap file, read 5000 bytes at a time, and then what `at_end` does instead of
/// reporting the end of input (an error, a panic).
struct EndsBadly {
    data: io::Cursor<Vec<u8>>,
    at_end: fn() -> io::Result<usize>,
}

impl EndsBadly {
    fn new(at_end: fn() -> io::Result<usize>) -> Self {
        let recs: Vec<_> = (0..50).map(|i| (i, 0, pkt(i as u8, 700))).collect();
        let data = io::Cursor::new(pcap(false, false, 0, 1, &recs));
        EndsBadly { data, at_end }
    }
}

impl Read for EndsBadly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(5000);
        match self.data.read(&mut buf[..n])? {
            0 => (self.at_end)(),
            n => Ok(n),
        }
    }
}

#[test]
fn a_reading_thread_that_dies_is_a_read_error_after_every_record_read_before_it() {
    // A reader that panics (a bug below the parser, say in a decompressor) takes the reading
    // thread with it: the records read so far still come out, then a one-line error, never a
    // clean end that would pass a cut capture off as whole.
    let dying = EndsBadly::new(|| panic!("reader bug"));
    let out = read_all(CaptureReader::from_reader("t", dying).expect("pcap"));
    assert_eq!(out.records.len(), 50);
    assert_eq!(
        out.error.as_deref(),
        Some("t: read error: the reading thread stopped")
    );
}

#[test]
fn a_read_error_comes_after_every_record_read_before_it() {
    let failing = EndsBadly::new(|| Err(io::Error::other("device gone")));
    let out = read_all(CaptureReader::from_reader("t", failing).expect("pcap"));
    assert_eq!(out.records.len(), 50);
    assert_eq!(out.error.as_deref(), Some("t: read error: device gone"));
}
