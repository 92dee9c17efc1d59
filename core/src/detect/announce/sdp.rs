//! SDP (RFC 8866) in a SIP message: each `m=` line with an RTP profile announces RTP on its port
//! and RTCP on the next one (RFC 3550 11), or on `a=rtcp:` (RFC 3605), or on none with
//! `a=rtcp-mux` (RFC 5761: RTCP rides the RTP flow). The address is the media section's `c=`,
//! else the session's. A port of 0 (a refused stream) or the address 0.0.0.0 (on hold) announces
//! nothing. SIP headers never start with `c=` or `m=` (compact forms use a colon), so the whole
//! message is read line by line without finding the body first.
use super::{address, lines, port, udp, Announced, Owner};
use crate::decode::Addr;

/// Media sections read per message at most.
const MAX_MEDIA: usize = 8;

struct Media {
    addr: Option<Option<Addr>>,
    port: u16,
    rtcp: Option<u16>,
    mux: bool,
}

/// `IN IP4 192.0.2.1` (the TTL/count suffix of a multicast address is cut): Some(None) for the
/// unspecified address, None for a line that is not one.
fn connection(v: &[u8]) -> Option<Option<Addr>> {
    let mut f = v.split(|&b| b == b' ');
    if f.next()? != b"IN" {
        return None;
    }
    let fam = f.next()?;
    let host = f.next()?;
    let host = host.split(|&b| b == b'/').next()?;
    if matches!(host, b"0.0.0.0" | b"::") {
        return Some(None);
    }
    let a = address(host)?;
    match (fam, a) {
        (b"IP4", Addr::V4(_)) | (b"IP6", Addr::V6(_)) => Some(Some(a)),
        _ => None,
    }
}

/// `audio 49170 RTP/AVP 0`: the port when the profile is RTP over UDP.
fn media(v: &[u8]) -> Option<u16> {
    let mut f = v.split(|&b| b == b' ');
    let _kind = f.next()?;
    let ports = f.next()?;
    let proto = f.next()?;
    // "49170/2" announces two consecutive RTP/RTCP pairs; the first is taken
    let digits = ports.split(|&b| b == b'/').next()?;
    let (p, len) = port(digits)?;
    if len != digits.len() {
        return None;
    }
    let rtp_udp = matches!(
        proto,
        b"RTP/AVP"
            | b"RTP/SAVP"
            | b"RTP/AVPF"
            | b"RTP/SAVPF"
            | b"UDP/TLS/RTP/SAVP"
            | b"UDP/TLS/RTP/SAVPF"
    );
    rtp_udp.then_some(p)
}

