//! Prints what the decoder makes of each frame, in the format of tests/oracle/dump_decode.py.
//!
//! Input on stdin: one frame a line, "ts linktype hex" (`dump_decode.py frames FILE...` writes
//! it). Compare: `diff <(python tests/oracle/dump_decode.py decode F) <(python
//! tests/oracle/dump_decode.py frames F | cargo run --example dump_decode)`.

use std::io::{BufRead, BufWriter, Write};

use _core::decode::{Decoded, Decoder};

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

fn main() -> std::io::Result<()> {
    let mut dec = Decoder::new();
    let stdin = std::io::stdin();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        let mut parts = line.split_whitespace();
        let ts: f64 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0.0);
        let linktype: u32 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
        let frame = const_hex::decode(parts.next().unwrap_or("")).unwrap_or_default();
        let text = match dec.decode(ts, linktype, &frame) {
            Decoded::Packet(p) => {
                let encap = p.encap.as_ref().map_or("-".to_string(), |e| e.join(","));
                format!(
                    "packet {} {} {} {} {} {} {} {} {:016x} {}",
                    p.proto,
                    p.src,
                    p.dst,
                    p.sport,
                    p.dport,
                    p.flags,
                    p.seq,
                    p.payload.len(),
                    fnv(p.payload),
                    encap
                )
            }
            Decoded::NotIp => "notip".to_string(),
            Decoded::UnsupportedLink => "unsupported".to_string(),
            Decoded::Malformed => "malformed".to_string(),
            Decoded::Held => "held".to_string(),
        };
        let s = dec.stats();
        writeln!(out, "{i} {text} | {} {}", s.fragments, s.fragments_dropped)?;
    }
    out.flush()
}
