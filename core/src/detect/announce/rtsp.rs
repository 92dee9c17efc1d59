//! RTSP (RFC 2326 12.39, RFC 7826 18.54): the `Transport` header of a SETUP and its reply names
//! the UDP ports of the RTP and RTCP flows: `client_port=4588-4589` (the client's),
//! `server_port=6256-6257` (the server's); RFC 7826's `dest_addr`/`src_addr` give
//! `"host:port"`/`"host:port"` pairs instead (the client's and the server's). One port alone means
//! RTCP on the next. `interleaved=` (RTP inside the RTSP connection), TCP lower transports and
//! multicast announce nothing here.
use super::{address, lines, port, udp, Announced, Owner};
use crate::decode::Addr;

/// `4588-4589` or `4588`: RTP's port and RTCP's.
fn pair(v: &[u8]) -> Option<(u16, Option<u16>)> {
    let mut it = v.splitn(2, |&b| b == b'-');
    let a = it.next()?;
    let (rtp, n) = port(a)?;
    if n != a.len() {
        return None;
    }
    let rtcp = match it.next() {
        None => rtp.checked_add(1),
        Some(b) => {
            let (r, n) = port(b)?;
            if n != b.len() {
                return None;
            }
            Some(r)
        }
    };
    Some((rtp, rtcp))
}

/// `"192.0.2.5:4588"/"192.0.2.5:4589"` or `":4588"`: (address, RTP port, RTCP port).
fn addr_pair(v: &[u8]) -> Option<(Option<Addr>, u16, Option<u16>)> {
    let mut out: Vec<(Option<Addr>, u16)> = Vec::new();
    for part in v.split(|&b| b == b'/').take(2) {
        let inner = part.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        let colon = inner.iter().rposition(|&b| b == b':')?;
        let host = inner.get(..colon)?;
        let host = host
            .strip_prefix(b"[")
            .and_then(|h| h.strip_suffix(b"]"))
            .unwrap_or(host);
        let digits = inner.get(colon + 1..)?;
        let (p, n) = port(digits)?;
        if n != digits.len() {
            return None;
        }
        let ip = if host.is_empty() {
            None
        } else {
            Some(address(host)?)
        };
        out.push((ip, p));
    }
    let &(ip, rtp) = out.first()?;
    let rtcp = out.get(1).map(|x| x.1).or_else(|| rtp.checked_add(1));
    Some((ip, rtp, rtcp))
}

