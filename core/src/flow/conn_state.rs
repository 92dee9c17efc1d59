//! Zeek's connection summary: `conn_state` (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0,
//! RSTRH, SH, SHR, OTH) and the `history` letters, kept per packet in a fixed-size struct so
//! portwatch's flows can be joined with Zeek's conn.log on more than the tuple.
//!
//! Ported from Zeek: the per-endpoint TCP state machine is
//! `TCPSessionAdapter::UpdateStateMachine` (src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc),
//! the letters are its `update_history` and the UDP analyzer's, and the state names are
//! `conn_state()` in scripts/base/protocols/conn/main.zeek. Where Zeek needs what this API
//! is not given (sequence numbers, windows, checksums), the nearest simple rule is used:
//!
//! - 's', 'h', 'f', 'r' are recorded once per direction (Zeek records them again when the
//!   sequence number differs from the last one of that kind; a retransmission, the usual
//!   repeat, has the same one, so the common case agrees).
//! - 'c', 'g', 't', 'w' (bad checksum, content gap, retransmission, zero window) and 'x' are
//!   never produced: they need checksums, sequence numbers or windows.
//! - Zeek flips the roles itself on a SYN/SYN-ACK reversal (the originator's SYN-ACK, then
//!   the responder's plain SYN); here the caller owns the roles, so that case establishes
//!   both sides without flipping. `swap_roles` is the caller's flip and adds '^' as Zeek's
//!   `Connection::FlipRoles` does.
//! - The endpoint sizes that tell REJ from RSTO/RSTR are counted from payload lengths
//!   (outside RST packets, as Zeek leaves RST payload out of the sequence space) instead of
//!   from sequence numbers.
#![forbid(unsafe_code)]

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Longest history kept. Without '^' at most 14 letters can appear (7 kinds per direction);
/// only a caller that swaps roles more than 18 times fills it, and letters past it are dropped.
pub const HISTORY_CAP: usize = 32;

/// "Seen" bits, one per history kind, kept per role slot like Zeek's `hist_seen` masks ('s'
/// and 'h' share one, as in Zeek).
const SEEN_SYN: u8 = 1 << 0;
const SEEN_FIN: u8 = 1 << 1;
const SEEN_RST: u8 = 1 << 2;
const SEEN_FIN_RST: u8 = 1 << 3;
const SEEN_MULTI_FLAG: u8 = 1 << 4;
const SEEN_DATA: u8 = 1 << 5;
const SEEN_ACK: u8 = 1 << 6;

/// Zeek's `TCP_ENDPOINT_*` states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Tcp {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

#[derive(Clone, Copy, Debug, Default)]
struct Endpoint {
    state: Tcp,
    /// The state before the last change (Zeek's `prev_state`).
    prev: Tcp,
    /// Payload was sent outside RST packets (Zeek compares the endpoint's size with zero only:
    /// a flag keeps the struct small, it sits in every flow).
    sent: bool,
    /// UDP: a datagram was seen from this side.
    active: bool,
}

impl Endpoint {
    fn set(&mut self, state: Tcp) {
        if state != self.state {
            self.prev = self.state;
            self.state = state;
        }
    }

    /// Zeek's `o_inactive` / `r_inactive`.
    fn inactive(&self) -> bool {
        matches!(self.state, Tcp::Inactive | Tcp::Partial)
    }
}

const ORIG: usize = 0;
const RESP: usize = 1;

/// One connection's Zeek `conn_state` and `history`, updated packet by packet.
#[derive(Clone, Debug)]
pub struct ConnHistory {
    tcp: bool,
    /// Indexed by role: `ORIG`, `RESP`.
    ep: [Endpoint; 2],
    /// Indexed by role slot, not by host: Zeek does not move these on a flip.
    seen: [u8; 2],
    hist: [u8; HISTORY_CAP],
    /// Letters in `hist` (at most `HISTORY_CAP`, which fits a byte).
    hist_len: u8,
}

