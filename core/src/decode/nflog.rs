//! Linux NFLOG (LINKTYPE_NFLOG, what `tcpdump -i nflog:N` records): a 4-byte header whose
//! address family says IPv4 or IPv6, then netlink-style TLVs (length, type), each padded to 4
//! bytes; the NFULA_PAYLOAD TLV holds the packet from its IP header on.

use super::bytes::u8_at;
use super::link::{at, Started, Stop};
use super::walk::Step;

pub(crate) const LINKTYPE_NFLOG: u32 = 239;

/// nflog_hdr: family, version, resource id (the log group).
const NFLOG_HEADER: usize = 4;
/// tlv_length (counting these 4 bytes) and tlv_type.
const TLV_HEADER: usize = 4;
const TLV_ALIGN: usize = 4;
/// TLVs in one frame: the kernel writes about twenty attribute types at most.
const MAX_TLVS: usize = 64;
/// The attribute whose value is the packet; the first one the kernel writes is the packet
/// header (type 1), which tells the byte order.
const NFULA_PAYLOAD: u16 = 9;
const NFULA_PACKET_HDR: u16 = 1;
/// Netlink's nested and byte-order flags in the type.
const NLA_TYPE_MASK: u16 = 0x3FFF;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// The TLV length and type are in the byte order of the host that logged (and libpcap writes
/// them as it got them): the first TLV's type is NFULA_PACKET_HDR in the right one.
fn little_endian(frame: &[u8]) -> bool {
    let (Some(a), Some(b)) = (
        u8_at(frame, NFLOG_HEADER + 2),
        u8_at(frame, NFLOG_HEADER + 3),
    ) else {
        return true;
    };
    let le = u16::from_le_bytes([a, b]) & NLA_TYPE_MASK;
    let be = u16::from_be_bytes([a, b]) & NLA_TYPE_MASK;
    le == NFULA_PACKET_HDR || be != NFULA_PACKET_HDR
}

fn word(frame: &[u8], at: usize, le: bool) -> Option<u16> {
    let b = frame.get(at..at.checked_add(2)?)?;
    let pair = [*b.first()?, *b.get(1)?];
    Some(if le {
        u16::from_le_bytes(pair)
    } else {
        u16::from_be_bytes(pair)
    })
}

pub(crate) fn nflog(frame: &[u8]) -> Started<'_> {
    let Some(family) = u8_at(frame, 0) else {
        return Err(Stop::Malformed);
    };
    if frame.len() < NFLOG_HEADER {
        return Err(Stop::Malformed);
    }
    let le = little_endian(frame);
    let mut off = NFLOG_HEADER;
    for _ in 0..MAX_TLVS {
        if off >= frame.len() {
            break;
        }
        let (Some(len), Some(kind)) = (word(frame, off, le), word(frame, off + 2, le)) else {
            return Err(Stop::Malformed);
        };
        let len = usize::from(len);
        if len < TLV_HEADER {
            return Err(Stop::Malformed);
        }
        let end = off + len;
        if kind & NLA_TYPE_MASK == NFULA_PAYLOAD {
            // A snap length may cut the payload: keep what was captured, as for any frame.
            let Some(payload) = frame.get(off + TLV_HEADER..end.min(frame.len())) else {
                return Err(Stop::Malformed);
            };
            return match family {
                AF_INET => at(payload, Step::Ipv4(0)),
                AF_INET6 => at(payload, Step::Ipv6(0)),
                _ => Err(Stop::NotIp),
            };
        }
        if end > frame.len() {
            return Err(Stop::Malformed);
        }
        off = end
            .checked_next_multiple_of(TLV_ALIGN)
            .ok_or(Stop::Malformed)?;
    }
    // No payload: logged with a copy length of 0, or past the TLV bound.
    Err(Stop::NotIp)
}

#[cfg(test)]
mod tests {
    use super::super::link::{start, Stop};
    use super::super::wlan::tests::udp4;
    use super::super::{Decoded, Decoder};

    fn tlv(le: bool, kind: u16, value: &[u8]) -> Vec<u8> {
        let len = (4 + value.len()) as u16;
        let mut t = Vec::new();
        if le {
            t.extend(len.to_le_bytes());
            t.extend(kind.to_le_bytes());
        } else {
            t.extend(len.to_be_bytes());
            t.extend(kind.to_be_bytes());
        }
        t.extend(value);
        t.resize(t.len().next_multiple_of(4), 0);
        t
    }

