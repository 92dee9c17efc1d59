//! The shape of an encrypted flow: sizes, directions and gaps of its payload packets.
//!
//! Encryption hides the bytes, not the rhythm: a person typing sends one small packet per key
//! and gets a small echo; a forwarded web page is a small request up and a burst of full
//! segments down. This keeps, per flow and in constant memory, the first N payload packets
//! after the handshake (signed size, gap since the previous one, like nfstream's SPLT) and
//! per-direction summaries over the whole flow, for `portwatch.tunnels` to name what rides
//! inside a tunnel.
//!
//! Sizes are the transport payload length the IP header states (`Packet::wire_len`), not the
//! bytes captured: a snap length must not change a flow's shape.
//!
//! Where the sequence starts (the handshake is the same whatever the tunnel carries, so it is
//! skipped): at the first payload packet sent once the client has sent `Kc` and the server
//! `Ks` payload packets, with (Kc, Ks) = (4, 3) for SSH (banner, KEXINIT, ECDH init, NEWKEYS /
//! banner, KEXINIT, ECDH reply with NEWKEYS: the first packets after are the encrypted
//! authentication) and (2, 2) for TLS and anything else (ClientHello and the client's
//! Finished flight / the server's hello flight). Retransmissions count as packets.
#![forbid(unsafe_code)]

use crate::meta::{written_value, Value, ValueWriter};

/// Packets kept in the sequence unless configured otherwise.
pub const DEFAULT_SHAPE_PACKETS: usize = 64;
/// Hard bound on the configured sequence length (memory per flow).
pub const MAX_SHAPE_PACKETS: usize = 1024;

/// Room the sequence starts with (then doubles up to its length): most flows that keep a
/// shape end with a few packets in it.
const SEQ_FIRST: usize = 4;

/// Payload packets of (client, server) skipped before the sequence starts, by protocol.
pub fn skip_for(protocol: Option<&str>) -> (u8, u8) {
    match protocol {
        Some("ssh") => (4, 3),
        _ => (2, 2),
    }
}

/// Protocols whose records carry the shape: those a tunnel hides in.
pub fn tunnel_capable(protocol: &str) -> bool {
    matches!(protocol, "ssh" | "tls" | "unknown")
}

/// Summary of one direction over the whole flow (payload packets only).
#[derive(Clone, Copy, Debug, Default)]
struct DirStats {
    pkts: u32,
    bytes: u64,
    sum_sq: f64,
    gap_sum: f64,
    last: f64,
}

/// One flow's shape, made at its first payload packet (boxed: only TCP flows of protocols a
/// tunnel hides in keep one for long, and a flow of every other kind carries a pointer).
#[derive(Debug, Default)]
pub struct Shape {
    data: Option<Box<ShapeData>>,
    /// The flow's protocol carries no tunnel (`stop`): nothing is kept.
    stopped: bool,
    /// `skip_for` the flow's protocol, noted when it is classified (`classified`): asking the
    /// protocol's name every packet reads it out of line, a cache miss a packet.
    skip: Option<(u8, u8)>,
}

/// Per-direction summaries and the bounded packet sequence.
#[derive(Debug, Default)]
struct ShapeData {
    /// By key direction (0: endpoint `a` sent); roles are applied on export.
    dirs: [DirStats; 2],
    /// (size signed by key direction, gap in ms since the previous payload packet).
    seq: Vec<(i32, f32)>,
    /// The key direction of the last payload packet (its time is that direction's `last`), or
    /// none yet: a byte where the time itself took 16 of every shape's bytes.
    last_dir: Option<u8>,
    /// Set once the sequence is full or not wanted: no more appends.
    closed: bool,
}

impl Shape {
    /// The flow was classified as `protocol`: a protocol no tunnel hides in stops the shape,
    /// another sets how many packets the sequence skips (`skip_for`).
    pub fn classified(&mut self, protocol: &str) {
        if tunnel_capable(protocol) {
            self.skip = Some(skip_for(Some(protocol)));
        } else {
            self.stop();
        }
    }