pub fn announced(bytes: &[u8], from_client: bool) -> Vec<Announced> {
    let mut out = Vec::new();
    for line in lines(bytes) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (
            line.get(..colon).unwrap_or(&[]),
            line.get(colon + 1..).unwrap_or(&[]),
        );
        if !name.trim_ascii().eq_ignore_ascii_case(b"Transport") {
            continue;
        }
        // several transport specs may be offered, comma-separated: the first usable one counts
        for spec in value.split(|&b| b == b',') {
            let params: Vec<&[u8]> = spec
                .trim_ascii()
                .split(|&b| b == b';')
                .map(<[u8]>::trim_ascii)
                .take(16)
                .collect();
            let Some(lower) = params.first() else {
                continue;
            };
            let lower = lower.to_ascii_uppercase();
            if !(lower == b"RTP/AVP"
                || lower == b"RTP/AVP/UDP"
                || lower == b"RTP/SAVP"
                || lower == b"RTP/SAVP/UDP"
                || lower == b"RTP/AVPF"
                || lower == b"RTP/SAVPF")
            {
                continue;
            }
            if params.iter().any(|p| p.eq_ignore_ascii_case(b"multicast")) {
                continue;
            }
            let mut found = Vec::new();
            for p in &params {
                let Some(eq) = p.iter().position(|&b| b == b'=') else {
                    continue;
                };
                let (k, v) = (p.get(..eq).unwrap_or(&[]), p.get(eq + 1..).unwrap_or(&[]));
                let client_side = match k {
                    b"client_port" | b"dest_addr" => true,
                    b"server_port" | b"src_addr" => false,
                    _ => continue,
                };
                let parsed = if k.ends_with(b"_port") {
                    pair(v).map(|(a, b)| (None, a, b))
                } else {
                    addr_pair(v)
                };
                let Some((ip, rtp, rtcp)) = parsed else {
                    continue;
                };
                // whose port: the client's for client_port/dest_addr, the server's otherwise
                let owner = if client_side == from_client {
                    Owner::Sender
                } else {
                    Owner::Receiver
                };
                found.push((ip, rtp, "rtp", owner));
                if let Some(r) = rtcp {
                    found.push((ip, r, "rtcp", owner));
                }
            }
            if !found.is_empty() {
                out.extend(
                    found
                        .into_iter()
                        .map(|(ip, port, protocol, owner)| Announced {
                            ip,
                            port,
                            proto: udp(),
                            protocol,
                            by: "RTSP",
                            owner,
                        }),
                );
                break;
            }
        }
        if out.len() >= super::MAX_ANNOUNCED {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(bytes: &[u8], from_client: bool) -> Vec<(Option<Addr>, u16, &'static str, Owner)> {
        announced(bytes, from_client)
            .into_iter()
            .map(|a| (a.ip, a.port, a.protocol, a.owner))
            .collect()
    }

    #[test]
    fn a_setup_reply_names_both_sides() {
        // RFC 2326 section 12.39's example, as a reply (the server sends it)
        let reply = b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 12345678\r\n\
            Transport: RTP/AVP;unicast;client_port=4588-4589;server_port=6256-6257\r\n\r\n";
        assert_eq!(
            ends(reply, false),
            vec![
                (None, 4588, "rtp", Owner::Receiver),
                (None, 4589, "rtcp", Owner::Receiver),
                (None, 6256, "rtp", Owner::Sender),
                (None, 6257, "rtcp", Owner::Sender),
            ]
        );
        // the SETUP request: the client's own ports
        let setup = b"SETUP rtsp://example.com/foo/bar/baz.rm RTSP/1.0\r\nCSeq: 302\r\n\
            transport: RTP/AVP;unicast;client_port=4588\r\n\r\n";
        assert_eq!(
            ends(setup, true),
            vec![
                (None, 4588, "rtp", Owner::Sender),
                (None, 4589, "rtcp", Owner::Sender)
            ]
        );
    }

    #[test]
    fn rtsp2_addresses() {
        // RFC 7826 section 18.54
        let reply = b"RTSP/2.0 200 OK\r\nTransport: RTP/AVP/UDP; unicast;\
            dest_addr=\"192.0.2.53:4588\"/\"192.0.2.53:4589\"; src_addr=\"198.51.100.241:6256\"/\"198.51.100.241:6257\"\r\n";
        let c = Some(Addr::V4([192, 0, 2, 53]));
        let s = Some(Addr::V4([198, 51, 100, 241]));
        let got = ends(reply, false);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (c, 4588, "rtp", Owner::Receiver));
        assert_eq!(got[3], (s, 6257, "rtcp", Owner::Sender));
    }

    #[test]
    fn interleaved_tcp_multicast_and_hostile_ports_announce_nothing() {
        for bad in [
            &b"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"[..],
            b"Transport: RTP/AVP;multicast;client_port=4588-4589\r\n",
            b"Transport: RTP/AVP;unicast;client_port=0-1\r\n",
            b"Transport: RTP/AVP;unicast;client_port=65536-65537\r\n",
            b"Transport: RTP/AVP;unicast;client_port=4588-99999999999999999999\r\n",
            b"Transport: RTP/AVP;unicast;client_port=45x8\r\n",
            b"Transport: RTP/AVP;unicast;dest_addr=\"999.0.0.1:4588\"\r\n",
            b"Transport: RTP/AVP;unicast;dest_addr=192.0.2.1:4588\r\n",
            b"X-Transport: RTP/AVP;unicast;client_port=4588-4589\r\n",
        ] {
            assert!(
                ends(bad, false).is_empty(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            ends(b"Transport: RTP/AVP;unicast;client_port=65535\r\n", true),
            vec![(None, 65535, "rtp", Owner::Sender)]
        );
    }
}
