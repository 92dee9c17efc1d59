//! A quiet record's CSV row (`analyze --format csv`), written by the core: the bytes
//! `portwatch.report.csvout.CsvWriter` writes for the Python record the core would have made of
//! it, a record with no finding.
//!
//! The cells follow `csvout.flat_row` in `schema.CSV_FLOW_COLUMNS`' order: the record's fields as
//! Python's `str` writes them (floats as `repr`), the flat metadata columns (`_flat`: a list's
//! items joined by commas, a map as sorted JSON, nothing for none), `findings` and the whole
//! `meta` as JSON; a text cell that a spreadsheet would read as a formula gets a leading
//! apostrophe (`safe_cell`). Then Python's `csv.writer` (the excel dialect, QUOTE_MINIMAL): a cell
//! holding a comma, a quote or a line break is quoted, its quotes doubled, and the row ends in
//! CRLF. A metadata value whose text only Python writes (a list inside a list, a map inside a
//! list: their `repr`) leaves the record to Python. `tests/scale/test_quiet_records.py` checks
//! the bytes either way.
#![forbid(unsafe_code)]

use crate::meta::{FlowMeta, Value};
use crate::pyjson::{dumps_sorted, dumps_value_sorted};
use crate::record::FlowRecord;
use crate::tunnel::pyfmt::{repr, round_to};

/// The flat metadata columns, in `schema.META_COLUMNS`' order (`_core.CSV_META_COLUMNS`: the
/// csv sink lets the core write rows only while the two are the same).
pub const META_COLUMNS: [&str; 12] = [
    "sni",
    "alpn",
    "ja3",
    "ja4",
    "ja3s",
    "hassh",
    "hassh_server",
    "ssh_client",
    "ssh_server",
    "http_host",
    "http_user_agent",
    "dns_query",
];

/// What a text cell may not start with (`csvout._FORMULA_START`).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One cell, before it is written.
enum Cell<'a> {
    /// Text: neutralised against formulas, then quoted as needed.
    Text(&'a str),
    /// A number or a bool as Python's `str` spells it: written as it is.
    Plain(&'a str),
}

/// The row so far: cells with their commas.
struct Row<'o> {
    out: &'o mut Vec<u8>,
    cells: usize,
}

impl Row<'_> {
    fn cell(&mut self, cell: Cell<'_>) {
        if self.cells > 0 {
            self.out.push(b',');
        }
        self.cells += 1;
        let text = match cell {
            Cell::Plain(text) => {
                self.out.extend_from_slice(text.as_bytes());
                return;
            }
            Cell::Text(text) => text,
        };
        let formula = text.starts_with(FORMULA_START);
        if !text.contains([',', '"', '\r', '\n']) {
            if formula {
                self.out.push(b'\'');
            }
            self.out.extend_from_slice(text.as_bytes());
            return;
        }
        self.out.push(b'"');
        if formula {
            self.out.push(b'\'');
        }
        for piece in text.split_inclusive('"') {
            self.out.extend_from_slice(piece.as_bytes());
            if piece.ends_with('"') {
                self.out.push(b'"');
            }
        }
        self.out.push(b'"');
    }

    fn text(&mut self, text: &str) {
        self.cell(Cell::Text(text));
    }

    fn int(&mut self, value: u64) {
        self.cell(Cell::Plain(itoa::Buffer::new().format(value)));
    }

    fn float(&mut self, value: f64) {
        self.cell(Cell::Plain(&repr(value)));
    }
}

/// Python's `str` of a JSON number: an int as its digits, a float as its `repr`.
fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        repr(n.as_f64().unwrap_or(0.0))
    }
}

/// Python's `str` of a list item (`_flat`'s join); None where that is a `repr` of a list or a map.
fn item_text(item: &Value) -> Option<String> {
    Some(match item {
        Value::Null => "None".into(),
        Value::Bool(b) => (if *b { "True" } else { "False" }).into(),
        Value::Number(n) => number_text(n),
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => return None,
    })
}

/// A flat metadata column's cell (`_flat(peek(meta, key))`); None when only Python writes it.
fn meta_cell(row: &mut Row<'_>, value: Option<&Value>) -> Option<()> {
    match value {
        None | Some(Value::Null) => row.text(""),
        Some(Value::String(s)) => row.text(s),
        Some(Value::Bool(b)) => row.cell(Cell::Plain(if *b { "True" } else { "False" })),
        Some(Value::Number(n)) => row.cell(Cell::Plain(&number_text(n))),
        Some(Value::Array(items)) => {
            let texts = items.iter().map(item_text).collect::<Option<Vec<_>>>()?;
            row.text(&texts.join(","));
        }
        Some(object @ Value::Object(_)) => row.text(&dumps_value_sorted(object)),
    }
    Some(())
}

/// `rec`'s CSV row, with `assigned` and no findings; false, with nothing written, when Python
/// would write a metadata cell otherwise (see the module).
pub fn push_csv_row(out: &mut Vec<u8>, rec: &FlowRecord, assigned: &[String]) -> bool {
    let meta: &FlowMeta = &rec.meta;
    let values: Vec<_> = META_COLUMNS.iter().map(|k| meta.value_of(k)).collect();
    let start = out.len();
    let mut row = Row { out, cells: 0 };
    row.int(rec.flow_id);
    row.text(&rec.community_id);
    row.text(rec.pcap.as_deref().unwrap_or(""));
    row.float(rec.ts_start);
    row.float(rec.ts_end);
    row.float(rec.duration);
    row.text(rec.transport);
    row.text(&rec.src_ip);
    row.int(rec.src_port.into());
    row.text(&rec.dst_ip);
    row.int(rec.dst_port.into());
    row.text(rec.orientation);
    row.text(&rec.protocol);
    row.float(round_to(rec.confidence, 3));
    row.text(&assigned.join(" "));
    row.int(rec.packets_c2s);
    row.int(rec.packets_s2c);
    row.int(rec.bytes_c2s);
    row.int(rec.bytes_s2c);
    row.text(rec.state);
    row.text(&rec.history);
    for value in &values {
        if meta_cell(&mut row, value.as_deref()).is_none() {
            row.out.truncate(start);
            return false;
        }
    }
    row.text("[]");
    row.text(&dumps_sorted(meta));
    row.out.extend_from_slice(b"\r\n");
    true
}

#[cfg(test)]
mod tests;
