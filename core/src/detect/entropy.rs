//! Does a byte string look fully encrypted?
//!
//! Byte entropy alone flags compressed data and many binary protocols; the exemptions of Wu et
//! al. (USENIX Security 2023, how the GFW spots fully encrypted traffic) keep false positives
//! low: Ex1 popcount per byte <= 3.4 or >= 4.6, Ex2 first six bytes printable, Ex3 more than half
//! printable, Ex4 a printable run longer than 20. A Shannon-entropy floor scaled to the sample
//! size completes it, because a short sample cannot reach 8 bits per byte. Their Ex5, "the bytes
//! match a known protocol", is every signature the engine tried, and here the framings too
//! generic to be a signature that still prove structure rather than a cipher stream
//! (`known_framing`).
#![forbid(unsafe_code)]

use crate::meta::{json, Map, Value};
use crate::tunnel::pyfmt::round_to;

pub const MIN_SAMPLE: usize = 16;
pub const SAMPLE: usize = 1024;

fn printable(b: u8) -> bool {
    (0x20..=0x7e).contains(&b)
}

/// What one pass over the sample counts.
struct Counts {
    /// Occurrences of each byte value.
    of: [u32; 256],
    /// The distinct byte values in order of first occurrence: Python's Counter sums in that order,
    /// and the float sum must come out the same to the last bit. One spare entry: `count` writes
    /// each byte at `distinct` whether it is new or not.
    order: [u8; 257],
    distinct: usize,
    longest_printable_run: usize,
}

fn count(data: &[u8]) -> Counts {
    let mut c = Counts {
        of: [0; 256],
        order: [0; 257],
        distinct: 0,
        longest_printable_run: 0,
    };
    let mut run = 0usize;
    // Without a branch on the bytes: on encrypted bytes, whether a byte is new or printable is
    // a coin toss the branch predictor loses (the loop took 5% of the core's time on a capture
    // of unrecognised flows, with a tenth of that in instructions).
    for &b in data {
        let k = usize::from(b);
        let n = c.of[k];
        c.order[c.distinct] = b;
        c.distinct += usize::from(n == 0);
        c.of[k] = n + 1;
        run = (run + 1) * usize::from(printable(b));
        c.longest_printable_run = c.longest_printable_run.max(run);
    }
    c
}

/// Counts below this have their entropy term worked out once per sample (`shannon`).
const TERM_MEMO: usize = 64;

/// Shannon entropy in bits per byte of a sample of `n` bytes, summed in Counter's order.
fn shannon(c: &Counts, n: usize) -> f64 {
    let n = n as f64;
    let term = |k: u32| {
        let p = f64::from(k) / n;
        p * p.log2()
    };
    // A term depends on its count alone, and counts repeat: an encrypted kilobyte has ~250
    // distinct bytes but a dozen distinct counts. Each term is the same float as computed
    // afresh, added in the same order: the sum is unchanged to the last bit.
    let mut memo = [None::<f64>; TERM_MEMO];
    let mut sum = 0.0f64;
    for &b in &c.order[..c.distinct] {
        let k = c.of[usize::from(b)];
        sum += match memo.get_mut(k as usize) {
            Some(slot) => *slot.get_or_insert_with(|| term(k)),
            None => term(k),
        };
    }
    -sum
}

/// Shannon entropy in bits per byte of `data`, summed in order of first occurrence (Python's
/// `Counter` order), to the last bit.
pub fn byte_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    shannon(&count(data), data.len())
}

/// Compressed data's magic numbers (RFC 1952, RFC 8878, the LZ4 frame format, a zip local header).
const COMPRESSED: [(&[u8], &str); 4] = [
    (b"\x1f\x8b", "Ex5 gzip"),
    (b"\x28\xb5\x2f\xfd", "Ex5 zstd"),
    (b"\x04\x22\x4d\x18", "Ex5 lz4"),
    (b"PK\x03\x04", "Ex5 zip"),
];
/// A zlib stream's second byte for each compression level (RFC 1950: CMF 0x78, FCHECK).
const ZLIB_SECOND: [u8; 4] = [0x01, 0x5e, 0x9c, 0xda];
/// A TLS record's longest length: TLSCiphertext's 2^14 + 2048 (RFC 5246 6.2.3).
const TLS_RECORD_MAX: u16 = 18432;

