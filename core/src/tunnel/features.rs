//! Readable numbers from `meta.shape` (see flow/shape.rs): the sequence after the handshake,
//! client turns, forwarded-connection openings, keystroke echoes, and the feature vector the
//! forest reads. Sizes are signed (+ client to server), gaps in ms.
//!
//! Every number is computed the way the former Python version (portwatch/tunnels.py before
//! issue 15) did, operation for operation, so verdicts and evidence stay byte-identical: counts
//! are integers, divisions are of exactly represented integers, `log10` is libm's.
#![forbid(unsafe_code)]

use crate::meta::{Map, Value};

/// Fewer sequence packets than this (after SSH's authentication): too little to say anything.
pub const MIN_PACKETS_SSH: usize = 12;
pub const MIN_PACKETS_OTHER: usize = 4;
/// A keystroke, its echo, an ACK-like channel message (36-100 bytes with the MAC).
pub const SMALL: i64 = 120;
/// A full or nearly full segment.
pub const FULL: i64 = 1000;
/// SSH's user authentication (service request to success, channel open) follows the key
/// exchange and looks the same whatever the tunnel carries: the features skip it.
pub const SSH_AUTH_PACKETS: usize = 10;
/// A forwarded connection opening in SSH: the client's CHANNEL_OPEN direct-tcpip (92-116 bytes
/// with the host names of a local forward) answered by a CHANNEL_OPEN_CONFIRMATION (17 bytes of
/// payload: 44 bytes with chacha20-poly1305, 52 with AES-GCM, 68 with a CTR cipher and an ETM
/// MAC). A CHANNEL_SUCCESS (36 bytes on the wire) is too small to be a confirmation.
pub const OPEN_UP: (i64, i64) = (88, 240);
pub const OPEN_CONFIRM: (i64, i64) = (40, 72);
/// A channel the server opens (X11 forwarding, a remote -R forward): CHANNEL_OPEN "x11" with the
/// originator address (37 bytes of payload: 64-100 on the wire), confirmed by the client.
pub const SERVER_OPEN: (i64, i64) = (56, 120);
/// A keystroke: one small client packet after a human pause, echoed within ECHO_MS by a server
/// packet of about the same size (one character back, same framing).
pub const KEY_GAP_MS: f64 = 30.0;
pub const ECHO_MS: f64 = 30.0;
pub const ECHO_SLACK: i64 = 16;
pub const PAUSE_MS: f64 = 300.0;
pub const OPEN_GAP_MS: f64 = 30.0;
/// Bytes down that answer a request (a page, a file), not an acknowledgement.
pub const ANSWER: i64 = 200;
/// A full Ethernet-MSS segment (1448 bytes of payload with timestamps).
pub const MSS_FULL: i64 = 1400;
/// Longest sequence read (the core keeps at most flow::shape::MAX_SHAPE_PACKETS).
pub const MAX_SEQUENCE: usize = 4096;
/// Largest packet size believed: sums of MAX_SEQUENCE of them stay exact in i64 and f64.
pub const MAX_SIZE: i64 = 1 << 40;

/// The features the model is trained on, in the order of its `mean`, `std` and centroids (the
/// tree prefers the first ones when two splits tie): what the protocol inside does, then
/// proportions and timing.
pub const MODEL_FEATURES: [&str; 18] = [
    "opens",
    "server_first",
    "server_opens",
    "keystrokes",
    "req_answer",
    "echo",
    "one_way",
    "up_full",
    "full_down",
    "down_per_turn",
    "exchanges",
    "sessions",
    "turns",
    "symmetry",
    "up_share",
    "up_small",
    "down_small",
    "iat_median",
];

/// Every feature computed, in the order `tunnels.features()` has always returned them.
pub const NAMES: [&str; 20] = [
    "up_share",
    "up_small",
    "down_small",
    "full_down",
    "one_way",
    "bytes_ratio",
    "symmetry",
    "iat_median",
    "pauses",
    "echo",
    "req_answer",
    "turns",
    "down_per_turn",
    "exchanges",
    "opens",
    "server_opens",
    "keystrokes",
    "server_first",
    "sessions",
    "up_full",
];

/// Index of a feature in `NAMES`.
pub fn index(name: &str) -> Option<usize> {
    NAMES.iter().position(|n| *n == name)
}

/// Feature values by `NAMES` index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Features(pub [f64; 20]);

impl Features {
    pub fn get(&self, name: &str) -> f64 {
        index(name)
            .and_then(|i| self.0.get(i).copied())
            .unwrap_or(0.0)
    }
}