    /// The flow continues one classified as `protocol` (`flow::resume`): its bytes come from
    /// the middle of the connection, with no handshake to skip.
    pub fn resumed(&mut self, protocol: &str) {
        if tunnel_capable(protocol) {
            self.skip = Some((0, 0));
        } else {
            self.stop();
        }
    }

    /// Payload packets of (client, server) the sequence skips: `skip_for` the flow's protocol.
    pub fn skip(&self) -> (u8, u8) {
        self.skip.unwrap_or_else(|| skip_for(None))
    }

    /// One payload-carrying packet of key direction `d`. `client_dir`: which key direction is
    /// the client's now; `skip`: from `skip`; `n`: sequence length wanted.
    pub fn packet(
        &mut self,
        d: usize,
        wire_len: u32,
        ts: f64,
        client_dir: usize,
        skip: (u8, u8),
        n: usize,
    ) {
        if self.stopped {
            return;
        }
        self.data
            .get_or_insert_with(Box::default)
            .packet(d, wire_len, ts, client_dir, skip, n);
    }

    /// The flow's protocol carries no tunnel, so its records carry no shape: drop what was
    /// kept and keep nothing more (`is_empty` from now on).
    pub fn stop(&mut self) {
        self.stopped = true;
        self.data = None;
    }

    pub fn is_empty(&self) -> bool {
        self.data.as_ref().is_none_or(|s| s.is_empty())
    }

    /// `meta.shape`: `{"n", "sizes", "iat_ms", "c2s", "s2c"}`, sizes + client to server.
    pub fn to_meta(&self, client_dir: usize) -> Value {
        written_value(|w| self.write_meta(w, client_dir)).unwrap_or_default()
    }

    /// `meta.shape` written into a frozen map (`FlowMeta::insert_written`), or for `to_meta`.
    pub fn write_meta(&self, w: &mut ValueWriter, client_dir: usize) {
        match &self.data {
            Some(s) => s.write_meta(w, client_dir),
            None => ShapeData::default().write_meta(w, client_dir),
        }
    }

    /// The numbers `to_meta(client_dir)` holds, as the tunnel classifier reads them from it.
    pub fn view(&self, client_dir: usize) -> ShapeView<'_> {
        ShapeView {
            data: self.data.as_deref(),
            client_dir: client_dir & 1,
        }
    }
}

/// A flow's shape as `meta.shape` would show it, read without making that value.
pub struct ShapeView<'a> {
    data: Option<&'a ShapeData>,
    client_dir: usize,
}

impl ShapeView<'_> {
    /// `meta.shape.sizes` and `meta.shape.iat_ms`; None where the value would hold a null (a
    /// gap too large for a number).
    pub fn sequence(&self) -> Option<(Vec<i64>, Vec<f64>)> {
        let Some(data) = self.data else {
            return Some((Vec::new(), Vec::new()));
        };
        let sizes = data.sizes(self.client_dir).collect();
        let iats = data
            .gaps_ms()
            .map(|f| Some(f).filter(|f| f.is_finite()))
            .collect::<Option<_>>()?;
        Some((sizes, iats))
    }

    /// `meta.shape.c2s.bytes` (`to_client`: `s2c`'s).
    pub fn bytes(&self, to_client: bool) -> f64 {
        let d = self.client_dir ^ usize::from(to_client);
        self.data.map_or(0.0, |s| s.dirs[d].bytes as f64)
    }
}

