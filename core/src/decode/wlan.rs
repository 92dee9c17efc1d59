//! IEEE 802.11 data frames, and the radio headers captures put before them (radiotap, PPI,
//! Prism, AVS): where a data frame's LLC/SNAP header starts, and where the frame ends (a
//! frame check sequence is not payload). Only data frames carry packets; management and
//! control frames are not IP, and an encrypted body cannot be read.

use super::bytes::{be32, le16, le32, u8_at};
use super::link::{llc, start_inner, Started, Stop};

pub(crate) const LINKTYPE_IEEE802_11: u32 = 105;
pub(crate) const LINKTYPE_PRISM: u32 = 119;
pub(crate) const LINKTYPE_RADIOTAP: u32 = 127;
pub(crate) const LINKTYPE_AVS: u32 = 163;
pub(crate) const LINKTYPE_PPI: u32 = 192;

/// Frame control, duration, three addresses, sequence control.
const DOT11_HEADER: usize = 24;
const DOT11_ADDR: usize = 6;
const QOS_CONTROL: usize = 2;
/// The HT/VHT/HE control field a QoS data frame has when its Order bit is set (+HTC).
const HT_CONTROL: usize = 4;
/// Destination, source and length before the LLC header of an A-MSDU subframe.
const AMSDU_SUBFRAME_HEADER: usize = 14;
const TYPE_DATA: u8 = 2;
/// Subtype bits of a data frame: QoS (QoS control follows the addresses), and "no data" (null
/// and CF-only frames have no body).
const SUBTYPE_QOS: u8 = 0x8;
const SUBTYPE_NO_DATA: u8 = 0x4;
const FLAG_TO_DS: u8 = 0x01;
const FLAG_FROM_DS: u8 = 0x02;
const FLAG_PROTECTED: u8 = 0x40;
const FLAG_ORDER: u8 = 0x80;
/// QoS control bit: the body is an A-MSDU (its first subframe is read).
const QOS_AMSDU: u8 = 0x80;
/// Sequence control's fragment number: only fragment 0 starts with the LLC header.
const FRAGMENT_NUMBER: u16 = 0x000F;
const FCS_LEN: usize = 4;

/// it_version, it_pad, it_len, the first it_present word.
const RADIOTAP_MIN: usize = 8;
/// it_present words (bit 31 chains another): far more than the namespaces defined.
const MAX_RADIOTAP_PRESENT: usize = 16;
const RADIOTAP_EXT: u32 = 1 << 31;
const RADIOTAP_TSFT: u32 = 1 << 0;
const RADIOTAP_FLAGS: u32 = 1 << 1;
/// Radiotap Flags field: the frame ends with its FCS; padding between the 802.11 header and
/// the body (to a 32-bit boundary); the FCS failed.
const RT_FCS_AT_END: u8 = 0x10;
const RT_DATA_PAD: u8 = 0x20;
const RT_BAD_FCS: u8 = 0x40;

/// pph_version, pph_flags, pph_len, pph_dlt.
const PPI_HEADER: usize = 8;
const PPI_FIELD_HEADER: usize = 4;
/// Fields in one PPI header (each at least 4 bytes of a 16-bit length, so bounded anyway).
const MAX_PPI_FIELDS: usize = 64;
const PPI_ALIGNED: u8 = 0x01;
/// 802.11-Common field: TSFT (8 bytes), then its flags (FCS present, FCS invalid).
const PPI_80211_COMMON: u16 = 2;
const PPI_COMMON_FLAGS_AT: usize = 8;
const PPI_FCS_PRESENT: u16 = 0x0001;
const PPI_FCS_INVALID: u16 = 0x0004;

/// Prism (linux-wlan-ng wlansniffrm) header: msgcode, msglen, device name, ten 12-byte items.
const PRISM_HEADER: usize = 144;
/// The AVS capture header's magic cookies (versions 1 and 2), big-endian.
const AVS_MAGIC: [u32; 2] = [0x8021_1001, 0x8021_1002];
/// magic, header length.
const AVS_MIN: usize = 8;

fn round_up(n: usize, to: usize) -> Option<usize> {
    n.checked_next_multiple_of(to)
}

/// The frame without its last `FCS_LEN` bytes when `fcs` says they are the FCS.
fn without_fcs(frame: &[u8], fcs: bool) -> Result<&[u8], Stop> {
    if !fcs {
        return Ok(frame);
    }
    frame
        .len()
        .checked_sub(FCS_LEN)
        .and_then(|n| frame.get(..n))
        .ok_or(Stop::Malformed)
}

