//! A quiet record's Suricata EVE flow event (`analyze --format eve`), written by the core: the
//! bytes `portwatch.report.eve.EveWriter` writes for the Python record the core would have made
//! of it, a record with no finding being one `event_type: "flow"` line and no alert.
//!
//! The field order and values follow `eve.events`: `timestamp` and `flow.start`/`flow.end` as
//! `datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f%z")` (microseconds rounded
//! half to even, as CPython rounds a float timestamp), `flow.age` as `int(end - start)`, at least
//! 0, `flow.state` from the Zeek-like state, and the record's own fields under `portwatch` as
//! `FlowRecord.as_dict` gives them. A record this cannot write the same way (a time outside years
//! 1970-9999, where Python falls back to a fixed text) is left to Python.
//! `tests/scale/test_quiet_records.py` checks the bytes either way.
#![forbid(unsafe_code)]

use crate::compact_json::{push_array, push_str, Members};
use crate::quiet_lines::push_tail;
use crate::record::FlowRecord;
use crate::tunnel::pyfmt::round_to;

/// Seconds from 1970 to the end of 9999: `datetime` holds no later year.
const END_OF_9999: f64 = 253_402_300_800.0;

/// Zeek's states of a connection that has ended, which Suricata calls `closed`.
const CLOSED: [&str; 10] = [
    "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR",
];

/// Whole seconds and microseconds of `ts` as `datetime.fromtimestamp` takes them apart (the
/// fraction's microseconds rounded half to even, a carry into the seconds), when they fall in
/// years 1970 to 9999.
fn seconds_and_micros(ts: f64) -> Option<(i64, u32)> {
    if !(0.0..END_OF_9999).contains(&ts) {
        return None;
    }
    let whole = ts.trunc();
    let mut micros = ((ts - whole) * 1e6).round_ties_even();
    let mut seconds = whole;
    if micros >= 1e6 {
        micros -= 1e6;
        seconds += 1.0;
    }
    // Both are exact integers here, the seconds below 2^38.
    let seconds = seconds as i64;
    (seconds < END_OF_9999 as i64).then_some((seconds, micros as u32))
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), for days from 0 on.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `"2026-11-26T15:13:53.123456+0000"` for `(seconds, micros)` from `seconds_and_micros`.
fn push_timestamp(out: &mut Vec<u8>, (seconds, micros): (i64, u32)) {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    let text = format!(
        "\"{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+0000\"",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
    );
    out.extend_from_slice(text.as_bytes());
}

/// Suricata's `flow.state` for a Zeek-like state (`eve.flow_state`).
fn flow_state(rec: &FlowRecord) -> &'static str {
    if rec.transport == "tcp" {
        if CLOSED.contains(&rec.state) {
            "closed"
        } else if rec.state == "S0" && rec.packets_s2c == 0 {
            "new"
        } else {
            "established"
        }
    } else if rec.packets_s2c > 0 {
        "established"
    } else {
        "new"
    }
}

/// `rec`'s flow event line, with `assigned` and no findings; false, with nothing written, when
/// Python would write it otherwise (see the module). `meta_json`: the record's meta already
/// serialized, else it is serialized here.
pub fn push_eve_line(
    out: &mut Vec<u8>,
    rec: &FlowRecord,
    assigned: &[String],
    meta_json: Option<&[u8]>,
) -> bool {
    let (Some(start), Some(end)) = (
        seconds_and_micros(rec.ts_start),
        seconds_and_micros(rec.ts_end),
    ) else {
        return false;
    };
    out.extend_from_slice(b"{\"timestamp\":");
    push_timestamp(out, start);
    let mut m = Members(out);
    m.int("flow_id", rec.flow_id);
    if let Some(pcap) = rec.pcap.as_deref().filter(|p| !p.is_empty()) {
        m.text("pcap_filename", pcap);
    }
    m.text("event_type", "flow");
    m.text("src_ip", &rec.src_ip);
    m.int("src_port", rec.src_port.into());
    m.text("dest_ip", &rec.dst_ip);
    m.int("dest_port", rec.dst_port.into());
    m.text("proto", &rec.transport.to_ascii_uppercase());
    if !rec.community_id.is_empty() {
        m.text("community_id", &rec.community_id);
    }
    let app = match &*rec.protocol {
        "" | "unknown" => "failed",
        name => name,
    };
    m.text("app_proto", app);
    m.0.extend_from_slice(b",\"flow\":{\"pkts_toserver\":");
    m.0.extend_from_slice(itoa::Buffer::new().format(rec.packets_c2s).as_bytes());
    m.int("pkts_toclient", rec.packets_s2c);
    m.int("bytes_toserver", rec.bytes_c2s);
    m.int("bytes_toclient", rec.bytes_s2c);
    m.key("start");
    push_timestamp(m.0, start);
    m.key("end");
    push_timestamp(m.0, end);
    // `int(end - start)`, at least 0: both times are finite here.
    m.int("age", (rec.ts_end - rec.ts_start).trunc().max(0.0) as u64);
    m.text("state", flow_state(rec));
    m.0.extend_from_slice(b",\"alerted\":false}");
    m.0.extend_from_slice(b",\"portwatch\":{\"protocol\":");
    push_str(m.0, &rec.protocol);
    m.key("assigned");
    push_array(m.0, assigned, |out, name| push_str(out, name));
    m.text("orientation", rec.orientation);
    m.float("confidence", round_to(rec.confidence, 3));
    m.float("duration", rec.duration);
    push_tail(out, rec, meta_json);
    out.extend_from_slice(b"}}\n");
    true
}

#[cfg(test)]
mod tests;