impl ShapeData {
    fn packet(
        &mut self,
        d: usize,
        wire_len: u32,
        ts: f64,
        client_dir: usize,
        skip: (u8, u8),
        n: usize,
    ) {
        let d = d & 1;
        let (c, s) = (client_dir & 1, (client_dir & 1) ^ 1);
        let started =
            self.dirs[c].pkts >= u32::from(skip.0) && self.dirs[s].pkts >= u32::from(skip.1);
        if !self.closed && started {
            let n = n.min(MAX_SHAPE_PACKETS);
            if self.seq.len() < n {
                // Grown by doubling up to `n`, not reserved whole: most flows end well short.
                let (len, cap) = (self.seq.len(), self.seq.capacity());
                if len == cap {
                    self.seq.reserve_exact(cap.max(SEQ_FIRST).min(n - len));
                }
                let gap = self
                    .last()
                    .map_or(0.0, |t| ((ts - t).max(0.0) * 1000.0) as f32);
                let size = i32::try_from(wire_len).unwrap_or(i32::MAX);
                self.seq.push((if d == 0 { size } else { -size }, gap));
            }
            if self.seq.len() >= n {
                self.closed = true;
            }
        }
        let side = &mut self.dirs[d];
        if side.pkts > 0 {
            side.gap_sum += (ts - side.last).max(0.0);
        }
        side.pkts = side.pkts.saturating_add(1);
        side.bytes = side.bytes.saturating_add(u64::from(wire_len));
        let size = f64::from(wire_len);
        side.sum_sq += size * size;
        side.last = ts;
        self.last_dir = Some(d as u8);
    }

    /// Time of the last payload packet in either direction.
    fn last(&self) -> Option<f64> {
        self.last_dir.map(|d| self.dirs[usize::from(d & 1)].last)
    }

    fn is_empty(&self) -> bool {
        self.dirs[0].pkts == 0 && self.dirs[1].pkts == 0
    }