impl ConnHistory {
    /// `tcp`: the flow is TCP; otherwise UDP flow semantics (Zeek's). Needed up front because
    /// a packet with no flags and no payload is an empty datagram for UDP ('D') but nothing
    /// for TCP.
    pub fn new(tcp: bool) -> Self {
        ConnHistory {
            tcp,
            ep: [Endpoint::default(); 2],
            seen: [0; 2],
            hist: [0; HISTORY_CAP],
            hist_len: 0,
        }
    }

    /// One packet: `from_orig` as the caller's current roles say, `tcp_flags` the TCP flags
    /// byte (0 for UDP), `payload_len` the transport payload length.
    pub fn packet(&mut self, from_orig: bool, tcp_flags: u8, payload_len: usize) {
        let d = if from_orig { ORIG } else { RESP };
        if !self.tcp {
            // Zeek's UDP analyzer marks every datagram, empty ones too.
            if let Some(ep) = self.ep.get_mut(d) {
                ep.active = true;
            }
            self.check_history(d, SEEN_DATA, b'D');
            return;
        }
        self.update_history(d, tcp_flags, payload_len);
        if tcp_flags & RST == 0 {
            if let Some(ep) = self.ep.get_mut(d) {
                ep.sent |= payload_len > 0;
            }
        }
        let flags = Flags(tcp_flags);
        match self.state_of(d) {
            Tcp::Inactive => self.update_inactive(d, flags, payload_len),
            Tcp::SynSent | Tcp::SynAckSent => self.update_syn_sent(d, flags),
            Tcp::Established | Tcp::Partial => self.update_established(d, flags),
            Tcp::Closed => self.update_closed(d, flags),
            Tcp::Reset => {}
        }
    }

    /// The caller decided the other side is the originator: swap the endpoints and add '^'.
    pub fn swap_roles(&mut self) {
        self.ep.swap(ORIG, RESP);
        self.add_history(b'^');
    }