/// Why these first bytes are a known structure and not a cipher stream (Ex5), or None: a TLS
/// record seen mid-stream (its handshake not captured), compressed data, or a protocol tag of
/// four ASCII letters or digits (ZBXD, RFB0, MQTT...), also after a 4-byte length prefix. Ex2
/// needs six printable bytes, but a four-character alphanumeric tag is already 1 in 300 for
/// random bytes.
pub fn known_framing(head: &[u8]) -> Option<&'static str> {
    if let [kind, 3, minor, hi, lo, ..] = *head {
        let len = u16::from_be_bytes([hi, lo]);
        if (0x14..=0x18).contains(&kind) && minor <= 4 && (1..=TLS_RECORD_MAX).contains(&len) {
            return Some("Ex5 TLS record framing");
        }
    }
    if let Some((_, name)) = COMPRESSED.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(name);
    }
    if let [0x78, second, ..] = *head {
        if ZLIB_SECOND.contains(&second) {
            return Some("Ex5 zlib");
        }
    }
    if head
        .get(..4)
        .is_some_and(|t| t.iter().all(u8::is_ascii_alphanumeric))
    {
        return Some("Ex5 ASCII protocol tag");
    }
    if head.starts_with(b"\0\0")
        && head
            .get(4..8)
            .is_some_and(|t| t.iter().all(u8::is_ascii_alphabetic))
    {
        return Some("Ex5 length-prefixed ASCII tag");
    }
    None
}

