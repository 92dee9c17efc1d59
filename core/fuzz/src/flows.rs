//! The flow layer over decoded frames: the table, its timers and evictions, reassembly,
//! detection and the records. The input is the decode target's (a link-type selector byte, then
//! frames, each with a step of the capture clock that may go back), run through one `Analyzer`
//! with a small flow cap and short timeouts, so that evictions, idle sweeps, closes, times that
//! step back and the final drain all happen within one input.
//!
//! Checked after every frame: the table holds at most its cap, the timer queue at most three
//! entries a live flow (plus its slack), and the verdicts kept for connections that speak again
//! (`flow::resume`) at most a quarter of the cap. At the end: the drain empties the table and its
//! queue, and no flow was reported twice (a record's `flow_id` is its flow's number). While
//! frames are read, finished records are handed over two at a time as they are made
//! (`Tracker::spill`, as a read ahead of Python does), in the middle of a frame's sweep if need
//! be. Each record's JSON line as the core writes a quiet one (`quiet_lines::push_line`) is one
//! line of JSON with the record's fields and facts, and so is its EVE flow event
//! (`eve_line::push_eve_line`) where it writes one; its CSV row (`csv_line::push_csv_row`) ends
//! in CRLF with every quoted cell closed.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use _core::detect::builtin::BUILTIN;
use _core::detect::engine::Engine;
use _core::detect::signature::load_texts_and;
use _core::pipeline::{Analyzer, Config, KnownPorts};
use _core::record::FlowRecord;
use serde_json::Value;

use crate::decode::input;

const MAX_FLOWS: usize = 32;
/// Records handed over at a time while frames are read (`Tracker::spill`).
const SPILL: usize = 2;

/// The shipped signatures, compiled once per process (their regexes take most of a second).
pub(crate) fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| {
        let sigs = load_texts_and(BUILTIN, &[]).expect("shipped signatures load");
        Arc::new(Engine::new(sigs, Default::default()))
    }))
}

/// The record's line: one line, JSON, with its fields and its facts as `meta_json` has them.
fn quiet_line_is_json(r: &FlowRecord, meta_json: &[u8]) {
    let assigned = ["name \"quoted\"\n".to_string()];
    let mut line = Vec::new();
    _core::quiet_lines::push_line(&mut line, r, &assigned, None);
    assert_eq!(
        line.iter().filter(|b| **b == b'\n').count(),
        1,
        "flow {}: one line",
        r.flow_id
    );
    assert!(
        line.ends_with(b"}\n"),
        "flow {}: one object, then the newline",
        r.flow_id
    );
    let value: Value = serde_json::from_slice(&line).expect("a quiet line is JSON");
    let facts: Value = serde_json::from_slice(meta_json).expect("the facts' JSON is JSON");
    assert_eq!(value["meta"], facts, "flow {}: its facts", r.flow_id);
    assert_eq!(value["flow_id"], r.flow_id);
    assert_eq!(value["protocol"], &*r.protocol);
    assert_eq!(value["history"], r.history);
    assert_eq!(value["assigned"][0], assigned[0]);
    assert_eq!(value["bytes_s2c"], r.bytes_s2c);

    let mut event = Vec::new();
    if _core::eve_line::push_eve_line(&mut event, r, &assigned, Some(meta_json)) {
        assert!(
            event.ends_with(b"}\n") && event.iter().filter(|b| **b == b'\n').count() == 1,
            "flow {}: one EVE event, then the newline",
            r.flow_id
        );
        let event: Value = serde_json::from_slice(&event).expect("an EVE line is JSON");
        assert_eq!(event["event_type"], "flow");
        assert_eq!(event["flow_id"], r.flow_id);
        assert_eq!(event["flow"]["pkts_toserver"], r.packets_c2s);
        assert_eq!(
            event["portwatch"]["meta"], facts,
            "flow {}: its facts",
            r.flow_id
        );
    } else {
        assert!(
            event.is_empty(),
            "flow {}: nothing written when declined",
            r.flow_id
        );
    }

    let mut row = Vec::new();
    if _core::csv_line::push_csv_row(&mut row, r, &assigned) {
        assert!(
            row.ends_with(b"\r\n"),
            "flow {}: a CSV row ends in CRLF",
            r.flow_id
        );
        let quotes = row.iter().filter(|b| **b == b'"').count();
        assert_eq!(
            quotes % 2,
            0,
            "flow {}: every quoted cell closed",
            r.flow_id
        );
    } else {
        assert!(
            row.is_empty(),
            "flow {}: nothing written when declined",
            r.flow_id
        );
    }
}

pub fn run(data: &[u8]) {
    let Some((link, frames)) = input(data) else {
        return;
    };
    let config = Config {
        max_flows: MAX_FLOWS,
        idle_tcp: 20.0,
        idle_udp: 6.0,
        linger: 1.0,
        ..Config::default()
    };
    let mut a = Analyzer::new(config, engine(), Arc::new(KnownPorts::default()), None);
    let mut reported = HashSet::new();
    let mut note = |records: Vec<FlowRecord>| {
        for r in records {
            assert!(
                reported.insert(r.flow_id),
                "flow {} reported twice",
                r.flow_id
            );
            // A record's facts are written and counted from its flow's frozen buffer and tail:
            // the same as from the map they decode to.
            let map = r.meta.to_meta();
            let mut ours = Vec::new();
            r.meta.push_json(&mut ours);
            let want = serde_json::to_vec(&_core::meta::Value::from(map.clone())).unwrap();
            assert_eq!(ours, want, "flow {}: its facts' JSON", r.flow_id);
            assert_eq!(
                r.meta.len(),
                map.len(),
                "flow {}: its facts' count",
                r.flow_id
            );
            quiet_line_is_json(&r, &ours);
        }
    };
    let spilled: Arc<Mutex<Vec<FlowRecord>>> = Arc::default();
    let into = Arc::clone(&spilled);
    a.flows.spill = Some((
        SPILL,
        Box::new(move |records, _classified, _stats, _live| {
            assert_eq!(records.len(), SPILL, "a batch's worth at a time");
            into.lock().unwrap().extend(records);
        }),
    ));
    for (ts, frame) in frames {
        a.packet(ts, link, frame);
        note(std::mem::take(&mut *spilled.lock().unwrap()));
        let live = a.flows.live_flows();
        assert!(live <= MAX_FLOWS, "{live} flows live, cap {MAX_FLOWS}");
        let entries = a.flows.timer_entries();
        assert!(
            entries <= 3 * live + 65,
            "{entries} timer entries for {live} live flows"
        );
        let resumable = a.flows.resumable_entries();
        assert!(
            resumable <= (MAX_FLOWS / 4).max(1),
            "{resumable} verdicts kept for resumption, cap {MAX_FLOWS} / 4"
        );
        note(std::mem::take(&mut a.flows.finished));
    }
    a.flows.spill = None;
    a.drain();
    note(std::mem::take(&mut a.flows.finished));
    assert_eq!(a.flows.live_flows(), 0, "flows left after the drain");
    assert_eq!(
        a.flows.timer_entries(),
        0,
        "timer entries left after the drain"
    );
}