/// The sizes and gaps the features read (for SSH without the user authentication).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sequence {
    pub sizes: Vec<i64>,
    pub iats: Vec<f64>,
}

/// Python's `int(x)` of a value the core wrote (an integer; a float is truncated).
fn as_size(v: &Value) -> Option<i64> {
    let n = match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => i,
            None => {
                let f = n.as_f64()?;
                if !f.is_finite() || f.abs() > MAX_SIZE as f64 {
                    return None;
                }
                f.trunc() as i64
            }
        },
        Value::Bool(b) => i64::from(*b),
        _ => return None,
    };
    (n.unsigned_abs() <= MAX_SIZE.unsigned_abs()).then_some(n)
}

/// Python's `float(x)`.
fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// `shape.get(key) or []` as a list; None when it is something else (not the core's shape).
fn list<'a>(shape: &'a Map<String, Value>, key: &str) -> Option<&'a [Value]> {
    match shape.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Some(&[]),
        Some(Value::Array(a)) if a.len() <= MAX_SEQUENCE => Some(a),
        _ => None,
    }
}

/// The sequence of a shape; None when the shape is malformed (not a list of numbers, lists of
/// different lengths, too long).
pub fn sequence(shape: &Map<String, Value>, protocol: &str) -> Option<Sequence> {
    let sizes: Vec<i64> = list(shape, "sizes")?
        .iter()
        .map(as_size)
        .collect::<Option<_>>()?;
    let iats: Vec<f64> = list(shape, "iat_ms")?
        .iter()
        .map(as_float)
        .collect::<Option<_>>()?;
    Sequence::of(sizes, iats, protocol)
}

impl Sequence {
    /// A shape's sizes and gaps as the features read them (for SSH without the user
    /// authentication); None when their lengths differ or pass `MAX_SEQUENCE`.
    pub fn of(sizes: Vec<i64>, iats: Vec<f64>, protocol: &str) -> Option<Sequence> {
        if sizes.len() != iats.len() || sizes.len() > MAX_SEQUENCE {
            return None;
        }
        let skip = if protocol == "ssh" && sizes.len() >= SSH_AUTH_PACKETS {
            SSH_AUTH_PACKETS
        } else {
            0
        };
        Some(Sequence {
            sizes: sizes.get(skip..).unwrap_or_default().to_vec(),
            iats: iats.get(skip..).unwrap_or_default().to_vec(),
        })
    }
}

/// `shape[key]["bytes"]` (0 when absent); None when it is not a number.
pub fn dir_bytes(shape: &Map<String, Value>, key: &str) -> Option<f64> {
    match shape.get(key) {
        None | Some(Value::Null) => Some(0.0),
        Some(Value::Object(d)) => match d.get("bytes") {
            None => Some(0.0),
            Some(v) => as_float(v),
        },
        _ => None,
    }
}

/// Python's `statistics`-free median of the former code: the middle value, or the mean of the
/// two middle ones; 0 when empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut s = xs.to_vec();
    // Stable and NaN-tolerant like Python's sort of floats (equal values keep their order).
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s.get(m).copied().unwrap_or(0.0)
    } else {
        let (a, b) = (
            s.get(m - 1).copied().unwrap_or(0.0),
            s.get(m).copied().unwrap_or(0.0),
        );
        (a + b) / 2.0
    }
}

/// The median of integers as Python computed it: exact middle, or the float mean of two.
fn median_int(xs: &[i64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut s = xs.to_vec();
    s.sort_unstable();
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s.get(m).copied().unwrap_or(0) as f64
    } else {
        let sum = s.get(m - 1).copied().unwrap_or(0) + s.get(m).copied().unwrap_or(0);
        sum as f64 / 2.0
    }
}

/// Client turns: (bytes the client sent in a run of client packets, bytes the server sent back
/// before the client's next run).
pub fn turns(sizes: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &s in sizes {
        if s > 0 {
            match out.last_mut() {
                Some(last) if last.1 == 0 => last.0 += s,
                _ => out.push((s, 0)),
            }
        } else if let Some(last) = out.last_mut() {
            last.1 -= s;
        }
    }
    out
}

fn sign(x: i64) -> i64 {
    x.signum()
}

fn gap(iats: &[f64], i: usize) -> f64 {
    iats.get(i).copied().unwrap_or(0.0)
}

fn size(sizes: &[i64], i: usize) -> i64 {
    sizes.get(i).copied().unwrap_or(0)
}

fn within(x: i64, (lo, hi): (i64, i64)) -> bool {
    lo <= x && x <= hi
}

