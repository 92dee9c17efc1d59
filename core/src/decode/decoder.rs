//! The decoder: a frame walked through its layers, IP fragments held until their datagram is
//! whole and then decoded from the transport header on, as Python's pipeline `_defragment` does.

use super::fragments::{Added, Defragmenter};
use super::link::{self, Stop};
use super::walk::{walk, walk_datagram, Fragment, Walk};
use super::{DecodeStats, Decoded, Packet};

pub struct Decoder {
    defrag: Defragmenter,
    /// The last datagram reassembled: the payload of the packet `decode` returned for it.
    datagram: Vec<u8>,
    fragments: u64,
    /// Fragments found inside a reassembled datagram: not reassembled a second time.
    nested_dropped: u64,
    /// Encrypted 802.11 data frames (answered `NotIp`).
    protected: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            defrag: Defragmenter::new(),
            datagram: Vec::new(),
            fragments: 0,
            nested_dropped: 0,
            protected: 0,
        }
    }

    pub fn stats(&self) -> DecodeStats {
        DecodeStats {
            fragments: self.fragments,
            fragments_dropped: self.defrag.dropped + self.nested_dropped,
            protected: self.protected,
        }
    }

    /// Bytes held by pending fragments (for tests and memory accounting).
    pub fn fragment_bytes_held(&self) -> usize {
        self.defrag.held_bytes()
    }

    /// Datagrams waiting for fragments.
    pub fn fragments_pending(&self) -> usize {
        self.defrag.pending_count()
    }

    /// Decodes one captured frame of `linktype` captured at `ts` (seconds, capture time).
    pub fn decode<'a>(&'a mut self, ts: f64, linktype: u32, frame: &'a [u8]) -> Decoded<'a> {
        let Some(start) = link::start(linktype, frame) else {
            return Decoded::UnsupportedLink;
        };
        let start = match start {
            Ok(s) => s,
            Err(Stop::Malformed) => return Decoded::Malformed,
            Err(Stop::NotIp) => return Decoded::NotIp,
            Err(Stop::Protected) => {
                self.protected += 1;
                return Decoded::NotIp;
            }
        };
        match walk(start.buf, start.step, start.encap, 0) {
            Walk::Packet(p) => Decoded::Packet(p),
            Walk::NotIp => Decoded::NotIp,
            Walk::Malformed => Decoded::Malformed,
            Walk::Fragment(f) => self.fragment(ts, f),
        }
    }

    fn fragment<'a>(&'a mut self, ts: f64, mut f: Fragment<'a>) -> Decoded<'a> {
        self.fragments += 1;
        // A fragment that came through a GTP-U tunnel is still a datagram of the tunnel.
        let tunnel = f.tunnel.take();
        let held = |t: Option<Box<Packet<'a>>>| t.map_or(Decoded::Held, |t| Decoded::Packet(*t));
        let Added::Complete(data) = self.defrag.add(f.key, f.offset, f.more, f.data, ts) else {
            return held(tunnel);
        };
        self.datagram = data;
        let ip = (f.key.src, f.key.dst);
        // The depth reached before the fragment carries on (Python restarted it at 0).
        match walk_datagram(&self.datagram, f.key.proto, ip, f.encap, f.depth) {
            Walk::Packet(mut p) => {
                if p.tunnel.is_none() {
                    p.tunnel = tunnel;
                }
                Decoded::Packet(p)
            }
            Walk::Malformed => Decoded::Malformed,
            // Python's pipeline counts neither: the fragments were already counted.
            Walk::NotIp => held(tunnel),
            Walk::Fragment(_) => {
                self.nested_dropped += 1;
                held(tunnel)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fragments::{MAX_DATAGRAM, MAX_HELD_BYTES, MAX_PENDING};
    use super::super::{Addr, Decoded, Packet, SUPPORTED_LINKTYPES, TCP, UDP};
    use super::Decoder;

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    fn tcp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(sport.to_be_bytes());
        h.extend(dport.to_be_bytes());
        h.extend(1000u32.to_be_bytes());
        h.extend(0u32.to_be_bytes());
        h.extend([0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]);
        h.extend(payload);
        h
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend(sport.to_be_bytes());
        h.extend(dport.to_be_bytes());
        h.extend(((8 + payload.len()) as u16).to_be_bytes());
        h.extend([0, 0]);
        h.extend(payload);
        h
    }

    fn ipv4_frag(proto: u8, ident: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0];
        h.extend(((20 + payload.len()) as u16).to_be_bytes());
        h.extend(ident.to_be_bytes());
        h.extend(frag.to_be_bytes());
        h.extend([64, proto, 0, 0]);
        h.extend(A);
        h.extend(B);
        h.extend(payload);
        h
    }

    fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
        ipv4_frag(proto, 1, 0, payload)
    }

    fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend((payload.len() as u16).to_be_bytes());
        h.extend([next, 64]);
        h.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[1]));
        h.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[2]));
        h.extend(payload);
        h
    }

    fn eth(etype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![
            0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0, 0x11, 0x22, 0x33, 0x44, 0x55,
        ];
        f.extend(etype.to_be_bytes());
        f.extend(payload);
        f
    }

    fn vlans(n: usize, etype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        for _ in 0..n {
            f.extend([0, 5, 0x81, 0x00]);
        }
        let last = f.len().saturating_sub(2);
        if n > 0 {
            f.truncate(last);
            f.extend(etype.to_be_bytes());
        }
        f.extend(payload);
        f
    }

    fn packet<'a>(d: Decoded<'a>) -> Packet<'a> {
        match d {
            Decoded::Packet(p) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    fn layers(p: &Packet<'_>) -> Vec<&'static str> {
        p.encap.clone().unwrap_or_default()
    }

    #[test]
    fn ethernet_ipv4_tcp_fields_and_padding() {
        let mut frame = eth(0x0800, &ipv4(TCP, &tcp(40000, 80, b"GET /")));
        frame.extend([0; 6]); // Ethernet padding is not payload
        let mut dec = Decoder::new();
        let p = packet(dec.decode(0.0, 1, &frame));
        assert_eq!(
            (p.proto, p.sport, p.dport, p.flags, p.seq),
            (TCP, 40000, 80, 0x18, 1000)
        );
        assert_eq!((p.src, p.dst), (Addr::V4(A), Addr::V4(B)));
        assert_eq!(p.payload, b"GET /");
        assert!(p.encap.is_none());
        assert_eq!(p.src.to_string(), "10.0.0.1");
    }

    #[test]
    fn every_link_type_reaches_the_packet_with_its_layers() {
        let ip = ipv4(UDP, &udp(5353, 53, b"q"));
        let ip6 = ipv6(UDP, &udp(5353, 53, b"q"));
        let sll: Vec<u8> = [0, 0, 0, 1, 0, 6]
            .iter()
            .chain(&[0; 8])
            .chain(&[8, 0])
            .chain(&ip)
            .copied()
            .collect();
        let sll2: Vec<u8> = [0x86, 0xdd, 0, 0]
            .iter()
            .chain(&[0; 16])
            .chain(&ip6)
            .copied()
            .collect();
        let cases: Vec<(u32, Vec<u8>, Vec<&str>)> = vec![
            (1, eth(0x8100, &vlans(2, 0x0800, &ip)), vec![]),
            (
                1,
                eth(
                    0x8847,
                    &[[0, 1, 0, 64], [0, 2, 1, 64]]
                        .concat()
                        .iter()
                        .chain(&ip)
                        .copied()
                        .collect::<Vec<_>>(),
                ),
                vec!["mpls"],
            ),
            (
                1,
                eth(
                    0x8864,
                    &[[0x11, 0, 0, 1, 0, 0], [0, 0x21, 0, 0, 0, 0]].concat()[..8]
                        .iter()
                        .chain(&ip)
                        .copied()
                        .collect::<Vec<_>>(),
                ),
                vec!["pppoe"],
            ),
            (113, sll, vec![]),
            (276, sll2, vec![]),
            (
                104,
                [0x0f, 0, 0x08, 0].iter().chain(&ip).copied().collect(),
                vec!["chdlc"],
            ),
            (0, [2, 0, 0, 0].iter().chain(&ip).copied().collect(), vec![]),
            (
                0,
                [0, 0, 0, 30].iter().chain(&ip6).copied().collect(),
                vec![],
            ),
            (
                108,
                [0, 0, 0, 2].iter().chain(&ip).copied().collect(),
                vec![],
            ),
            (
                9,
                [0xff, 0x03, 0, 0x21].iter().chain(&ip).copied().collect(),
                vec!["ppp"],
            ),
            (50, [0x21].iter().chain(&ip).copied().collect(), vec!["ppp"]),
            (101, ip.clone(), vec![]),
            (229, ip6.clone(), vec![]),
        ];
        let mut dec = Decoder::new();
        for (lt, frame, want) in cases {
            let p = packet(dec.decode(0.0, lt, &frame));
            assert_eq!(
                (p.sport, p.dport, p.payload),
                (5353, 53, &b"q"[..]),
                "linktype {lt}"
            );
            assert_eq!(layers(&p), want, "linktype {lt}");
        }
    }

    #[test]
    fn not_ip_unsupported_and_malformed() {
        let mut dec = Decoder::new();
        assert!(matches!(
            dec.decode(0.0, 1, &eth(0x0806, &[0; 28])),
            Decoded::NotIp
        ));
        assert!(matches!(
            dec.decode(0.0, 1, &eth(0x0800, &ipv4(1, &[8, 0, 0, 0]))),
            Decoded::NotIp
        ));
        assert!(matches!(
            dec.decode(0.0, 147, &[0; 60]),
            Decoded::UnsupportedLink
        ));
        assert!(!SUPPORTED_LINKTYPES.contains(&147));
        assert!(matches!(dec.decode(0.0, 1, &[0; 13]), Decoded::Malformed));
        let mut frame = eth(0x0800, &ipv4(TCP, &tcp(1, 2, b"")));
        frame[14 + 20 + 12] = 0x40; // data offset 16 < 20
        assert!(matches!(dec.decode(0.0, 1, &frame), Decoded::Malformed));
        for cut in 0..frame.len() {
            let _ = dec.decode(0.0, 1, &frame[..cut]); // never panics
        }
    }

    #[test]
    fn vlan_tags_are_bounded_under_every_link_type() {
        let ip = ipv4(UDP, &udp(1, 2, b"x"));
        let mut dec = Decoder::new();
        assert!(matches!(
            dec.decode(0.0, 1, &eth(0x8100, &vlans(4, 0x0800, &ip))),
            Decoded::Packet(_)
        ));
        assert!(matches!(
            dec.decode(0.0, 1, &eth(0x8100, &vlans(5, 0x0800, &ip))),
            Decoded::Malformed
        ));
        // Python recursed once per tag behind these link types and tunnels (RecursionError).
        let tags = vlans(2000, 0x0800, &ip);
        let mut sll: Vec<u8> = [0, 0, 0, 1, 0, 6]
            .iter()
            .chain(&[0; 8])
            .chain(&[0x81, 0])
            .copied()
            .collect();
        sll.extend(&tags);
        let mut sll2: Vec<u8> = vec![0x81, 0, 0, 0];
        sll2.extend([0; 16]);
        sll2.extend(&tags);
        let mut chdlc = vec![0x0f, 0, 0x81, 0];
        chdlc.extend(&tags);
        let mut gre = vec![0, 0, 0x81, 0];
        gre.extend(&tags);
        let over_gre = eth(0x0800, &ipv4(47, &gre));
        let started = std::time::Instant::now();
        for (lt, frame) in [(113, &sll), (276, &sll2), (104, &chdlc), (1, &over_gre)] {
            assert!(
                matches!(dec.decode(0.0, lt, frame), Decoded::Malformed),
                "linktype {lt}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn tunnels_are_unwrapped_and_bounded_in_depth() {
        let inner = ipv4(TCP, &tcp(40000, 443, b"hi"));
        let mut dec = Decoder::new();
        let f = eth(0x0800, &ipv4(4, &inner));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.dport, layers(&p)), (443, vec!["ipip"]));
        let v6in4 = ipv4(41, &ipv6(TCP, &tcp(1, 443, b"hi")));
        assert_eq!(
            layers(&packet(dec.decode(0.0, 1, &eth(0x0800, &v6in4)))),
            vec!["6in4"]
        );
        // GRE with checksum, key and sequence, carrying Ethernet with a tag.
        let mut gre = vec![0xB0, 0, 0x65, 0x58];
        gre.extend([0; 12]);
        gre.extend(eth(0x8100, &vlans(1, 0x0800, &inner)));
        let f = eth(0x0800, &ipv4(47, &gre));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.dport, layers(&p)), (443, vec!["gre"]));
        // VXLAN.
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vx.extend(eth(0x0800, &inner));
        let f = eth(0x0800, &ipv4(UDP, &udp(50000, 4789, &vx)));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.dport, layers(&p)), (443, vec!["vxlan"]));
        // VXLAN whose inner frame is not a packet: the outer UDP datagram is the packet.
        let f = eth(0x0800, &ipv4(UDP, &udp(50000, 4789, &vx[..20])));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!(
            (p.dport, p.payload.len(), p.encap.clone()),
            (4789, 20, None)
        );
        // Six GRE layers: past the depth bound, Python's None (not TCP/UDP).
        let mut nest = inner.clone();
        for _ in 0..6 {
            let mut g = vec![0, 0, 0x08, 0];
            g.extend(&nest);
            nest = ipv4(47, &g);
        }
        assert!(matches!(
            dec.decode(0.0, 1, &eth(0x0800, &nest)),
            Decoded::NotIp
        ));
    }

    fn gtpu(inner: &[u8]) -> Vec<u8> {
        let mut g = vec![0x30, 0xFF];
        g.extend((inner.len() as u16).to_be_bytes());
        g.extend([0, 0, 0, 1]);
        g.extend(inner);
        g
    }

    #[test]
    fn a_peeked_packet_is_the_decoders_packet_and_only_where_the_frame_settles_it() {
        use super::super::Peeked;
        // Ethernet, VLANs (the encapsulation comes along), IPv6, a GRE tunnel, a short payload.
        let settled = [
            eth(0x0800, &ipv4(TCP, &tcp(40000, 80, b"GET / HTTP/1.1\r\n"))),
            eth(
                0x8100,
                &vlans(2, 0x86DD, &ipv6(UDP, &udp(5353, 53, b"\x12\x34"))),
            ),
            eth(
                0x0800,
                &ipv4(
                    47,
                    &[&[0u8, 0, 0x08, 0][..], &ipv4(TCP, &tcp(1, 2, b"x"))].concat(),
                ),
            ),
            eth(0x0800, &ipv4(TCP, &tcp(40000, 80, b""))),
        ];
        for frame in &settled {
            let peeked = Peeked::of(1, frame).expect("the frame alone settles its packet");
            let mut dec = Decoder::new();
            let want = packet(dec.decode(0.0, 1, frame));
            // The hash worked out ahead is the one the flow table would work out itself.
            let key = crate::pipeline::packet_key(&want);
            assert_eq!(peeked.hash(), crate::flow::key::flow_hash(&key));
            assert_eq!(peeked.packet(frame), want);
        }
        // The decoder's own: a fragment, a GTP-U datagram with its tunnel, no IP at all.
        let unsettled = [
            eth(
                0x0800,
                &ipv4_frag(TCP, 7, 0x2000, &tcp(40000, 80, b"first half")),
            ),
            eth(
                0x0800,
                &ipv4(
                    UDP,
                    &udp(2152, 2152, &gtpu(&ipv4(TCP, &tcp(1, 80, b"GET")))),
                ),
            ),
            eth(0x0806, &[0; 28]),
            eth(0x0800, &[0x45, 0]),
        ];
        for frame in &unsettled {
            assert_eq!(Peeked::of(1, frame), None);
        }
    }

    #[test]
    fn gtpu_is_decided_by_the_destination_port_alike_over_every_link() {
        let inner = ipv4(TCP, &tcp(40000, 80, b"GET"));
        let g = gtpu(&inner);
        let mut dec = Decoder::new();
        for (sport, dport, unwrapped) in
            [(3000, 2152, true), (2152, 2152, true), (2152, 3000, false)]
        {
            let ip = ipv4(UDP, &udp(sport, dport, &g));
            for (lt, frame) in [(1, eth(0x0800, &ip)), (101, ip.clone())] {
                let p = packet(dec.decode(0.0, lt, &frame));
                let got = (p.proto == TCP, layers(&p) == ["gtpu"]);
                assert_eq!(
                    got,
                    (unwrapped, unwrapped),
                    "{sport}->{dport} linktype {lt}"
                );
            }
        }
    }

    /// The tunnel's endpoints and ports as the packet gives them.
    fn tunnel_of(p: &Packet<'_>) -> Option<(u16, u16, usize)> {
        p.tunnel
            .as_ref()
            .map(|t| (t.sport, t.dport, t.payload.len()))
    }

    #[test]
    fn a_g_pdu_brings_its_tunnel_datagram_along() {
        let inner = ipv4(TCP, &tcp(40000, 80, b"GET"));
        let g = gtpu(&inner);
        let mut dec = Decoder::new();
        let f = eth(0x0800, &ipv4(UDP, &udp(2152, 2152, &g)));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.sport, p.dport), (40000, 80));
        assert_eq!(tunnel_of(&p), Some((2152, 2152, g.len())));
        let t = p.tunnel.as_ref().unwrap();
        assert!(t.encap.is_none() && t.tunnel.is_none() && t.payload == g.as_slice());
        // A GTP-U message that is no G-PDU (echo request, S flag) is the tunnel's datagram alone.
        let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 9, 0, 0];
        let f = eth(0x0800, &ipv4(UDP, &udp(2152, 2152, &echo)));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.dport, p.payload), (2152, &echo[..]));
        assert!(p.tunnel.is_none());
        // GTP-U in GTP-U: the outermost datagram is the tunnel.
        let nested = gtpu(&ipv4(UDP, &udp(2152, 2152, &g)));
        let f = eth(0x0800, &ipv4(UDP, &udp(3000, 2152, &nested)));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.dport, layers(&p)), (80, vec!["gtpu", "gtpu"]));
        assert_eq!(tunnel_of(&p), Some((3000, 2152, nested.len())));
        // ... and when the inner one carries no packet, it is the answer, in the outer tunnel.
        let inner_echo = gtpu(&ipv4(UDP, &udp(2152, 2152, &echo)));
        let f = eth(0x0800, &ipv4(UDP, &udp(3000, 2152, &inner_echo)));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.dport, p.payload), (2152, &echo[..]));
        assert_eq!(tunnel_of(&p), Some((3000, 2152, inner_echo.len())));
        // VXLAN is unwrapped but has no flow of its own.
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend(eth(0x0800, &inner));
        let f = eth(0x0800, &ipv4(UDP, &udp(5000, 4789, &vx)));
        let p = packet(dec.decode(0.0, 1, &f));
        assert_eq!((p.dport, layers(&p)), (80, vec!["vxlan"]));
        assert!(p.tunnel.is_none());
    }

    #[test]
    fn a_fragment_in_a_tunnel_still_counts_for_the_tunnel() {
        let body: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
        let dgram = udp(1111, 2222, &body);
        let mut dec = Decoder::new();
        let pieces: Vec<Vec<u8>> = fragments_of(&dgram, 5, 800)
            .into_iter()
            .map(|f| {
                let g = gtpu(&f[14..]);
                eth(0x0800, &ipv4(UDP, &udp(2152, 2152, &g)))
            })
            .collect();
        let last = pieces.len() - 1;
        for (i, f) in pieces.iter().enumerate() {
            let p = packet(dec.decode(1.0, 1, f));
            if i < last {
                // Held for reassembly: the tunnel's datagram comes out alone.
                assert_eq!((p.dport, p.tunnel.is_none()), (2152, true));
            } else {
                assert_eq!((p.sport, p.dport, p.payload), (1111, 2222, &body[..]));
                assert_eq!(tunnel_of(&p).map(|t| t.1), Some(2152));
            }
        }
    }

    fn fragments_of(payload: &[u8], ident: u16, size: usize) -> Vec<Vec<u8>> {
        let n = payload.len().div_ceil(size);
        (0..n)
            .map(|i| {
                let chunk = &payload[i * size..((i + 1) * size).min(payload.len())];
                let more = if i + 1 < n { 0x2000 } else { 0 };
                eth(
                    0x0800,
                    &ipv4_frag(UDP, ident, more | (i * size / 8) as u16, chunk),
                )
            })
            .collect()
    }

    #[test]
    fn fragments_reassemble_in_any_order() {
        let body: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let dgram = udp(1111, 2222, &body);
        let mut dec = Decoder::new();
        let frags = fragments_of(&dgram, 9, 512);
        for order in [frags.clone(), frags.iter().rev().cloned().collect()] {
            let last = order.len() - 1;
            for (i, f) in order.iter().enumerate() {
                match dec.decode(1.0, 1, f) {
                    Decoded::Held => assert!(i < last),
                    Decoded::Packet(p) => {
                        assert_eq!(i, last);
                        assert_eq!((p.sport, p.dport, p.payload), (1111, 2222, &body[..]));
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(dec.stats().fragments, 2 * frags.len() as u64);
        assert_eq!(dec.stats().fragments_dropped, 0);
        assert_eq!(dec.fragments_pending(), 0);
    }

    #[test]
    fn a_reassembled_malformed_datagram_is_malformed() {
        let bad = udp(1, 2, &[0; 40]);
        let mut bad = bad.clone();
        bad[4..6].copy_from_slice(&4u16.to_be_bytes()); // UDP length < 8
        let mut dec = Decoder::new();
        let frags = fragments_of(&bad, 3, 24);
        assert!(matches!(dec.decode(0.0, 1, &frags[0]), Decoded::Held));
        assert!(matches!(dec.decode(0.0, 1, &frags[1]), Decoded::Malformed));
    }

    #[test]
    fn overlapping_fragments_keep_the_first_copy() {
        // Python placed pieces by offset, so a later piece at a lower offset overwrote the
        // first copy's bytes: here the first copy of bytes 16..24 ("A") must win.
        let dgram = udp(7, 9, &[b'x'; 24]);
        let mut dec = Decoder::new();
        let first = eth(0x0800, &ipv4_frag(UDP, 5, 0x2000 | 2, &[b'A'; 8]));
        let low = eth(0x0800, &ipv4_frag(UDP, 5, 0x2000, &dgram[..24]));
        let last = eth(0x0800, &ipv4_frag(UDP, 5, 3, &dgram[24..]));
        assert!(matches!(dec.decode(0.0, 1, &first), Decoded::Held));
        assert!(matches!(dec.decode(0.0, 1, &low), Decoded::Held));
        let p = packet(dec.decode(0.0, 1, &last));
        assert_eq!(
            p.payload,
            &[&[b'x'; 8][..], &[b'A'; 8], &[b'x'; 8]].concat()[..]
        );
    }

    #[test]
    fn pending_datagrams_expire_by_capture_time() {
        let mut dec = Decoder::new();
        let a = eth(0x0800, &ipv4_frag(UDP, 1, 0x2000, &[0; 16]));
        let b = eth(0x0800, &ipv4_frag(UDP, 2, 0x2000, &[0; 16]));
        assert!(matches!(dec.decode(0.0, 1, &a), Decoded::Held));
        assert!(matches!(dec.decode(31.0, 1, &b), Decoded::Held));
        assert_eq!(dec.stats().fragments_dropped, 1);
        assert_eq!(dec.fragments_pending(), 1);
    }

    #[test]
    fn an_overlapping_flood_holds_bounded_memory_in_linear_time() {
        // Fragments that never complete: each a fresh offset of a few datagrams, overlapping
        // almost all of what came before (Python kept every copy: ~270 MB for one datagram).
        let run = |n: usize| {
            let mut dec = Decoder::new();
            let chunk = vec![0xAB; 1400];
            let started = std::time::Instant::now();
            let mut most = 0;
            for i in 0..n {
                let ident = (i % 3) as u16;
                let off = ((i / 3) % 8000) as u16; // in 8-byte units: overlapping pieces
                let f = eth(0x0800, &ipv4_frag(UDP, ident, 0x2000 | off, &chunk));
                assert!(matches!(dec.decode(i as f64 * 1e-3, 1, &f), Decoded::Held));
                most = most.max(dec.fragment_bytes_held());
            }
            (started.elapsed(), most, dec.stats())
        };
        let (small, _, _) = run(3_000);
        let (large, most, stats) = run(12_000);
        assert!(most <= 3 * (MAX_DATAGRAM + 16 * 1024), "held {most}");
        assert_eq!(stats.fragments, 12_000);
        // Four times the fragments, about four times the time (generous for a loaded machine).
        assert!(
            large < small * 12 + std::time::Duration::from_millis(200),
            "{small:?} {large:?}"
        );
    }

    #[test]
    fn many_pending_datagrams_stay_under_the_count_and_byte_bounds() {
        let mut dec = Decoder::new();
        let chunk = vec![1u8; 1400];
        for i in 0..3_000u32 {
            let f = eth(
                0x0800,
                &ipv4_frag(UDP, i as u16, 0x2000 | ((i % 40) * 175) as u16, &chunk),
            );
            // Distinct datagrams (the id and, past 65,536, the protocol vary the key).
            let _ = dec.decode(f64::from(i) * 1e-4, 1, &f);
            assert!(dec.fragments_pending() <= MAX_PENDING);
            assert!(dec.fragment_bytes_held() <= MAX_HELD_BYTES);
        }
        assert!(dec.stats().fragments_dropped >= 3_000 - MAX_PENDING as u64);
    }

    #[test]
    fn a_datagram_past_the_ip_limit_is_dropped() {
        let mut dec = Decoder::new();
        let f = eth(0x0800, &ipv4_frag(UDP, 1, 0x2000 | 8191, &[0; 16]));
        assert!(matches!(dec.decode(0.0, 1, &f), Decoded::Held));
        assert_eq!(dec.stats().fragments_dropped, 1);
        assert_eq!(dec.fragments_pending(), 0);
    }

    #[test]
    fn ipv6_extension_headers_and_fragments() {
        let t = tcp(1, 443, b"x");
        let mut ext = vec![60, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop, then destination options
        ext.extend([TCP, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend(&t);
        let mut dec = Decoder::new();
        let f = ipv6(0, &ext);
        let p = packet(dec.decode(0.0, 229, &f));
        assert_eq!(p.dport, 443);
        // Eight extension headers: past the bound.
        let mut many = Vec::new();
        for _ in 0..8 {
            many.extend([60, 0, 0, 0, 0, 0, 0, 0]);
        }
        many.extend(&t);
        assert!(matches!(
            dec.decode(0.0, 229, &ipv6(60, &many)),
            Decoded::Malformed
        ));
        // A fragment header: offset 0 and M clear is a whole datagram (an atomic fragment).
        let mut frag = vec![UDP, 0, 0, 0, 0, 0, 0, 77];
        frag.extend(udp(5, 6, b"abc"));
        let f = ipv6(44, &frag);
        let p = packet(dec.decode(0.0, 229, &f));
        assert_eq!((p.sport, p.payload), (5, &b"abc"[..]));
        assert_eq!(dec.stats().fragments, 1);
    }
}