    /// The sequence's sizes, positive from the client (`client_dir`).
    fn sizes(&self, client_dir: usize) -> impl Iterator<Item = i64> + '_ {
        let sign = if client_dir & 1 == 0 { 1 } else { -1 };
        self.seq.iter().map(move |&(s, _)| i64::from(s * sign))
    }

    /// The sequence's gaps in ms, rounded as `meta.shape` shows them.
    fn gaps_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.seq.iter().map(|&(_, g)| round3(f64::from(g)))
    }

    fn write_meta(&self, w: &mut ValueWriter, client_dir: usize) {
        let c = client_dir & 1;
        w.object(5);
        w.key("n");
        w.uint(self.seq.len() as u64);
        w.key("sizes");
        w.array(self.seq.len());
        for size in self.sizes(c) {
            w.int(size);
        }
        w.key("iat_ms");
        w.array(self.seq.len());
        for gap in self.gaps_ms() {
            w.float(gap);
        }
        w.key("c2s");
        write_dir_meta(w, &self.dirs[c]);
        w.key("s2c");
        write_dir_meta(w, &self.dirs[c ^ 1]);
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A direction's summary in `meta.shape`: its packets and bytes, and the mean size, the size
/// deviation and the mean gap (ms), rounded.
fn write_dir_meta(w: &mut ValueWriter, s: &DirStats) {
    let n = f64::from(s.pkts);
    let (mean, std) = if s.pkts > 0 {
        let mean = s.bytes as f64 / n;
        (mean, (s.sum_sq / n - mean * mean).max(0.0).sqrt())
    } else {
        (0.0, 0.0)
    };
    let iat = if s.pkts > 1 {
        s.gap_sum * 1000.0 / (n - 1.0)
    } else {
        0.0
    };
    w.object(5);
    w.key("packets");
    w.uint(u64::from(s.pkts));
    w.key("bytes");
    w.uint(s.bytes);
    for (name, x) in [("mean_size", mean), ("std_size", std), ("mean_iat_ms", iat)] {
        w.key(name);
        w.float(round3(x));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq_of(v: &Value) -> (Vec<i64>, Vec<f64>) {
        let sizes = v["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        let iats = v["iat_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        (sizes, iats)
    }

    #[test]
    fn classification_sets_the_skip_or_stops_the_shape() {
        let mut s = Shape::default();
        assert_eq!(s.skip(), skip_for(None));
        s.classified("ssh");
        assert_eq!(s.skip(), skip_for(Some("ssh")));
        assert_ne!(s.skip(), skip_for(None));
        let mut t = Shape::default();
        t.classified("tls");
        assert_eq!(t.skip(), skip_for(Some("tls")));
        let mut h = Shape::default();
        h.packet(0, 100, 0.0, 0, (0, 0), 64);
        assert!(!h.is_empty());
        h.classified("http");
        for i in 0..4 {
            h.packet(i % 2, 100, f64::from(i as u32), 0, h.skip(), 64);
        }
        assert!(h.is_empty(), "a protocol no tunnel hides in keeps no shape");
    }

    #[test]
    fn skips_the_handshake_then_keeps_signed_sizes_and_gaps() {
        let mut s = Shape::default();
        let skip = (2, 2);
        // client, server, client, server: the handshake; then the sequence.
        for (i, d) in [0usize, 1, 0, 1, 0, 1, 1].iter().enumerate() {
            s.packet(*d, 100 + i as u32, i as f64 * 0.5, 0, skip, 64);
        }
        let v = s.to_meta(0);
        let (sizes, iats) = seq_of(&v);
        assert_eq!(sizes, vec![104, -105, -106]);
        assert_eq!(iats, vec![500.0, 500.0, 500.0]);
        assert_eq!(v["c2s"]["packets"], 3);
        assert_eq!(v["s2c"]["bytes"], 101 + 103 + 105 + 106);
        assert_eq!(v["c2s"]["mean_iat_ms"], 1000.0);
        // Roles swapped after the fact: signs follow the client.
        let (sizes, _) = seq_of(&s.to_meta(1));
        assert_eq!(sizes, vec![-104, 105, 106]);
    }

    #[test]
    fn the_sequence_grows_from_a_few_entries_by_doubling_up_to_its_length() {
        // Most shaped flows end with a handful of packets in their sequence (45,916 of the
        // 66,539 of a 100,000-flow capture had fewer than four): they hold room for four.
        let mut s = Shape::default();
        let capacity = |s: &Shape| s.data.as_ref().map_or(0, |d| d.seq.capacity());
        s.packet(0, 100, 0.0, 0, (0, 0), 64);
        assert_eq!(capacity(&s), 4);
        let mut seen = vec![capacity(&s)];
        for i in 1..64 {
            s.packet(i % 2, 100, f64::from(i as u32), 0, (0, 0), 64);
            if capacity(&s) != *seen.last().unwrap() {
                seen.push(capacity(&s));
            }
        }
        assert_eq!(seen, vec![4, 8, 16, 32, 64]);
        // Never past the length asked for.
        let mut t = Shape::default();
        for i in 0..10 {
            t.packet(0, 100, f64::from(i), 0, (0, 0), 6);
        }
        assert_eq!(capacity(&t), 6);
    }

    /// A gap is from the payload packet before, in the order packets came, whichever its
    /// direction and even when the capture's clock stepped back (clamped at 0, then from there).
    #[test]
    fn gaps_follow_the_packet_before_across_directions_and_clock_steps() {
        let mut s = Shape::default();
        for (d, ts) in [(0usize, 10.0), (1, 5.0), (0, 6.0), (0, 6.25)] {
            s.packet(d, 100, ts, 0, (0, 0), 64);
        }
        let (_, iats) = seq_of(&s.to_meta(0));
        assert_eq!(iats, vec![0.0, 0.0, 1000.0, 250.0]);
    }

    /// Shapes of every kind the writers must agree on: none kept, one direction only, both,
    /// a gap past any float's reach (a null), and the same seen from either end.
    fn shapes() -> Vec<Shape> {
        let mut out = vec![Shape::default()];
        let mut one_way = Shape::default();
        one_way.packet(0, 1400, 1.0, 0, (0, 0), 64);
        out.push(one_way);
        let mut both = Shape::default();
        for (i, d) in [0usize, 1, 0, 1, 1, 0, 1].iter().enumerate() {
            both.packet(*d, 36 + 500 * i as u32, 0.1234567 * i as f64, 0, (1, 0), 64);
        }
        out.push(both);
        let mut long = Shape::default();
        for i in 0..15u32 {
            long.packet(
                (i % 3 % 2) as usize,
                40 + i,
                f64::from(i) * 0.25,
                1,
                (0, 0),
                64,
            );
        }
        out.push(long);
        let mut far = Shape::default();
        far.packet(0, 10, 0.0, 0, (0, 0), 64);
        far.packet(1, 20, 1e300, 0, (0, 0), 64);
        out.push(far);
        out
    }

    /// The shape written straight into a frozen map is the map `to_meta` makes, to the byte of
    /// its JSON, after the facts before it and with those after it in order.
    #[test]
    fn the_written_shape_is_to_metas() {
        use crate::meta::{FlowMeta, Meta};
        for shape in shapes() {
            for c in [0, 1] {
                let mut want = Meta::new();
                want.insert("sni".into(), "a.example".into());
                let mut written = FlowMeta::from(want.clone());
                written.freeze();
                written.set_default("evidence", "e".into());
                written.insert_written(
                    "shape".into(),
                    |w| shape.write_meta(w, c),
                    || unreachable!(),
                );
                written.insert("end_reason".into(), "idle".into());
                want.insert("evidence".into(), "e".into());
                want.insert("shape".into(), shape.to_meta(c));
                want.insert("end_reason".into(), "idle".into());
                assert!(written.is_frozen());
                assert_eq!(written.to_meta(), want);
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                written.push_json(&mut ours);
                FlowMeta::from(want.clone()).push_json(&mut theirs);
                assert_eq!(String::from_utf8(ours), String::from_utf8(theirs));
                // A live map takes the value itself.
                let mut live = FlowMeta::from(Meta::new());
                live.insert_written("shape".into(), |_| unreachable!(), || shape.to_meta(c));
                assert_eq!(live.value_of("shape").as_deref(), Some(&shape.to_meta(c)));
            }
        }
    }

    /// What the tunnel classifier reads from the flow's shape is what it reads from `to_meta`.
    #[test]
    fn the_view_reads_what_to_meta_holds() {
        use crate::tunnel::ShapeSource;
        for shape in shapes() {
            for c in [0, 1] {
                let Value::Object(map) = shape.to_meta(c) else {
                    unreachable!()
                };
                let view = shape.view(c);
                for protocol in ["tls", "ssh"] {
                    assert_eq!(
                        ShapeSource::sequence(&view, protocol),
                        ShapeSource::sequence(&map, protocol)
                    );
                }
                for to_client in [false, true] {
                    assert_eq!(view.dir_bytes(to_client), map.dir_bytes(to_client));
                }
            }
        }
    }

    /// What a flow's shape costs before its sequence: pinned, as 100,000 open flows hold one
    /// each (the time of the last packet is its direction's, named by a byte).
    #[test]
    fn shape_data_stays_small() {
        assert_size_at_most!(ShapeData, 112);
    }

    #[test]
    fn the_sequence_is_bounded_and_stats_go_on() {
        let mut s = Shape::default();
        for i in 0..10_000u32 {
            s.packet((i % 2) as usize, 1448, f64::from(i), 0, (0, 0), 8);
        }
        let v = s.to_meta(0);
        assert_eq!(v["n"], 8);
        assert_eq!(v["c2s"]["packets"], 5000);
        assert_eq!(v["c2s"]["std_size"], 0.0);
        let mut big = Shape::default();
        for i in 0..5000u32 {
            big.packet(0, u32::MAX, f64::from(i), 0, (0, 0), usize::MAX);
        }
        assert_eq!(big.to_meta(0)["n"], MAX_SHAPE_PACKETS);
    }

    #[test]
    fn stop_drops_everything() {
        let mut s = Shape::default();
        assert!(s.is_empty());
        s.packet(0, 10, 0.0, 0, (0, 0), 4);
        assert!(!s.is_empty());
        s.stop();
        s.packet(0, 10, 1.0, 0, (0, 0), 4);
        assert!(s.is_empty() && s.data.is_none());
        assert_eq!(s.to_meta(0)["n"], 0);
        assert_eq!(s.to_meta(0)["c2s"]["packets"], 0);
    }

    #[test]
    fn the_sequence_grows_to_its_length_and_no_further() {
        for n in [1, 3, 5, 64, 100] {
            let mut s = Shape::default();
            for i in 0..200u32 {
                s.packet(0, 10, f64::from(i), 0, (0, 0), n);
                let seq = &s.data.as_ref().unwrap().seq;
                assert_eq!(seq.len(), (i as usize + 1).min(n));
                assert!(seq.capacity() <= n);
            }
        }
    }
}
