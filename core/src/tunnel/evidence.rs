//! The words of a verdict: what in the shape made the kind, in numbers an analyst can check,
//! and the first tree's rule path. The sentences (and their number formats) are those of the
//! former Python `_evidence`, unchanged.
#![forbid(unsafe_code)]

use super::features::{
    self, keystrokes, median, opens, server_opens, turns, Features, Sequence, ANSWER, FULL, SMALL,
};
use super::forest::Step;
use super::pyfmt::{fixed, general, percent, pow10, round_int};

/// The flow's bytes each way over the whole flow, in kB.
#[derive(Clone, Copy, Debug)]
pub struct Volume {
    pub kb_up: f64,
    pub kb_down: f64,
}

pub fn evidence(
    kind: &str,
    seq: &Sequence,
    vol: Volume,
    f: &Features,
    protocol: &str,
    path: &[Step],
) -> String {
    let (sizes, iats) = (&seq.sizes[..], &seq.iats[..]);
    let Volume { kb_up, kb_down } = vol;
    let up: Vec<i64> = sizes.iter().copied().filter(|&s| s > 0).collect();
    let op = opens(sizes, iats);
    let volumes = format!("{} KB up, {} KB down", fixed(kb_up, 1), fixed(kb_down, 1));
    let mut text = match kind {
        "interactive" => {
            let small: Vec<i64> = up.iter().copied().filter(|&s| s <= SMALL).collect();
            let gaps: Vec<f64> = sizes
                .iter()
                .zip(iats)
                .filter(|(&s, _)| 0 < s && s <= SMALL)
                .map(|(_, &g)| g)
                .collect();
            let range = match (small.iter().min(), small.iter().max()) {
                (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
                _ => "?".into(),
            };
            format!(
                "{} client packets of {range} bytes at typing intervals (median {} ms), {} of them \
                 keystrokes echoed at once by a server packet of the same size",
                small.len(),
                fixed(median(&gaps), 0),
                keystrokes(sizes, iats)
            )
        }
        "forwarded-http" | "socks" => {
            let reqs = turns(sizes)
                .iter()
                .filter(|&&(c, d)| SMALL < c && c < FULL && d >= ANSWER)
                .count();
            let conns = if op.is_empty() {
                String::new()
            } else {
                format!(
                    "{} forwarded connection(s) opened, the client speaking first on {}; ",
                    op.len(),
                    op.iter().filter(|&&o| o > 0).count()
                )
            };
            let same = if protocol == "ssh" {
                " (an ssh -L forward and an ssh -D SOCKS proxy look the same)"
            } else {
                ""
            };
            format!(
                "{conns}{reqs} request-sized client packets each answered by a response down ({} of \
                 server packets full 1448-byte segments): {volumes}; web traffic{same}",
                percent(f.get("full_down"), 0)
            )
        }
        "forwarded-mail" => {
            let first = if op.is_empty() {
                "the server speaks first; ".to_string()
            } else {
                format!(
                    "the server speaks first (a greeting) on {} of {} forwarded connections; ",
                    op.iter().filter(|&&o| o < 0).count(),
                    op.len()
                )
            };
            format!(
                "{first}a command-reply dialogue of {} small exchanges ({volumes})",
                round_int(pow10(f.get("exchanges")) - 1.0)
            )
        }
        "x11" => {
            let so = server_opens(sizes, iats);
            let opened = if so > 0 {
                format!("the server opened {so} channel(s) to the client (X11 connections); ")
            } else {
                String::new()
            };
            format!(
                "{opened}steady two-way chatter of small packets ({} of server packets <= {SMALL} \
                 bytes, median gap {} ms, no typing pauses) with bursts of full segments up ({} of \
                 client packets): a remote X display",
                percent(f.get("down_small"), 0),
                fixed(pow10(f.get("iat_median")), 0),
                percent(f.get("up_full"), 0)
            )
        }
        "bulk" => {
            let (one, most) = if kb_up > kb_down {
                ("up", kb_up)
            } else {
                // Python's max() keeps the first of equals: kb_up.
                ("down", if kb_down > kb_up { kb_down } else { kb_up })
            };
            format!(
                "{} KB {one} in back-to-back full segments, no request/response rhythm ({} small \
                 exchanges): a file copy",
                fixed(most, 0),
                round_int(pow10(f.get("exchanges")) - 1.0)
            )
        }
        _ => format!("{} packets, {volumes}", sizes.len()),
    };
    if !path.is_empty() {
        let rule: Vec<String> = path
            .iter()
            .map(|&(i, t, le)| {
                let name = features::NAMES.get(i).copied().unwrap_or("?");
                format!("{name} {} {}", if le { "<=" } else { ">" }, general(t))
            })
            .collect();
        text.push_str(&format!(" [rule: {}]", rule.join(" and ")));
    }
    text
}