/// An 802.11 frame (IEEE 802.11-2020 §9.2): a data frame's LLC header after the MAC header
/// (three addresses, four between access points (ToDS and FromDS: WDS), QoS control, HT
/// control); `pad` when radiotap says the header is padded to 32 bits.
pub(crate) fn dot11(frame: &[u8], pad: bool) -> Started<'_> {
    let (Some(fc), Some(flags)) = (u8_at(frame, 0), u8_at(frame, 1)) else {
        return Err(Stop::Malformed);
    };
    // Protocol version 0 only (802.11ah's PV1 frames have another header).
    if fc & 0x03 != 0 || (fc >> 2) & 0x03 != TYPE_DATA {
        return Err(Stop::NotIp);
    }
    let subtype = fc >> 4;
    let mut len = DOT11_HEADER;
    if flags & (FLAG_TO_DS | FLAG_FROM_DS) == FLAG_TO_DS | FLAG_FROM_DS {
        len += DOT11_ADDR;
    }
    let qos_at = len;
    if subtype & SUBTYPE_QOS != 0 {
        len += QOS_CONTROL;
        if flags & FLAG_ORDER != 0 {
            len += HT_CONTROL;
        }
    }
    if frame.len() < len {
        return Err(Stop::Malformed);
    }
    if subtype & SUBTYPE_NO_DATA != 0 {
        return Err(Stop::NotIp);
    }
    if flags & FLAG_PROTECTED != 0 {
        return Err(Stop::Protected);
    }
    match le16(frame, DOT11_HEADER - 2) {
        Some(seq) if seq & FRAGMENT_NUMBER == 0 => {}
        // A later fragment of an MSDU: the middle of a packet, no header to read.
        Some(_) => return Err(Stop::NotIp),
        None => return Err(Stop::Malformed),
    }
    if pad {
        len = round_up(len, 4).ok_or(Stop::Malformed)?;
    }
    let amsdu =
        subtype & SUBTYPE_QOS != 0 && u8_at(frame, qos_at).is_some_and(|q| q & QOS_AMSDU != 0);
    if amsdu {
        // One packet per frame: the first subframe's (a frame of several gives its first).
        len += AMSDU_SUBFRAME_HEADER;
    }
    llc(frame, len)
}

/// Radiotap (radiotap.org): a little-endian header of `it_len` bytes whose Flags field says
/// whether the frame carries its FCS and whether its 802.11 header is padded.
pub(crate) fn radiotap(frame: &[u8]) -> Started<'_> {
    let (Some(version), Some(it_len), Some(first)) =
        (u8_at(frame, 0), le16(frame, 2), le32(frame, 4))
    else {
        return Err(Stop::Malformed);
    };
    let it_len = usize::from(it_len);
    let (Some(head), Some(body)) = (frame.get(..it_len), frame.get(it_len..)) else {
        return Err(Stop::Malformed);
    };
    if version != 0 || it_len < RADIOTAP_MIN {
        return Err(Stop::Malformed);
    }
    let mut words = 1;
    let mut present = first;
    while present & RADIOTAP_EXT != 0 {
        if words >= MAX_RADIOTAP_PRESENT {
            return Err(Stop::Malformed);
        }
        present = le32(head, 4 + 4 * words).ok_or(Stop::Malformed)?;
        words += 1;
    }
    let mut flags = 0;
    if first & RADIOTAP_FLAGS != 0 {
        // The fields follow the present words in bit order, each aligned to its size: only
        // TSFT (8 bytes, 8-aligned) comes before Flags.
        let mut off = 4 + 4 * words;
        if first & RADIOTAP_TSFT != 0 {
            off = round_up(off, 8).ok_or(Stop::Malformed)? + 8;
        }
        flags = u8_at(head, off).ok_or(Stop::Malformed)?;
    }
    if flags & RT_BAD_FCS != 0 {
        // The radio says these bytes are corrupt: nothing in them is evidence.
        return Err(Stop::Malformed);
    }
    let body = without_fcs(body, flags & RT_FCS_AT_END != 0)?;
    dot11(body, flags & RT_DATA_PAD != 0)
}