/// The same keys and values as Python's `entropy_facts(data).as_dict()`, with Ex5
/// (`known_framing`) deciding last: a sample that would look encrypted but opens with a known
/// framing has that as its `exempt_rule`.
pub fn entropy_facts(data: &[u8]) -> Map<String, Value> {
    let data = data.get(..SAMPLE).unwrap_or(data);
    let n = data.len();
    let mut m = Map::with_capacity(7);
    if n == 0 {
        m.insert("length".into(), json!(0));
        m.insert("entropy".into(), json!(0.0));
        m.insert("popcount".into(), json!(0.0));
        m.insert("printable".into(), json!(0.0));
        m.insert("longest_printable_run".into(), json!(0));
        m.insert("exempt_rule".into(), json!("empty"));
        m.insert("looks_encrypted".into(), json!(false));
        return m;
    }
    // One pass over the bytes; the bit and printable totals come from the 256 counts after it.
    let counts = count(data);
    let ent = shannon(&counts, n);
    let max_ent = if n > 1 {
        (n.min(256) as f64).log2()
    } else {
        1.0
    };
    let (mut bits, mut printable_n) = (0usize, 0usize);
    for &b in &counts.order[..counts.distinct] {
        let k = counts.of[usize::from(b)] as usize;
        bits += k * b.count_ones() as usize;
        if printable(b) {
            printable_n += k;
        }
    }
    let pop = bits as f64 / n as f64;
    let printable_frac = printable_n as f64 / n as f64;
    let prefix = n >= 6 && data.iter().take(6).all(|b| printable(*b));
    let run = counts.longest_printable_run;
    let mut exempt = if pop <= 3.4 || pop >= 4.6 {
        Some("Ex1 popcount")
    } else if prefix {
        Some("Ex2 printable prefix")
    } else if printable_frac > 0.5 {
        Some("Ex3 mostly printable")
    } else if run > 20 {
        Some("Ex4 printable run")
    } else {
        None
    };
    let mut looks = exempt.is_none() && n >= MIN_SAMPLE && ent >= 0.85 * max_ent;
    if let Some(framing) = known_framing(data).filter(|_| looks) {
        exempt = Some(framing);
        looks = false;
    }
    if exempt.is_none() && n < MIN_SAMPLE {
        exempt = Some("too short");
    }
    m.insert("length".into(), json!(n));
    m.insert("entropy".into(), json!(round_to(ent, 3)));
    m.insert("popcount".into(), json!(round_to(pop, 3)));
    m.insert("printable".into(), json!(round_to(printable_frac, 3)));
    m.insert("longest_printable_run".into(), json!(run));
    m.insert(
        "exempt_rule".into(),
        exempt.map_or(Value::Null, |e| json!(e)),
    );
    m.insert("looks_encrypted".into(), json!(looks));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers of the retired Python engine's `entropy_facts(...).as_dict()` (Python 3.11).
    #[test]
    fn python_answers() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"",
                r#"{"length":0,"entropy":0.0,"popcount":0.0,"printable":0.0,"longest_printable_run":0,"exempt_rule":"empty","looks_encrypted":false}"#,
            ),
            (
                b"GET / HTTP/1.1\r\n",
                r#"{"length":16,"entropy":3.328,"popcount":2.938,"printable":0.875,"longest_printable_run":14,"exempt_rule":"Ex1 popcount","looks_encrypted":false}"#,
            ),
        ];
        for (data, want) in cases {
            let want: Value = serde_json::from_str(want).unwrap();
            assert_eq!(Value::Object(entropy_facts(data)), want);
        }
    }

    #[test]
    fn known_framings() {
        assert_eq!(
            known_framing(b"\x17\x03\x03\x00\x45"),
            Some("Ex5 TLS record framing")
        );
        assert_eq!(known_framing(b"\x17\x03\x03\x00\x00"), None); // an empty record
        assert_eq!(known_framing(b"\x17\x03\x03\x48\x01"), None); // past 2^14 + 2048
        assert_eq!(known_framing(b"\x17\x03\x05\x00\x45"), None);
        assert_eq!(known_framing(b"\x1f\x8b\x08\x00"), Some("Ex5 gzip"));
        assert_eq!(known_framing(b"\x78\x9c\x01"), Some("Ex5 zlib"));
        assert_eq!(known_framing(b"\x78\x02\x01"), None);
        assert_eq!(
            known_framing(b"ZBXD\x01\x00\x00"),
            Some("Ex5 ASCII protocol tag")
        );
        assert_eq!(
            known_framing(b"RFB0\x8a\x17"),
            Some("Ex5 ASCII protocol tag")
        );
        assert_eq!(known_framing(b"ZB\xc4D\x01\x00\x00"), None); // Latin-1: not ASCII
        assert_eq!(known_framing(b"ZB-D\x01\x00\x00"), None);
        assert_eq!(
            known_framing(b"\x00\x00\x01\x2aMQTT"),
            Some("Ex5 length-prefixed ASCII tag")
        );
        assert_eq!(known_framing(b"\x00\x00\x01\x2aMQ1T"), None); // letters only
        assert_eq!(known_framing(b"\x00\x00\x01"), None);
    }

    /// A sample that would look encrypted but opens with a known framing is exempt by Ex5; one
    /// exempt by an earlier rule or too flat keeps that answer.
    #[test]
    fn ex5_decides_last() {
        let mut framed = b"\x17\x03\x03\x01\x27".to_vec();
        framed.extend_from_slice(&lcg_bytes()[5..]);
        let facts = entropy_facts(&framed);
        assert_eq!(facts["exempt_rule"], json!("Ex5 TLS record framing"));
        assert_eq!(facts["looks_encrypted"], json!(false));
        let flat =
            entropy_facts(b"\x17\x03\x03\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        assert_eq!(flat["exempt_rule"], json!("Ex1 popcount"));
    }

    /// 300 bytes of a fixed LCG: random-looking, the same every run.
    fn lcg_bytes() -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..300)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn python_vectors_random_like() {
        // The LCG's bytes: the answer is Python's.
        let data = lcg_bytes();
        let want = r#"{"length":300,"entropy":7.28,"popcount":4.157,"printable":0.32,"longest_printable_run":5,"exempt_rule":null,"looks_encrypted":true}"#;
        assert_eq!(
            Value::Object(entropy_facts(&data)),
            serde_json::from_str::<Value>(want).unwrap()
        );
    }

    /// The counts, first-occurrence order and longest printable run of the branch-free pass are
    /// those of the plain loop, for samples of all 256 byte values (the order's spare entry
    /// written past the last) and of few.
    #[test]
    fn one_pass_counts_as_the_plain_loop() {
        fn plain(data: &[u8]) -> (Vec<u32>, Vec<u8>, usize) {
            let mut of = vec![0u32; 256];
            let mut order = Vec::new();
            let (mut run, mut longest) = (0usize, 0usize);
            for &b in data {
                if of[usize::from(b)] == 0 {
                    order.push(b);
                }
                of[usize::from(b)] += 1;
                run = if printable(b) { run + 1 } else { 0 };
                longest = longest.max(run);
            }
            (of, order, longest)
        }
        let mut x: u32 = 99;
        let mut every: Vec<u8> = (0..=255u8).rev().collect();
        every.extend((0..SAMPLE - 256).map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        }));
        let samples: [&[u8]; 4] = [&every, b"", b"aaaa bbbb\x00cc", &every[..256]];
        for data in samples {
            let c = count(data);
            let (of, order, longest) = plain(data);
            assert_eq!(c.of.to_vec(), of);
            assert_eq!(c.order[..c.distinct].to_vec(), order);
            assert_eq!(c.longest_printable_run, longest);
        }
        assert_eq!(count(&every).distinct, 256);
    }

    /// The memoised sum is the plain one to the last bit, for samples of every length up to
    /// `SAMPLE`, counts below and above `TERM_MEMO`, few and many distinct bytes.
    #[test]
    fn memoised_terms_sum_to_the_same_bits() {
        fn plain(c: &Counts, n: usize) -> f64 {
            let n = n as f64;
            let mut sum = 0.0f64;
            for &b in &c.order[..c.distinct] {
                let p = f64::from(c.of[usize::from(b)]) / n;
                sum += p * p.log2();
            }
            -sum
        }
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as u32
        };
        for len in (1..=SAMPLE).step_by(7) {
            for alphabet in [2u32, 16, 97, 256] {
                let data: Vec<u8> = (0..len).map(|_| (next() % alphabet) as u8).collect();
                let c = count(&data);
                assert_eq!(
                    shannon(&c, len).to_bits(),
                    plain(&c, len).to_bits(),
                    "{len} bytes over {alphabet} values"
                );
            }
        }
    }
}