    /// What the kernel writes: packet header, mark, prefix (5 bytes: padded), then the payload.
    fn nflog(le: bool, family: u8, packet: &[u8]) -> Vec<u8> {
        let mut f = vec![family, 0, 0, 5];
        f.extend(tlv(le, 1, &[0x08, 0x00, 3, 0]));
        f.extend(tlv(le, 2, &[0, 0, 0, 7]));
        f.extend(tlv(le, 10, b"pw: \0"));
        f.extend(tlv(le, 9, packet));
        f
    }

    fn ports(frame: &[u8]) -> Option<(u16, u16, Vec<u8>)> {
        match Decoder::new().decode(0.0, 239, frame) {
            Decoded::Packet(p) => Some((p.sport, p.dport, p.payload.to_vec())),
            _ => None,
        }
    }

    fn stop(frame: &[u8]) -> Option<Stop> {
        start(239, frame).and_then(|s| s.err())
    }

    #[test]
    fn payload_tlv_holds_the_packet_in_either_byte_order() {
        let ip = udp4(40000, 53, b"query");
        let want = Some((40000, 53, b"query".to_vec()));
        assert_eq!(ports(&nflog(true, 2, &ip)), want);
        assert_eq!(ports(&nflog(false, 2, &ip)), want);
        // IPv6 by the family byte.
        let mut v6 = vec![0x60, 0, 0, 0, 0, 13, 17, 64];
        v6.extend([0; 32]);
        v6.extend([0x9c, 0x40, 0, 53, 0, 13, 0, 0]);
        v6.extend(b"query");
        assert_eq!(ports(&nflog(true, 10, &v6)), want);
        // The family decides, not the bytes: IPv6 bytes logged as IPv4 are malformed.
        assert!(ports(&nflog(true, 2, &v6)).is_none());
        assert_eq!(stop(&nflog(true, 7, &ip)), Some(Stop::NotIp));
        // No payload attribute (a copy length of 0): not IP.
        let mut bare = vec![2, 0, 0, 5];
        bare.extend(tlv(true, 1, &[0x08, 0x00, 3, 0]));
        assert_eq!(stop(&bare), Some(Stop::NotIp));
        assert_eq!(stop(&bare[..4]), Some(Stop::NotIp));
        // The payload TLV's value only: padding after it is not the packet's.
        let f = nflog(true, 2, &ip[..ip.len() - 1]);
        let s = start(239, &f).unwrap().unwrap();
        assert_eq!(s.buf.len(), ip.len() - 1);
    }

    #[test]
    fn lying_and_cut_tlvs_are_malformed_never_a_panic() {
        let ip = udp4(40000, 53, b"query");
        let good = nflog(true, 2, &ip);
        let payload_at = good.len() - ip.len().next_multiple_of(4) - 4;
        // A TLV shorter than its own header, or longer than the frame before the payload.
        for len in [0u16, 3, 0xFFFF] {
            let mut f = good.clone();
            f[4..6].copy_from_slice(&len.to_le_bytes());
            assert_eq!(stop(&f), Some(Stop::Malformed), "length {len}");
        }
        // A payload TLV longer than the frame (a snap length cut it): what was captured.
        let mut f = good.clone();
        f[payload_at..payload_at + 2].copy_from_slice(&0x4000u16.to_le_bytes());
        assert_eq!(ports(&f).map(|p| p.1), Some(53));
        let mut dec = Decoder::new();
        for cut in 0..good.len() {
            let got = dec.decode(0.0, 239, &good[..cut]);
            if cut < payload_at + 4 + 28 {
                assert!(!matches!(got, Decoded::Packet(_)), "cut at {cut}");
            }
        }
        for i in 0..payload_at + 4 {
            for v in [0x00, 0x01, 0x09, 0xFF] {
                let mut f = good.clone();
                f[i] = v;
                let _ = dec.decode(0.0, 239, &f);
            }
        }
        // TLVs without end are bounded: 4-byte TLVs fill a 64 KiB frame.
        let mut many = vec![2, 0, 0, 5];
        for _ in 0..16000 {
            many.extend(tlv(true, 3, &[]));
        }
        many.extend(tlv(true, 9, &ip));
        assert_eq!(stop(&many), Some(Stop::NotIp));
    }
}