/// PPI (the Per-Packet Information header, CACE Technologies 1.0.10): little-endian fields of
/// which 802.11-Common says whether an FCS ends the frame; `pph_dlt` names what follows.
pub(crate) fn ppi(frame: &[u8]) -> Started<'_> {
    let (Some(version), Some(pflags), Some(pph_len), Some(dlt)) = (
        u8_at(frame, 0),
        u8_at(frame, 1),
        le16(frame, 2),
        le32(frame, 4),
    ) else {
        return Err(Stop::Malformed);
    };
    let pph_len = usize::from(pph_len);
    let (Some(head), Some(body)) = (frame.get(..pph_len), frame.get(pph_len..)) else {
        return Err(Stop::Malformed);
    };
    if version != 0 || pph_len < PPI_HEADER {
        return Err(Stop::Malformed);
    }
    let mut off = PPI_HEADER;
    let mut fcs = false;
    for _ in 0..MAX_PPI_FIELDS {
        if off >= pph_len {
            break;
        }
        let (Some(ftype), Some(flen)) = (le16(head, off), le16(head, off + 2)) else {
            return Err(Stop::Malformed);
        };
        let data = off + PPI_FIELD_HEADER;
        let next = data + usize::from(flen);
        if next > pph_len {
            return Err(Stop::Malformed);
        }
        if ftype == PPI_80211_COMMON {
            let f = le16(head, data + PPI_COMMON_FLAGS_AT)
                .filter(|_| data + PPI_COMMON_FLAGS_AT + 2 <= next)
                .ok_or(Stop::Malformed)?;
            if f & PPI_FCS_INVALID != 0 {
                return Err(Stop::Malformed);
            }
            fcs = f & PPI_FCS_PRESENT != 0;
        }
        off = if pflags & PPI_ALIGNED != 0 {
            round_up(next, 4).ok_or(Stop::Malformed)?
        } else {
            next
        };
    }
    let body = without_fcs(body, fcs)?;
    match dlt {
        LINKTYPE_IEEE802_11 => dot11(body, false),
        // Any other link type decoded here (not PPI again: `start_inner` has no PPI).
        _ => start_inner(dlt, body).unwrap_or(Err(Stop::NotIp)),
    }
}

/// Prism: a fixed 144-byte header, then the 802.11 frame; some drivers write AVS headers
/// under this link type, which their magic cookie tells apart (as Wireshark does).
pub(crate) fn prism(frame: &[u8]) -> Started<'_> {
    if be32(frame, 0).is_some_and(|m| AVS_MAGIC.contains(&m)) {
        return avs(frame);
    }
    match frame.get(PRISM_HEADER..) {
        Some(body) => dot11(body, false),
        None => Err(Stop::Malformed),
    }
}

