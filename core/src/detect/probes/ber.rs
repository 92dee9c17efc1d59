//! Minimal ASN.1 BER reading for the probes that need it (Kerberos, SNMP, LDAP): pure, bounded.
//!
//! Only single-byte tags and definite lengths: every protocol read here uses DER-like encodings.
//! The readers never recurse: a caller walks a fixed number of levels by hand, so the depth is
//! bounded by the caller's code, never by the input.
#![forbid(unsafe_code)]

/// The most length octets of a long-form length (4: lengths up to 4 GiB).
pub const MAX_LENGTH_BYTES: usize = 4;
/// The widest INTEGER read as a number (fits an i64).
pub const MAX_INT_BYTES: usize = 8;

/// One element's header: its tag, where its content starts, and the length it claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u8,
    pub start: usize,
    pub len: usize,
}

impl Tlv {
    /// Where the content claims to end (it may lie past the input: a cut prefix).
    pub fn end(&self) -> usize {
        self.start.saturating_add(self.len)
    }
}

/// The element header at `off`; None when malformed. The content may extend past the end of
/// `data` (a cut prefix): callers decide.
pub fn read_tlv(data: &[u8], off: usize) -> Option<Tlv> {
    let tag = *data.get(off)?;
    let first = *data.get(off.checked_add(1)?)?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let start = off + 2;
    if first < 0x80 {
        return Some(Tlv {
            tag,
            start,
            len: usize::from(first),
        });
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > MAX_LENGTH_BYTES {
        return None;
    }
    let octets = data.get(start..start.checked_add(n)?)?;
    let len = octets
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Some(Tlv {
        tag,
        start: start + n,
        len,
    })
}

/// (value, offset after) of an INTEGER at `off` of 1 to 8 content bytes, present in full.
pub fn read_int(data: &[u8], off: usize) -> Option<(i64, usize)> {
    let tlv = read_tlv(data, off)?;
    if tlv.tag != 0x02 || !(1..=MAX_INT_BYTES).contains(&tlv.len) {
        return None;
    }
    let bytes = data.get(tlv.start..tlv.end())?;
    // Two's complement: start from all ones when the sign bit is set.
    let init: i64 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        -1
    } else {
        0
    };
    let value = bytes.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b));
    Some((value, tlv.end()))
}

/// (content, offset after) of a primitive element tagged `tag` at `off`, present in full
/// (`0x04`: OCTET STRING; context tags for implicit strings).
pub fn read_octets(data: &[u8], off: usize, tag: u8) -> Option<(&[u8], usize)> {
    let tlv = read_tlv(data, off)?;
    if tlv.tag != tag {
        return None;
    }
    let content = data.get(tlv.start..tlv.end())?;
    Some((content, tlv.end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        assert_eq!(
            read_tlv(&[0x30, 0x03], 0),
            Some(Tlv {
                tag: 0x30,
                start: 2,
                len: 3
            })
        );
        assert_eq!(
            read_tlv(&[0x30, 0x82, 0x01, 0x00], 0),
            Some(Tlv {
                tag: 0x30,
                start: 4,
                len: 256
            })
        );
        assert_eq!(read_tlv(&[0x30, 0x82, 0x01], 0), None); // length octets cut
        assert_eq!(read_tlv(&[0x30, 0x80], 0), None); // indefinite
        assert_eq!(read_tlv(&[0x30, 0x85, 1, 2, 3, 4, 5], 0), None); // too many length octets
        assert_eq!(read_tlv(&[0x1f, 0x01, 0x00], 0), None); // multi-byte tag
        assert_eq!(read_tlv(&[0x30], 0), None);
        assert_eq!(read_tlv(&[0x30, 0x00], usize::MAX), None);
        let big = read_tlv(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff], 0).unwrap();
        assert_eq!(big.len, 0xffff_ffff);
        assert_eq!(
            read_octets(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff], 0, 0x04),
            None
        );
    }

    #[test]
    fn integers_are_signed() {
        assert_eq!(read_int(&[0x02, 0x01, 0x05], 0), Some((5, 3)));
        assert_eq!(read_int(&[0x02, 0x01, 0xff], 0), Some((-1, 3)));
        assert_eq!(read_int(&[0x02, 0x02, 0x00, 0x80], 0), Some((128, 4)));
        assert_eq!(
            read_int(&[0x02, 0x08, 0x80, 0, 0, 0, 0, 0, 0, 0], 0),
            Some((i64::MIN, 10))
        );
        assert_eq!(read_int(&[0x02, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 1], 0), None);
        assert_eq!(read_int(&[0x02, 0x00], 0), None);
        assert_eq!(read_int(&[0x02, 0x02, 0x01], 0), None);
        assert_eq!(read_int(&[0x04, 0x01, 0x01], 0), None);
    }

    #[test]
    fn octets() {
        assert_eq!(
            read_octets(b"\x04\x03abcX", 0, 0x04),
            Some((&b"abc"[..], 5))
        );
        assert_eq!(read_octets(b"\x80\x01z", 0, 0x80), Some((&b"z"[..], 3)));
        assert_eq!(read_octets(b"\x04\x03ab", 0, 0x04), None);
    }
}
