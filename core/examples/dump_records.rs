//! Print every record of a capture as the oracle script `tests/oracle/dump_records.py` does:
//! `ts-repr ts-bits linktype length crc32` per record, then the malformed count and any error.
//!
//! cargo run --example dump_records -- FILE   ("-" reads standard input)
use _core::source::CaptureReader;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: dump_records FILE");
        std::process::exit(2);
    };
    let mut src = match CaptureReader::open(&path) {
        Ok(src) => src,
        Err(e) => {
            println!("open error: {e}");
            return;
        }
    };
    let mut out = String::new();
    while let Some(rec) = src.next_record() {
        let mut crc = flate2::Crc::new();
        crc.update(rec.data);
        out.push_str(&format!(
            "{:?} {:016x} {} {} {:08x}\n",
            rec.ts,
            rec.ts.to_bits(),
            rec.linktype,
            rec.data.len(),
            crc.sum()
        ));
    }
    out.push_str(&format!("malformed: {}\n", src.counters().malformed));
    out.push_str(&format!("error: {}\n", src.error().unwrap_or("None")));
    print!("{out}");
}