/// Forwarded-connection openings: a channel-open-sized client packet that starts the
/// sequence's client traffic or comes after a lull (OPEN_GAP_MS; a new connection follows a
/// user action) or right after another opening, answered by a small confirmation. For each, +1
/// when the client speaks first on the new connection (HTTP: the request), -1 when the server
/// does (SMTP, POP3, IMAP: a greeting), 0 when the sequence ends there.
pub fn opens(sizes: &[i64], iats: &[f64]) -> Vec<i64> {
    let mut out = Vec::new();
    let first_up = sizes.iter().position(|&s| s > 0);
    let mut last: Option<usize> = None;
    for i in 0..sizes.len().saturating_sub(1) {
        let (a, b) = (size(sizes, i), -size(sizes, i + 1));
        if !(within(a, OPEN_UP) && within(b, OPEN_CONFIRM)) {
            continue;
        }
        let after_last = last.is_some_and(|l| l + 2 == i);
        if Some(i) == first_up || gap(iats, i) >= OPEN_GAP_MS || after_last {
            let nxt = size(sizes, i + 2);
            if after_last && out.pop().is_some() {
                // Parallel openings: the earlier one's "next" was this one.
                out.push(sign(nxt));
            }
            out.push(sign(nxt));
            last = Some(i);
        }
    }
    out
}

/// Channels the server opens after a lull, each confirmed at once by the client: X11
/// forwarding (every X client the remote side starts) or a remote (-R) forward.
pub fn server_opens(sizes: &[i64], iats: &[f64]) -> usize {
    (0..sizes.len().saturating_sub(1))
        .filter(|&i| {
            let (a, b) = (-size(sizes, i), size(sizes, i + 1));
            within(a, SERVER_OPEN)
                && within(b, OPEN_CONFIRM)
                && (i == 0 || gap(iats, i) >= OPEN_GAP_MS)
                && gap(iats, i + 1) < OPEN_GAP_MS
        })
        .count()
}

/// Keystroke-echo pairs: a small client packet after a human pause, echoed at once by a server
/// packet of about its size (a terminal echoes each character as typed).
pub fn keystrokes(sizes: &[i64], iats: &[f64]) -> usize {
    (0..sizes.len().saturating_sub(1))
        .filter(|&i| {
            let (a, b) = (size(sizes, i), -size(sizes, i + 1));
            0 < a
                && a <= SMALL
                && (a - b).abs() <= ECHO_SLACK
                && gap(iats, i) >= KEY_GAP_MS
                && gap(iats, i + 1) < ECHO_MS
        })
        .count()
}

/// Stretches of traffic separated by pauses of PAUSE_MS or more.
pub fn sessions(sizes: &[i64], iats: &[f64]) -> usize {
    if sizes.is_empty() {
        return 0;
    }
    1 + iats
        .get(1..)
        .unwrap_or_default()
        .iter()
        .filter(|&&g| g >= PAUSE_MS)
        .count()
}

/// Fewest sequence packets for a verdict.
pub fn min_packets(protocol: &str) -> usize {
    if protocol == "ssh" {
        MIN_PACKETS_SSH
    } else {
        MIN_PACKETS_OTHER
    }
}

fn count<T>(xs: &[T], f: impl Fn(&T) -> bool) -> usize {
    xs.iter().filter(|x| f(x)).count()
}