/// AVS (the wlan-ng capture header): magic, then the header's length, both big-endian.
pub(crate) fn avs(frame: &[u8]) -> Started<'_> {
    let (Some(magic), Some(len)) = (be32(frame, 0), be32(frame, 4)) else {
        return Err(Stop::Malformed);
    };
    let body = usize::try_from(len)
        .ok()
        .filter(|&n| n >= AVS_MIN)
        .and_then(|n| frame.get(n..));
    match body {
        Some(body) if AVS_MAGIC.contains(&magic) => dot11(body, false),
        _ => Err(Stop::Malformed),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::link::{start, Stop};
    use super::super::{Decoded, Decoder, TCP, UDP};

    /// An IPv4 UDP datagram from 10.0.0.1:`sport` to 10.0.0.2:`dport`.
    pub(crate) fn udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0];
        p.extend(((28 + payload.len()) as u16).to_be_bytes());
        p.extend([0, 1, 0, 0, 64, UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend(sport.to_be_bytes());
        p.extend(dport.to_be_bytes());
        p.extend(((8 + payload.len()) as u16).to_be_bytes());
        p.extend([0, 0]);
        p.extend(payload);
        p
    }

    fn snap(etype: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0xAA, 0xAA, 0x03, 0, 0, 0];
        f.extend(etype.to_be_bytes());
        f.extend(payload);
        f
    }

    /// An 802.11 MAC header: frame control, duration, addresses (four for ToDS+FromDS), sequence
    /// control with fragment number `frag`, QoS control and HT control as the subtype and the
    /// Order bit say.
    fn mac(fc: u8, flags: u8, frag: u8, qos: u8) -> Vec<u8> {
        let mut h = vec![fc, flags, 0x3a, 0x01];
        for i in 0..3u8 {
            h.extend([2, 0, 0, 0, 0, i]);
        }
        h.extend([frag, 0x10]);
        if flags & 0x03 == 0x03 {
            h.extend([2, 0, 0, 0, 0, 9]);
        }
        if fc & 0x80 != 0 {
            h.extend([qos, 0]);
            if flags & 0x80 != 0 {
                h.extend([0xfc, 0xff, 0xff, 0xff]);
            }
        }
        h
    }

    fn data(fc: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = mac(fc, flags, 0, 0);
        f.extend(body);
        f
    }

    fn radiotap(flags: Option<u8>, tsft: bool, frame: &[u8]) -> Vec<u8> {
        let mut present = 0u32;
        let mut fields = Vec::new();
        if tsft {
            present |= 1;
            fields.extend([0; 8]); // at 8: already 8-aligned
        }
        if let Some(f) = flags {
            present |= 2;
            fields.push(f);
        }
        present |= 1 << 3; // a channel field after, 2-aligned: padding before it
        if fields.len() % 2 == 1 {
            fields.push(0);
        }
        fields.extend([0x6c, 0x09, 0xa0, 0x00]);
        let mut h = vec![0, 0];
        h.extend(((8 + fields.len()) as u16).to_le_bytes());
        h.extend(present.to_le_bytes());
        h.extend(fields);
        h.extend(frame);
        h
    }

    fn ppi(dlt: u32, fcs_flags: Option<u16>, inner: &[u8]) -> Vec<u8> {
        let mut fields = Vec::new();
        if let Some(f) = fcs_flags {
            fields.extend(2u16.to_le_bytes());
            fields.extend(20u16.to_le_bytes());
            let mut common = vec![0; 20];
            common[8..10].copy_from_slice(&f.to_le_bytes());
            fields.extend(common);
        }
        let mut h = vec![0, 0];
        h.extend(((8 + fields.len()) as u16).to_le_bytes());
        h.extend(dlt.to_le_bytes());
        h.extend(fields);
        h.extend(inner);
        h
    }

    fn decode(lt: u32, frame: &[u8]) -> Result<(u16, u16, Vec<u8>), String> {
        let mut dec = Decoder::new();
        match dec.decode(0.0, lt, frame) {
            Decoded::Packet(p) => Ok((p.sport, p.dport, p.payload.to_vec())),
            other => Err(format!("{other:?}")),
        }
    }

    fn stop(lt: u32, frame: &[u8]) -> Option<Stop> {
        start(lt, frame).and_then(|s| s.err())
    }

    const WANT: (u16, u16, &[u8]) = (40000, 53, b"query");

    fn ok(lt: u32, frame: &[u8]) {
        let got = decode(lt, frame).unwrap_or_else(|e| panic!("linktype {lt}: {e}"));
        assert_eq!((got.0, got.1, &got.2[..]), WANT, "linktype {lt}");
    }

    fn body() -> Vec<u8> {
        snap(0x0800, &udp4(40000, 53, b"query"))
    }

    #[test]
    fn data_frames_of_every_header_shape_reach_the_packet() {
        let b = body();
        // Data to the AP, from the AP, WDS (four addresses), QoS, QoS with +HTC, QoS in WDS
        // with +HTC, and the CF-Ack/CF-Poll data subtypes that still carry a body.
        for (fc, flags) in [
            (0x08, 0x01),
            (0x08, 0x02),
            (0x08, 0x03),
            (0x88, 0x01),
            (0x88, 0x81),
            (0x88, 0x83),
            (0x18, 0x00),
            (0x28, 0x02),
            (0x38, 0x02),
            (0x98, 0x01),
            (0xB8, 0x01),
        ] {
            ok(105, &data(fc, flags, &b));
        }
        // The Order bit on a non-QoS data frame adds no HT control (strictly ordered service).
        ok(105, &data(0x08, 0x81, &b));
        // An A-MSDU: the first subframe (destination, source, length) holds the packet.
        let mut f = mac(0x88, 0x01, 0, 0x80);
        f.extend([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
        f.extend((b.len() as u16).to_be_bytes());
        f.extend(&b);
        ok(105, &f);
        // The 802.1H bridge-tunnel OUI, IPv6 and VLAN-tagged bodies go the Ethernet way.
        let mut tunnel = b.clone();
        tunnel[5] = 0xF8;
        ok(105, &data(0x08, 0x01, &tunnel));
        let mut tagged = snap(0x8100, &[0, 5, 0x08, 0x00]);
        tagged.extend(udp4(40000, 53, b"query"));
        ok(105, &data(0x08, 0x01, &tagged));
    }

    #[test]
    fn other_frames_are_not_ip_and_encrypted_ones_are_counted() {
        let b = body();
        let cases: Vec<(Vec<u8>, Stop)> = vec![
            (data(0x80, 0x00, &[0; 40]), Stop::NotIp), // beacon
            (vec![0xD4, 0, 0, 0, 2, 0, 0, 0, 0, 1], Stop::NotIp), // ACK: 10 bytes
            (data(0x48, 0x01, &[]), Stop::NotIp),      // null data
            (data(0xC8, 0x01, &[]), Stop::NotIp),      // QoS null
            (data(0x09, 0x01, &b), Stop::NotIp),       // protocol version 1
            (data(0x08, 0x41, &b), Stop::Protected),
            (data(0x88, 0xC1, &b), Stop::Protected),
            (
                data(0x08, 0x01, &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]),
                Stop::NotIp,
            ), // STP
            (
                data(0x08, 0x01, &[0xAA, 0xAA, 0x03, 0, 0, 0x0C, 0x20, 0x00]),
                Stop::NotIp,
            ), // Cisco OUI
            (data(0x08, 0x01, &b[..7]), Stop::Malformed),
            (mac(0x88, 0x81, 0, 0)[..29].to_vec(), Stop::Malformed),
        ];
        for (frame, want) in &cases {
            assert_eq!(stop(105, frame), Some(*want), "{frame:02x?}");
        }
        // A later fragment has no header to read: not IP (the first fragment decodes).
        let mut later = mac(0x08, 0x05, 1, 0);
        later.extend(&b);
        assert_eq!(stop(105, &later), Some(Stop::NotIp));
        let mut first = mac(0x08, 0x05, 0, 0);
        first.extend(&b);
        ok(105, &first);
        // ARP under SNAP reaches the EtherType dispatch, which says not IP.
        let mut dec = Decoder::new();
        let arp = data(0x08, 0x01, &snap(0x0806, &[0; 28]));
        assert!(matches!(dec.decode(0.0, 105, &arp), Decoded::NotIp));
        for f in [data(0x08, 0x41, &b), data(0x88, 0x42, &b)] {
            assert!(matches!(dec.decode(0.0, 105, &f), Decoded::NotIp));
        }
        assert_eq!(dec.stats().protected, 2);
    }

    #[test]
    fn radiotap_flags_say_fcs_and_padding() {
        let b = body();
        let frame = data(0x08, 0x01, &b);
        ok(127, &radiotap(None, false, &frame));
        ok(127, &radiotap(Some(0), true, &frame));
        // With the FCS flag the last 4 bytes are not the frame's: the walk ends before them.
        let mut with_fcs = frame.clone();
        with_fcs.extend([0xde, 0xad, 0xbe, 0xef]);
        for tsft in [false, true] {
            let rt = radiotap(Some(0x10), tsft, &with_fcs);
            let s = start(127, &rt).unwrap().unwrap();
            assert_eq!(s.buf.len(), frame.len(), "tsft {tsft}");
            ok(127, &rt);
        }
        // Without the flag those bytes would be read as payload: the FCS flag matters.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 0, TCP, 64];
        v6.extend([0; 32]);
        v6.extend([
            0x9c, 0x40, 0, 53, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 1, 0, 0, 0, 0, 0,
        ]);
        v6.extend(b"query");
        let mut jumbo = data(0x08, 0x01, &snap(0x86DD, &v6)); // payload length 0: to the end
        jumbo.extend([0xde, 0xad, 0xbe, 0xef]);
        ok(127, &radiotap(Some(0x10), false, &jumbo));
        assert_ne!(
            decode(127, &radiotap(Some(0), false, &jumbo)).unwrap().2,
            b"query"
        );
        // Padding after a 26-byte QoS header, to 28.
        let mut padded = mac(0x88, 0x01, 0, 0);
        padded.extend([0, 0]);
        padded.extend(&b);
        ok(127, &radiotap(Some(0x20), false, &padded));
        assert!(decode(127, &radiotap(Some(0), false, &padded)).is_err());
        // The radio's "bad FCS" makes the frame corrupt, not evidence.
        let bad = radiotap(Some(0x50), false, &with_fcs);
        assert_eq!(stop(127, &bad), Some(Stop::Malformed));
        // Extended present words are skipped, but not without end.
        let mut ext = vec![0, 0, 16, 0];
        ext.extend((2u32 | 1 << 31).to_le_bytes());
        ext.extend(8u32.to_le_bytes());
        ext.extend([0x10, 0, 0, 0]);
        ext.extend(&with_fcs);
        ok(127, &ext);
        let mut endless = vec![0, 0, 0xff, 0xff];
        for _ in 0..16000 {
            endless.extend(0x8000_0000u32.to_le_bytes());
        }
        endless.truncate(0xffff);
        endless.extend(&frame);
        assert_eq!(stop(127, &endless), Some(Stop::Malformed));
    }

    #[test]
    fn ppi_prism_and_avs_lead_to_the_same_frame() {
        let frame = data(0x88, 0x02, &mac_free_body());
        let mut with_fcs = frame.clone();
        with_fcs.extend([1, 2, 3, 4]);
        ok(192, &ppi(105, None, &frame));
        ok(192, &ppi(105, Some(0), &frame));
        let p = ppi(105, Some(1), &with_fcs);
        assert_eq!(start(192, &p).unwrap().unwrap().buf.len(), frame.len());
        ok(192, &p);
        assert_eq!(stop(192, &ppi(105, Some(4), &frame)), Some(Stop::Malformed));
        // PPI before Ethernet or raw IP; PPI in PPI is not followed.
        let mut eth = vec![0; 12];
        eth.extend([0x08, 0x00]);
        eth.extend(udp4(40000, 53, b"query"));
        ok(192, &ppi(1, None, &eth));
        ok(192, &ppi(101, None, &udp4(40000, 53, b"query")));
        let nested = ppi(192, None, &ppi(105, None, &frame));
        assert_eq!(stop(192, &nested), Some(Stop::NotIp));
        assert_eq!(stop(192, &ppi(147, None, &frame)), Some(Stop::NotIp));
        // Prism: 144 bytes; AVS: its own length, under its link type or Prism's.
        let mut prism = vec![0x44, 0, 0, 0, 144, 0, 0, 0];
        prism.resize(144, 0);
        prism.extend(&frame);
        ok(119, &prism);
        let mut avs = 0x8021_1001u32.to_be_bytes().to_vec();
        avs.extend(64u32.to_be_bytes());
        avs.resize(64, 0);
        avs.extend(&frame);
        ok(163, &avs);
        ok(119, &avs);
        let mut wrong = avs.clone();
        wrong[3] = 0x07;
        assert_eq!(stop(163, &wrong), Some(Stop::Malformed));
    }

    fn mac_free_body() -> Vec<u8> {
        body()
    }

    #[test]
    fn fddi_llc_frames_carry_packets() {
        let mut f = vec![0x50];
        f.extend([0; 12]);
        f.extend(body());
        ok(10, &f);
        f[0] = 0xD4; // synchronous LLC, another priority
        ok(10, &f);
        f[0] = 0x41; // SMT
        assert_eq!(stop(10, &f), Some(Stop::NotIp));
        assert_eq!(stop(10, &[0x50; 12]), Some(Stop::Malformed));
    }

    /// Every new link type with a good frame: cut at every length, and every header byte set
    /// to 0x00 and 0xFF (lengths that lie), never panics; a cut inside the headers is never a
    /// packet.
    #[test]
    fn cut_and_lying_headers_never_panic() {
        let frame = data(0x88, 0x81, &body());
        let mut fddi = vec![0x50];
        fddi.extend([0; 12]);
        fddi.extend(body());
        let mut prism = vec![0; 144];
        prism.extend(&frame);
        let mut avs = 0x8021_1001u32.to_be_bytes().to_vec();
        avs.extend(16u32.to_be_bytes());
        avs.resize(16, 0);
        avs.extend(&frame);
        let cases: Vec<(u32, Vec<u8>, usize)> = vec![
            (105, frame.clone(), frame.len() - 28),
            (
                127,
                radiotap(Some(0x30), true, &frame),
                28 + frame.len() - 28,
            ),
            (192, ppi(105, Some(1), &frame), 32 + frame.len() - 28),
            (119, prism, 144 + frame.len() - 28),
            (163, avs, 16 + frame.len() - 28),
            (10, fddi.clone(), fddi.len() - 28),
        ];
        let mut dec = Decoder::new();
        for (lt, good, headers) in &cases {
            for cut in 0..good.len() {
                let got = dec.decode(0.0, *lt, &good[..cut]);
                if cut < *headers {
                    assert!(!matches!(got, Decoded::Packet(_)), "{lt} cut at {cut}");
                }
            }
            for i in 0..*headers {
                for v in [0x00, 0xFF, 0x80] {
                    let mut f = good.clone();
                    f[i] = v;
                    let _ = dec.decode(0.0, *lt, &f);
                }
            }
        }
    }
}