pub fn announced(bytes: &[u8]) -> Vec<Announced> {
    let mut session: Option<Option<Addr>> = None;
    let mut found: Vec<Media> = Vec::new();
    let mut skipping = false; // inside a media section that announces nothing
    for line in lines(bytes) {
        if let Some(v) = line.strip_prefix(b"m=") {
            if found.len() >= MAX_MEDIA {
                break;
            }
            match media(v) {
                Some(port) => {
                    found.push(Media {
                        addr: None,
                        port,
                        rtcp: None,
                        mux: false,
                    });
                    skipping = false;
                }
                None => skipping = true,
            }
        } else if let Some(v) = line.strip_prefix(b"c=") {
            let c = connection(v);
            if skipping {
                continue;
            }
            match found.last_mut() {
                Some(m) => m.addr = c.or(Some(None)),
                None => session = c.or(Some(None)),
            }
        } else if let Some(v) = line.strip_prefix(b"a=") {
            let Some(m) = found.last_mut().filter(|_| !skipping) else {
                continue;
            };
            if v == b"rtcp-mux" {
                m.mux = true;
            } else if let Some(r) = v.strip_prefix(b"rtcp:") {
                let digits = r.split(|&b| b == b' ').next().unwrap_or(&[]);
                m.rtcp = port(digits)
                    .filter(|&(_, n)| n == digits.len())
                    .map(|(p, _)| p);
            }
        }
    }
    let mut out = Vec::new();
    for m in found {
        // no c= at all: nothing to say where the media goes
        let Some(Some(addr)) = m.addr.or(session) else {
            continue;
        };
        let mut push = |port: u16, protocol: &'static str| {
            out.push(Announced {
                ip: Some(addr),
                port,
                proto: udp(),
                protocol,
                by: "SDP",
                owner: Owner::Sender,
            })
        };
        push(m.port, "rtp");
        if !m.mux {
            if let Some(r) = m.rtcp.or_else(|| m.port.checked_add(1)) {
                push(r, "rtcp");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(bytes: &[u8]) -> Vec<(Addr, u16, &'static str)> {
        announced(bytes)
            .into_iter()
            .map(|a| (a.ip.expect("sdp names its address"), a.port, a.protocol))
            .collect()
    }

    const A: Addr = Addr::V4([10, 77, 0, 2]);

    #[test]
    fn an_invite_offer_announces_rtp_and_rtcp() {
        let msg = b"INVITE sip:service@10.77.0.1:5060 SIP/2.0\r\nc: application/sdp\r\n\r\n\
            v=0\r\no=user1 53655765 2353687637 IN IP4 10.77.0.2\r\ns=-\r\n\
            c=IN IP4 10.77.0.2\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        assert_eq!(ends(msg), vec![(A, 6000, "rtp"), (A, 6001, "rtcp")]);
    }

    #[test]
    fn media_level_address_rtcp_attribute_mux_and_refused_streams() {
        let msg = b"c=IN IP4 10.77.0.9\r\n\
            m=audio 7000 RTP/AVP 0\r\nc=IN IP4 10.77.0.2\r\na=rtcp:7005\r\n\
            m=video 0 RTP/AVP 96\r\n\
            m=video 8000 RTP/SAVPF 96\r\na=rtcp-mux\r\n\
            m=application 9 TCP/TLS/BFCP *\r\nc=IN IP4 10.77.0.2\r\n\
            m=audio 9000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n";
        let v9 = Addr::V4([10, 77, 0, 9]);
        assert_eq!(
            ends(msg),
            vec![(A, 7000, "rtp"), (A, 7005, "rtcp"), (v9, 8000, "rtp")]
        );
    }

    #[test]
    fn hostile_lines_announce_nothing() {
        for bad in [
            &b"c=IN IP4 10.77.0.2\r\nm=audio 65536 RTP/AVP 0\r\n"[..],
            b"c=IN IP4 10.77.0.2\r\nm=audio 0 RTP/AVP 0\r\n",
            b"c=IN IP4 10.77.0.2\r\nm=audio 99999999999999999999 RTP/AVP 0\r\n",
            b"c=IN IP4 10.77.0.256\r\nm=audio 6000 RTP/AVP 0\r\n",
            b"c=IN IP6 10.77.0.2\r\nm=audio 6000 RTP/AVP 0\r\n",
            b"c=IN IP4 10.77.0.2\r\nm=audio 6000x RTP/AVP 0\r\n",
            b"m=audio 6000 RTP/AVP 0\r\n", // no address at all
            b"c=IN IP4 10.77.0.2\r\nm=audio 6000\r\n",
        ] {
            assert!(ends(bad).is_empty(), "{}", String::from_utf8_lossy(bad));
        }
        // RTCP on the port after 65535 does not exist
        let top = ends(b"c=IN IP4 10.77.0.2\r\nm=audio 65535 RTP/AVP 0\r\n");
        assert_eq!(top, vec![(A, 65535, "rtp")]);
    }

    #[test]
    fn media_sections_are_bounded() {
        let mut msg = b"c=IN IP4 10.77.0.2\r\n".to_vec();
        for p in 0..100u16 {
            msg.extend_from_slice(
                format!("m=audio {} RTP/AVP 0\r\na=rtcp-mux\r\n", 2000 + 2 * p).as_bytes(),
            );
        }
        assert_eq!(ends(&msg).len(), MAX_MEDIA);
    }
}