/// `a / b` of counts, or 0.0 when b is 0.
fn share(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn log10_1p(n: usize) -> f64 {
    (1.0 + n as f64).log10()
}

/// The feature vector of a sequence; None when it is too short. `c2s_bytes`, `s2c_bytes`: the
/// whole flow's bytes each way (`shape.c2s.bytes`).
pub fn features(
    seq: &Sequence,
    protocol: &str,
    c2s_bytes: f64,
    s2c_bytes: f64,
) -> Option<Features> {
    let (sizes, iats) = (&seq.sizes[..], &seq.iats[..]);
    let n = sizes.len();
    if n < min_packets(protocol) {
        return None;
    }
    let up: Vec<i64> = sizes.iter().copied().filter(|&s| s > 0).collect();
    let down: Vec<i64> = sizes.iter().filter(|&&s| s < 0).map(|&s| -s).collect();
    let (n_up, n_down) = (up.len(), down.len());
    let echoes = sizes
        .windows(2)
        .filter(|w| matches!(w, [a, b] if 0 < *a && *a <= SMALL && -200 <= *b && *b < 0))
        .count();
    let small_up = count(&up, |&s| s <= SMALL);
    let gaps = match iats.get(1..) {
        Some(g) if !g.is_empty() => g,
        _ => iats,
    };
    let t = turns(sizes);
    let op = opens(sizes, iats);
    let (bu, bd): (i64, i64) = (up.iter().sum(), down.iter().sum());
    let requests: Vec<i64> = t
        .iter()
        .filter(|(c, _)| SMALL < *c && *c < FULL)
        .map(|&(_, d)| d)
        .collect();
    let answers: Vec<i64> = t.iter().map(|&(_, d)| d).collect();
    let mut f = [0.0; 20];
    f[0] = share(n_up, n);
    f[1] = share(small_up, n_up);
    f[2] = share(count(&down, |&s| s <= SMALL), n_down);
    f[3] = share(count(&down, |&s| s >= MSS_FULL), n_down);
    f[4] = (share(count(sizes, |&s| s >= FULL), n) - share(count(sizes, |&s| s <= -FULL), n)).abs();
    f[5] = ((c2s_bytes + 1.0) / (s2c_bytes + 1.0)).log10();
    f[6] = bu.min(bd) as f64 / bu.max(bd).max(1) as f64;
    f[7] = (median(gaps) + 0.1).log10();
    f[8] = log10_1p(count(gaps, |&g| g >= PAUSE_MS));
    f[9] = share(echoes, small_up);
    f[10] = share(count(&requests, |&d| d >= ANSWER), requests.len());
    f[11] = share(t.len(), n);
    f[12] = if t.is_empty() {
        0.0
    } else {
        (1.0 + median_int(&answers)).log10()
    };
    f[13] = log10_1p(count(&answers, |&d| 0 < d && d < ANSWER));
    f[14] = log10_1p(op.len());
    f[15] = log10_1p(server_opens(sizes, iats));
    f[16] = share(keystrokes(sizes, iats), n_up);
    f[17] = if op.is_empty() {
        0.0
    } else {
        op.iter().sum::<i64>() as f64 / op.len() as f64
    };
    f[18] = (sessions(sizes, iats) as f64).log10();
    f[19] = share(count(&up, |&s| s >= FULL), n_up);
    Some(Features(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::json;

    #[test]
    fn names_cover_the_model_features() {
        for name in MODEL_FEATURES {
            assert!(index(name).is_some(), "{name}");
        }
    }

    #[test]
    fn turns_collect_runs() {
        assert_eq!(
            turns(&[-5, 10, 20, -30, -40, 7, 0, -1]),
            vec![(30, 70), (7, 1)]
        );
        assert_eq!(turns(&[]), vec![]);
        assert_eq!(turns(&[-3, -4]), vec![]);
    }

    #[test]
    fn openings_follow_the_ssh_message_sizes() {
        // direct-tcpip CHANNEL_OPEN (100 bytes, AES-GCM) confirmed by 52 bytes; the client speaks.
        let http = [100, -52, 148, -1448, -1448, -600];
        assert_eq!(opens(&http, &[40.0, 0.1, 0.1, 1.0, 0.0, 0.0]), vec![1]);
        // The server speaks first (a mail greeting).
        assert_eq!(
            opens(&[92, -44, -76, 60, -196], &[40.0, 0.1, 0.5, 3.0, 0.2]),
            vec![-1]
        );
        // A CHANNEL_SUCCESS of 36 bytes is no confirmation.
        assert_eq!(
            opens(&[116, -36, 84, -72], &[40.0, 0.1, 0.1, 0.1]),
            Vec::<i64>::new()
        );
        // Two openings back to back: both take the sign of what follows the second.
        assert_eq!(
            opens(&[100, -52, 100, -52, -300], &[40.0, 0.1, 0.1, 0.1, 0.1]),
            vec![-1, -1]
        );
        // At the very end: 0.
        assert_eq!(opens(&[5, 100, -52], &[0.0, 50.0, 0.1]), vec![0]);
        // Shorter gap lists than sizes do not panic.
        assert_eq!(opens(&[5, 100, -52], &[]), Vec::<i64>::new());
    }

    #[test]
    fn keystrokes_and_server_opened_channels() {
        let sizes: Vec<i64> = [36, -36].repeat(8);
        let iats: Vec<f64> = [180.0, 0.4].repeat(8);
        assert_eq!(keystrokes(&sizes, &iats), 8);
        assert_eq!(keystrokes(&sizes, &[0.1; 16]), 0);
        let x11 = [-68, 52, -84, 1448, 1448, 900];
        assert_eq!(server_opens(&x11, &[40.0, 0.2, 0.1, 0.3, 0.0, 0.0]), 1);
        assert_eq!(
            server_opens(
                &[36, -68, 52, -84, 1448, 1448, 900],
                &[5.0, 0.1, 0.2, 0.1, 0.3, 0.0, 0.0]
            ),
            0
        );
    }

    #[test]
    fn sessions_split_at_pauses() {
        assert_eq!(sessions(&[], &[]), 0);
        assert_eq!(sessions(&[1], &[900.0]), 1); // the first gap precedes the sequence
        assert_eq!(sessions(&[1, 2, 3], &[0.0, 300.0, 299.9]), 2);
    }

    #[test]
    fn medians_as_python() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
        assert_eq!(median_int(&[1, 2]), 1.5);
        assert_eq!(median_int(&[7]), 7.0);
    }

    #[test]
    fn ssh_skips_the_authentication() {
        let shape = json!({"sizes": (1..=14).collect::<Vec<i64>>(), "iat_ms": vec![0.5; 14]});
        let seq = sequence(shape.as_object().unwrap(), "ssh").unwrap();
        assert_eq!(seq.sizes, vec![11, 12, 13, 14]);
        let seq = sequence(shape.as_object().unwrap(), "tls").unwrap();
        assert_eq!(seq.sizes.len(), 14);
        // Too short to skip: kept whole (and then too short for features).
        let short = json!({"sizes": [1, 2], "iat_ms": [0.0, 1.0]});
        assert_eq!(
            sequence(short.as_object().unwrap(), "ssh").unwrap().sizes,
            vec![1, 2]
        );
    }

    #[test]
    fn malformed_shapes_are_refused_not_panicked_on() {
        for bad in [
            json!({"sizes": [1, 2], "iat_ms": [0.0]}),
            json!({"sizes": ["a"], "iat_ms": [0.0]}),
            json!({"sizes": [1e300], "iat_ms": [0.0]}),
            json!({"sizes": [i64::MIN], "iat_ms": [0.0]}),
            json!({"sizes": 5, "iat_ms": []}),
            json!({"sizes": [1], "iat_ms": [null]}),
        ] {
            assert!(sequence(bad.as_object().unwrap(), "tls").is_none(), "{bad}");
        }
        let empty = json!({});
        assert_eq!(
            sequence(empty.as_object().unwrap(), "tls"),
            Some(Sequence::default())
        );
        assert_eq!(dir_bytes(empty.as_object().unwrap(), "c2s"), Some(0.0));
        assert_eq!(
            dir_bytes(json!({"c2s": [1]}).as_object().unwrap(), "c2s"),
            None
        );
    }

    #[test]
    fn features_of_a_small_sequence() {
        // tls: a request up, a response down in two full segments and a tail, twice.
        let seq = Sequence {
            sizes: vec![300, -1448, -1448, -100, 300, -1448, -500, 50],
            iats: vec![0.0, 10.0, 0.1, 0.1, 400.0, 10.0, 0.1, 20.0],
        };
        let f = features(&seq, "tls", 650.0, 4944.0).unwrap();
        assert_eq!(f.get("up_share"), 3.0 / 8.0);
        assert_eq!(f.get("up_small"), 1.0 / 3.0);
        assert_eq!(f.get("down_small"), 1.0 / 5.0);
        assert_eq!(f.get("full_down"), 3.0 / 5.0);
        assert_eq!(f.get("one_way"), 3.0 / 8.0);
        assert_eq!(f.get("bytes_ratio"), (651.0f64 / 4945.0).log10());
        assert_eq!(f.get("symmetry"), 650.0 / 4944.0);
        assert_eq!(f.get("req_answer"), 1.0);
        assert_eq!(f.get("turns"), 3.0 / 8.0);
        // Turns: (300, 2996), (300, 1948), (50, 0): median 1948.
        assert_eq!(f.get("down_per_turn"), 1949.0f64.log10());
        assert_eq!(f.get("exchanges"), 0.0);
        assert_eq!(f.get("sessions"), 2.0f64.log10());
        assert_eq!(f.get("pauses"), 2.0f64.log10());
        assert_eq!(f.get("iat_median"), (10.0f64 + 0.1).log10());
        assert_eq!(f.get("opens"), 0.0);
        assert_eq!(f.get("server_first"), 0.0);
        assert_eq!(f.get("echo"), 0.0); // the small 50 up is last: no answer
        assert!(features(&Sequence::default(), "tls", 0.0, 0.0).is_none());
        let three = Sequence {
            sizes: vec![1, -1, 1],
            iats: vec![0.0; 3],
        };
        assert!(features(&three, "tls", 0.0, 0.0).is_none());
    }
}