    /// Zeek's `conn_state` for the connection as seen so far.
    pub fn state(&self) -> &'static str {
        let (o, r) = (&self.ep[ORIG], &self.ep[RESP]);
        if !self.tcp {
            return match (o.active, r.active) {
                (true, true) => "SF",
                (true, false) => "S0",
                (false, true) => "SHR",
                (false, false) => "OTH",
            };
        }
        let (os, rs) = (o.state, r.state);
        if rs == Tcp::Reset {
            if matches!(os, Tcp::SynSent | Tcp::SynAckSent)
                || (os == Tcp::Reset && !o.sent && !r.sent)
            {
                "REJ"
            } else if o.inactive() {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Tcp::Reset {
            if !r.inactive() {
                "RSTO"
            } else if rstos0_history(self.history_bytes()) {
                "RSTOS0"
            } else {
                "OTH"
            }
        } else if rs == Tcp::Closed && os == Tcp::Closed {
            "SF"
        } else if os == Tcp::Closed {
            if r.inactive() {
                "SH"
            } else {
                "S2"
            }
        } else if rs == Tcp::Closed {
            if o.inactive() {
                "SHR"
            } else {
                "S3"
            }
        } else if os == Tcp::SynSent && rs == Tcp::Inactive {
            "S0"
        } else if os == Tcp::Established && rs == Tcp::Established {
            "S1"
        } else {
            "OTH"
        }
    }

    /// Zeek's `history` string: originator's letters upper-case, responder's lower-case.
    pub fn history(&self) -> String {
        self.history_bytes()
            .iter()
            .map(|&b| char::from(b))
            .collect()
    }

    fn history_bytes(&self) -> &[u8] {
        self.hist.get(..usize::from(self.hist_len)).unwrap_or(&[])
    }

    fn add_history(&mut self, letter: u8) {
        if let Some(slot) = self.hist.get_mut(usize::from(self.hist_len)) {
            *slot = letter;
            self.hist_len += 1;
        }
    }

    /// Zeek's `CheckHistory`: the first packet of a kind from a role adds its letter.
    fn check_history(&mut self, d: usize, kind: u8, upper: u8) {
        let Some(seen) = self.seen.get_mut(d) else {
            return;
        };
        if *seen & kind == 0 {
            *seen |= kind;
            self.add_history(if d == ORIG {
                upper
            } else {
                upper.to_ascii_lowercase()
            });
        }
    }

    fn update_history(&mut self, d: usize, flags: u8, len: usize) {
        let bits = [SYN, FIN, RST].iter().filter(|&&b| flags & b != 0).count();
        if bits > 1 {
            if flags & FIN != 0 && flags & RST != 0 {
                self.check_history(d, SEEN_FIN_RST, b'I');
            } else {
                self.check_history(d, SEEN_MULTI_FLAG, b'Q');
            }
        } else if flags & SYN != 0 {
            self.check_history(d, SEEN_SYN, if flags & ACK != 0 { b'H' } else { b'S' });
        } else if flags & FIN != 0 {
            self.check_history(d, SEEN_FIN, b'F');
        } else if flags & RST != 0 {
            self.check_history(d, SEEN_RST, b'R');
        } else if len > 0 {
            self.check_history(d, SEEN_DATA, b'D');
        } else if flags & ACK != 0 {
            self.check_history(d, SEEN_ACK, b'A');
        }
    }

    fn state_of(&self, d: usize) -> Tcp {
        self.ep.get(d).map_or(Tcp::Inactive, |e| e.state)
    }

    fn prev_of(&self, d: usize) -> Tcp {
        self.ep.get(d).map_or(Tcp::Inactive, |e| e.prev)
    }

    fn set(&mut self, d: usize, state: Tcp) {
        if let Some(ep) = self.ep.get_mut(d) {
            ep.set(state);
        }
    }

    /// Zeek's `UpdateInactiveState`.
    fn update_inactive(&mut self, d: usize, f: Flags, len: usize) {
        let p = 1 - d;
        if f.syn() {
            if d == ORIG {
                self.set(
                    d,
                    if f.ack() {
                        Tcp::SynAckSent
                    } else {
                        Tcp::SynSent
                    },
                );
            } else {
                // SYN/SYN-ACK reversal: Zeek flips the roles and establishes the side that
                // sent the SYN-ACK; the roles stay the caller's here (see the module notes).
                if !f.ack() && self.state_of(p) == Tcp::SynAckSent {
                    self.set(p, Tcp::Established);
                }
                if self.state_of(p) == Tcp::SynSent {
                    self.set(p, Tcp::Established);
                }
                self.set(d, Tcp::Established);
            }
        }
        if f.fin() {
            self.set(d, Tcp::Closed);
        }
        if f.rst() {
            self.set(d, Tcp::Reset);
        }
        if self.state_of(d) == Tcp::Inactive {
            if d == RESP && len == 0 && self.state_of(ORIG) == Tcp::SynSent {
                // Some stacks ack the SYN before answering it: not a partial connection.
            } else if f.ack() && self.state_of(p) == Tcp::Established {
                // The originator's SYN was missed: establish rather than call it partial.
                self.set(d, Tcp::Established);
            } else {
                self.set(d, Tcp::Partial);
            }
        }
    }

    /// Zeek's `UpdateSYN_SentState` (its other branches only raise weirds).
    fn update_syn_sent(&mut self, d: usize, f: Flags) {
        if f.fin() {
            self.set(d, Tcp::Closed);
        }
        if f.rst() {
            self.set(d, Tcp::Reset);
        }
    }

    /// Zeek's `UpdateEstablishedState`.
    fn update_established(&mut self, d: usize, f: Flags) {
        let p = 1 - d;
        if f.syn()
            && self.state_of(d) == Tcp::Partial
            && self.state_of(p) == Tcp::Inactive
            && !f.ack()
        {
            self.set(d, Tcp::SynSent);
        }
        if f.fin() && !f.rst() {
            self.set(d, Tcp::Closed);
            // The peer sent FIN then RST: that was a normal close after all.
            if self.state_of(p) == Tcp::Reset && self.prev_of(p) == Tcp::Closed {
                self.set(p, Tcp::Closed);
            }
        }
        if f.rst() {
            self.set(d, Tcp::Reset);
        }
    }

    /// Zeek's `UpdateClosedState`: a RST after both FINs changes nothing.
    fn update_closed(&mut self, d: usize, f: Flags) {
        if f.rst() && self.state_of(1 - d) != Tcp::Closed {
            self.set(d, Tcp::Reset);
        }
    }
}

#[derive(Clone, Copy)]
struct Flags(u8);

impl Flags {
    fn syn(self) -> bool {
        self.0 & SYN != 0
    }
    fn fin(self) -> bool {
        self.0 & FIN != 0
    }
    fn rst(self) -> bool {
        self.0 & RST != 0
    }
    fn ack(self) -> bool {
        self.0 & ACK != 0
    }
}

/// Zeek's `/\^?S[^HAFGIQ]*R.*/ == history` (a whole-string match): the originator's SYN, then
/// its RST before any of its handshake, ack, data, FIN, gap or odd-flag letters.
fn rstos0_history(h: &[u8]) -> bool {
    let h = h.strip_prefix(b"^").unwrap_or(h);
    let Some(rest) = h.strip_prefix(b"S") else {
        return false;
    };
    for &c in rest {
        if c == b'R' {
            return true;
        }
        if b"HAFGIQ".contains(&c) {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const PSH: u8 = 0x08;
    const SA: u8 = SYN | ACK;
    const FA: u8 = FIN | ACK;
    const RA: u8 = RST | ACK;
    const PA: u8 = PSH | ACK;

    const O: bool = true;
    const R: bool = false;

    /// Feeds (from_orig, flags, payload_len) packets to a fresh TCP history.
    fn tcp(pkts: &[(bool, u8, usize)]) -> ConnHistory {
        let mut h = ConnHistory::new(true);
        for &(o, f, l) in pkts {
            h.packet(o, f, l);
        }
        h
    }

    fn assert_conn(h: &ConnHistory, state: &str, history: &str) {
        assert_eq!((h.state(), h.history().as_str()), (state, history));
    }

    const HANDSHAKE: [(bool, u8, usize); 3] = [(O, SYN, 0), (R, SA, 0), (O, ACK, 0)];

    fn after_handshake(rest: &[(bool, u8, usize)]) -> ConnHistory {
        let mut pkts = HANDSHAKE.to_vec();
        pkts.extend_from_slice(rest);
        tcp(&pkts)
    }

    #[test]
    fn sf_handshake_data_and_fin_both_ways() {
        let h = after_handshake(&[
            (O, PA, 100),
            (R, ACK, 0),
            (R, PA, 200),
            (O, ACK, 0),
            (O, FA, 0),
            (R, FA, 0),
            (O, ACK, 0),
        ]);
        // Zeek's textbook history for a clean connection.
        assert_conn(&h, "SF", "ShADadFf");
    }

    #[test]
    fn s0_syn_unanswered_and_retransmitted() {
        assert_conn(&tcp(&[(O, SYN, 0)]), "S0", "S");
        assert_conn(&tcp(&[(O, SYN, 0), (O, SYN, 0), (O, SYN, 0)]), "S0", "S");
    }

    #[test]
    fn s0_when_responder_acks_the_syn_first() {
        // Some stacks ack the SYN before the SYN-ACK; Zeek does not call that partial.
        assert_conn(&tcp(&[(O, SYN, 0), (R, ACK, 0)]), "S0", "Sa");
    }

    #[test]
    fn rej_syn_answered_by_rst() {
        assert_conn(&tcp(&[(O, SYN, 0), (R, RA, 0)]), "REJ", "Sr");
        // Both sides reset with no data is still a rejection.
        assert_conn(&tcp(&[(O, SYN, 0), (R, RA, 0), (O, RST, 0)]), "REJ", "SrR");
    }

    #[test]
    fn s1_established_not_closed() {
        assert_conn(&after_handshake(&[]), "S1", "ShA");
        assert_conn(&after_handshake(&[(O, PA, 5), (R, PA, 5)]), "S1", "ShADd");
    }

    #[test]
    fn s2_and_s3_one_sided_close() {
        assert_conn(&after_handshake(&[(O, FA, 0), (R, ACK, 0)]), "S2", "ShAFa");
        assert_conn(&after_handshake(&[(R, FA, 0)]), "S3", "ShAf");
    }

    #[test]
    fn rsto_and_rstr_aborts_after_establishment() {
        assert_conn(
            &after_handshake(&[(O, PA, 10), (O, RA, 0)]),
            "RSTO",
            "ShADR",
        );
        assert_conn(
            &after_handshake(&[(O, PA, 10), (R, RST, 0)]),
            "RSTR",
            "ShADr",
        );
    }

    #[test]
    fn rstos0_syn_then_originator_rst() {
        assert_conn(&tcp(&[(O, SYN, 0), (O, RST, 0)]), "RSTOS0", "SR");
        // A RST from the originator with no SYN of its own is only OTH.
        assert_conn(&tcp(&[(O, RST, 0)]), "OTH", "R");
    }

    #[test]
    fn rstrh_synack_then_responder_rst() {
        assert_conn(&tcp(&[(R, SA, 0), (R, RST, 0)]), "RSTRH", "hr");
        assert_conn(&tcp(&[(R, RST, 0)]), "RSTRH", "r");
    }

    #[test]
    fn sh_syn_then_fin_without_answer() {
        assert_conn(&tcp(&[(O, SYN, 0), (O, FIN, 0)]), "SH", "SF");
    }

    #[test]
    fn shr_synack_then_fin_without_syn() {
        assert_conn(&tcp(&[(R, SA, 0), (R, FA, 0)]), "SHR", "hf");
    }

    #[test]
    fn oth_midstream() {
        assert_conn(&tcp(&[(O, PA, 10), (R, PA, 10), (O, ACK, 0)]), "OTH", "DdA");
        assert_conn(&tcp(&[]), "OTH", "");
    }

    #[test]
    fn missed_syn_then_ack_establishes() {
        // Zeek: SYN-ACK, then the originator's pure ACK, means the SYN was missed.
        assert_conn(&tcp(&[(R, SA, 0), (O, ACK, 0)]), "S1", "hA");
    }

    #[test]
    fn syn_synack_reversal_establishes_without_flipping() {
        // Zeek would flip the roles here (and add '^'); the caller owns them in portwatch.
        assert_conn(&tcp(&[(O, SA, 0), (R, SYN, 0)]), "S1", "Hs");
    }

    #[test]
    fn syn_after_partial_restarts() {
        assert_conn(&tcp(&[(O, PA, 10), (O, SYN, 0)]), "S0", "DS");
    }

    #[test]
    fn rst_after_both_fins_is_still_sf() {
        assert_conn(
            &after_handshake(&[(O, FA, 0), (R, FA, 0), (O, RST, 0)]),
            "SF",
            "ShAFfR",
        );
    }

    #[test]
    fn fin_then_rst_from_peer_then_fin_is_normal_close() {
        // The responder's FIN then RST; the originator's later FIN turns it back to closed.
        let h = after_handshake(&[(R, FA, 0), (R, RST, 0)]);
        assert_eq!(h.state(), "RSTR");
        let mut h = h;
        h.packet(O, FA, 0);
        assert_conn(&h, "SF", "ShAfrF");
    }

    #[test]
    fn multi_flag_letters() {
        // SYN+FIN: 'Q', and the state machine still sees both flags.
        assert_conn(&tcp(&[(O, SYN | FIN, 0)]), "SH", "Q");
        // FIN+RST: 'I'.
        assert_conn(&after_handshake(&[(O, FIN | RST, 0)]), "RSTO", "ShAI");
        // SYN+RST from the responder: 'q'.
        assert_conn(&tcp(&[(O, SYN, 0), (R, SYN | RST, 0)]), "RSTR", "Sq");
    }

    #[test]
    fn data_in_flagged_packets_is_not_d() {
        // Zeek records data only for packets without SYN/FIN/RST.
        assert_conn(&after_handshake(&[(O, FA, 50), (R, FA, 50)]), "SF", "ShAFf");
    }

    #[test]
    fn tcp_null_packet_adds_no_letter() {
        assert_conn(&tcp(&[(O, 0, 0)]), "OTH", "");
    }

    #[test]
    fn rej_needs_no_data_when_both_reset() {
        // Data before the resets makes it an abort, not a rejection.
        let h = tcp(&[(O, PA, 10), (R, RST, 0), (O, RST, 0)]);
        assert_eq!(h.state(), "RSTR");
    }

    #[test]
    fn rst_payload_is_not_counted_as_data() {
        // Both reset, the only payload rode on a RST (outside the sequence space): REJ.
        let h = tcp(&[(O, RST, 20), (R, RST, 0)]);
        assert_conn(&h, "REJ", "Rr");
    }

    #[test]
    fn udp_states() {
        let udp = |pkts: &[(bool, usize)]| {
            let mut h = ConnHistory::new(false);
            for &(o, l) in pkts {
                h.packet(o, 0, l);
            }
            h
        };
        assert_conn(&udp(&[(O, 30), (O, 30)]), "S0", "D");
        assert_conn(&udp(&[(O, 30), (R, 90), (O, 30)]), "SF", "Dd");
        assert_conn(&udp(&[(R, 90)]), "SHR", "d");
        assert_conn(&udp(&[]), "OTH", "");
        // Empty datagrams count: Zeek marks every datagram.
        assert_conn(&udp(&[(O, 0)]), "S0", "D");
    }

    #[test]
    fn swap_roles_before_any_packet_prefixes_caret() {
        let mut h = ConnHistory::new(true);
        h.swap_roles();
        for (o, f, l) in [(O, SYN, 0), (R, SA, 0), (O, ACK, 0), (O, FA, 0), (R, FA, 0)] {
            h.packet(o, f, l);
        }
        assert_conn(&h, "SF", "^ShAFf");
    }

    #[test]
    fn swap_roles_midway_swaps_the_endpoints() {
        let mut h = ConnHistory::new(false);
        h.packet(O, 0, 10);
        assert_eq!(h.state(), "S0");
        h.swap_roles();
        // The side that spoke is now the responder; earlier letters stay as they were.
        assert_conn(&h, "SHR", "D^");

        // TCP: the SYN's sender becomes the responder.
        let mut h = tcp(&[(O, SYN, 0)]);
        h.swap_roles();
        assert_eq!(h.state(), "OTH");
        h.swap_roles();
        assert_conn(&h, "S0", "S^^");
    }

    #[test]
    fn history_is_bounded() {
        let mut h = ConnHistory::new(true);
        for _ in 0..1000 {
            h.swap_roles();
            h.packet(O, SYN, 0);
            h.packet(R, RA, 0);
        }
        assert_eq!(h.history().len(), HISTORY_CAP);
    }

    #[test]
    fn rstos0_pattern() {
        assert!(rstos0_history(b"SR"));
        assert!(rstos0_history(b"^SR"));
        assert!(rstos0_history(b"SsR"));
        assert!(rstos0_history(b"SRA"));
        assert!(!rstos0_history(b"SAR"));
        assert!(!rstos0_history(b"R"));
        assert!(!rstos0_history(b"S"));
        assert!(!rstos0_history(b"^^SR"));
    }

    #[test]
    fn any_flags_never_panic() {
        // Every flag byte from every role, in a few orders, on both transports.
        for tcp in [true, false] {
            for first in 0..=255u8 {
                let mut h = ConnHistory::new(tcp);
                h.packet(true, first, usize::MAX);
                for f in [first, !first, first.rotate_left(3)] {
                    h.packet(false, f, 1);
                    h.packet(true, f, 0);
                }
                assert!(!h.state().is_empty());
                assert!(h.history().len() <= HISTORY_CAP);
            }
        }
    }
}
