//! RTMP: the first message after the handshake (Adobe RTMP Specification 1.0).
//!
//! Each side opens with a version byte (3) and a 1,536-byte C1/S1, then echoes the other's as
//! C2/S2 (section 5.2), so its first chunk (5.3.1) starts 3,073 bytes into its stream. The
//! client's is the `connect` command (7.2.1.1): an AMF0 command message (type 20; type 17 is the
//! AMF3 form, one zero byte ahead of the same AMF0 values) whose command object names the
//! application and the URL the client was given. The server's first messages are protocol
//! control messages on chunk stream 2 (Window Acknowledgement Size, Set Peer Bandwidth, Set
//! Chunk Size: 5.4), or the command answer. The handshake alone is random bytes after the
//! version (Flash 9+ writes a version and a digest into C1), so this is what tells RTMP apart.
//!
//! Meta: `rtmp_command` ("connect"), `rtmp_app`, `rtmp_tc_url`, `rtmp_flash_ver` (the command
//! object's `app`, `tcUrl` and `flashVer`).
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("rtmp", probe).gated(&[VERSION])];

const VERSION: u8 = 3;
/// C0/S0, C1/S1 and C2/S2.
const HANDSHAKE: usize = 1 + 2 * 1536;
/// The chunk size until a Set Chunk Size says otherwise (5.4.1).
const CHUNK: usize = 128;
const AMF3_COMMAND: u8 = 17;
const AMF0_COMMAND: u8 = 20;
/// Protocol control messages (5.4) and User Control (6.2): types 1-6, on chunk stream 2.
const CONTROL_TYPES: std::ops::RangeInclusive<u8> = 1..=6;
const CONTROL_STREAM: u32 = 2;
/// Command object properties read before giving up on the rest.
const MAX_PROPERTIES: usize = 32;
const MAX_TEXT: usize = 256;

struct Message<'a> {
    stream: u32,
    kind: u8,
    /// The message's bytes in this first chunk, and those of its continuation chunks (fmt 3)
    /// that are in the input.
    body: Vec<&'a [u8]>,
}

/// The chunk at the start of `data`: a type 0 header (a stream's first message), or None.
fn first_message(data: &[u8]) -> Option<Message<'_>> {
    let b = *data.first()?;
    if b >> 6 != 0 {
        return None;
    }
    let (stream, mut off) = match b & 0x3f {
        0 => (u32::from(*data.get(1)?) + 64, 2),
        1 => (
            u32::from(*data.get(1)?) + 64 + u32::from(*data.get(2)?) * 256,
            3,
        ),
        n => (u32::from(n), 1),
    };
    let header = data.get(off..off + 11)?;
    let length =
        usize::from(header[3]) << 16 | usize::from(header[4]) << 8 | usize::from(header[5]);
    let kind = header[6];
    if header[7..11] != [0, 0, 0, 0] || length == 0 {
        return None;
    }
    off += 11;
    let mut body = Vec::new();
    let mut left = length;
    while left > 0 {
        let take = left.min(CHUNK);
        let end = (off + take).min(data.len());
        if off < end {
            body.push(&data[off..end]);
        }
        left -= take;
        off += take;
        if left == 0 || off >= data.len() {
            break;
        }
        // A continuation chunk of the same chunk stream: fmt 3, one-byte form only.
        if stream >= 64 || data[off] != 0xc0 | (b & 0x3f) {
            return None;
        }
        off += 1;
    }
    Some(Message { stream, kind, body })
}

/// The bytes of a message's body read in order across its chunks.
struct Amf<'a> {
    parts: Vec<&'a [u8]>,
    part: usize,
    at: usize,
}

impl<'a> Amf<'a> {
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let part = self.parts.get(self.part)?;
            let have = &part[self.at..];
            let want = (n - out.len()).min(have.len());
            out.extend_from_slice(&have[..want]);
            self.at += want;
            if self.at == part.len() {
                self.part += 1;
                self.at = 0;
            }
        }
        Some(out)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn short_string(&mut self) -> Option<Vec<u8>> {
        let n = self.take(2)?;
        self.take(usize::from(u16::from_be_bytes([n[0], n[1]])))
    }

    /// One AMF0 value of a command object: its text when it is a string; None when the reader
    /// cannot go on past it (a type this reader does not walk, or the end of the input).
    fn value(&mut self) -> Option<Option<Vec<u8>>> {
        match self.byte()? {
            0x00 => self.take(8).map(|_| None),
            0x01 => self.take(1).map(|_| None),
            0x02 => self.short_string().map(Some),
            0x05 | 0x06 => Some(None),
            _ => None,
        }
    }
}

fn command_facts(message: &Message<'_>) -> Option<Meta> {
    let mut amf = Amf {
        parts: message.body.clone(),
        part: 0,
        at: 0,
    };
    if message.kind == AMF3_COMMAND {
        amf.byte()?;
    }
    if amf.byte()? != 0x02 || amf.short_string()? != b"connect" {
        return None;
    }
    let mut meta = Meta::new();
    meta.insert("rtmp_command".into(), json!("connect"));
    // The transaction id (a number), then the command object.
    if amf.byte() != Some(0x00) || amf.take(8).is_none() || amf.byte() != Some(0x03) {
        return Some(meta);
    }
    for _ in 0..MAX_PROPERTIES {
        let Some(key) = amf.short_string() else {
            break;
        };
        if key.is_empty() {
            break; // the object-end marker follows
        }
        let Some(value) = amf.value() else {
            break;
        };
        let name = match key.as_slice() {
            b"app" => "rtmp_app",
            b"tcUrl" => "rtmp_tc_url",
            b"flashVer" => "rtmp_flash_ver",
            _ => continue,
        };
        if let Some(text) = value {
            meta.insert(name.into(), json!(clean_text(&text, MAX_TEXT)));
        }
    }
    Some(meta)
}

/// A client's or a server's stream from its first byte: the handshake, then the first message.
pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.first() != Some(&VERSION) {
        return ProbeResult::no();
    }
    let Some(rest) = data.get(HANDSHAKE..).filter(|r| r.len() >= 12) else {
        return ProbeResult::more();
    };
    let Some(message) = first_message(rest) else {
        return ProbeResult::no();
    };
    let command = matches!(message.kind, AMF0_COMMAND | AMF3_COMMAND);
    if from_client {
        if !command {
            return ProbeResult::no();
        }
        return match command_facts(&message) {
            Some(meta) => ProbeResult::hit_done(meta, true),
            None if message.body.concat().len() < 10 => ProbeResult::more(),
            None => ProbeResult::no(),
        };
    }
    let control = message.stream == CONTROL_STREAM && CONTROL_TYPES.contains(&message.kind);
    if control || command {
        ProbeResult::hit_done(Meta::new(), true)
    } else {
        ProbeResult::no()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::vectors::text;
    use crate::detect::probes::Status;

    /// C0, C1 and C2 as ffmpeg writes them (version 9.0.124.2 in C1), then `chunk`.
    fn stream(chunk: &[u8]) -> Vec<u8> {
        let mut s = vec![3, 0, 0, 0, 0, 9, 0, 0x7c, 2];
        s.resize(HANDSHAKE, 0x5a);
        s.extend_from_slice(chunk);
        s
    }

    fn amf_string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u16).to_be_bytes().to_vec();
        out.extend(s.as_bytes());
        out
    }

    /// ffmpeg's connect: app "live", flashVer, tcUrl, then numbers, in 128-byte chunks.
    fn connect() -> Vec<u8> {
        let mut body = vec![2];
        body.extend(amf_string("connect"));
        body.extend([0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 3]);
        for (k, v) in [
            ("app", "live"),
            ("type", "nonprivate"),
            ("flashVer", "FMLE/3.0 (compatible; Lavf59.27.100)"),
            ("tcUrl", "rtmp://10.77.0.1:1935/live"),
        ] {
            body.extend(amf_string(k));
            body.push(2);
            body.extend(amf_string(v));
        }
        body.extend(amf_string("fpad"));
        body.extend([1, 0]);
        body.extend([0, 0, 9]);
        let mut chunk = vec![3, 0, 0, 0];
        chunk.extend(&(body.len() as u32).to_be_bytes()[1..]);
        chunk.extend([AMF0_COMMAND, 0, 0, 0, 0]);
        for (i, part) in body.chunks(CHUNK).enumerate() {
            if i > 0 {
                chunk.push(0xc3);
            }
            chunk.extend(part);
        }
        chunk
    }

    #[test]
    fn a_clients_connect_names_the_application_and_its_url() {
        let s = stream(&connect());
        let r = probe(&s, true);
        assert_eq!((r.status, r.done), (Status::Match, true));
        assert_eq!(text(&r, "rtmp_command").as_deref(), Some("connect"));
        assert_eq!(text(&r, "rtmp_app").as_deref(), Some("live"));
        assert_eq!(
            text(&r, "rtmp_tc_url").as_deref(),
            Some("rtmp://10.77.0.1:1935/live")
        );
        assert!(text(&r, "rtmp_flash_ver").is_some_and(|v| v.starts_with("FMLE/3.0")));
        // Cut inside the command object: still connect, with what was read.
        let cut = probe(&s[..HANDSHAKE + 50], true);
        assert_eq!(cut.status, Status::Match);
        assert_eq!(text(&cut, "rtmp_app").as_deref(), Some("live"));
        assert_eq!(probe(&s[..2000], true).status, Status::More);
    }

    #[test]
    fn a_servers_first_message_is_a_control_message_on_chunk_stream_two() {
        // Window Acknowledgement Size 5000000 (type 5, 4 bytes), as nginx-rtmp sends it.
        let ack = [2, 0, 0, 0, 0, 0, 4, 5, 0, 0, 0, 0, 0, 0x4c, 0x4b, 0x40];
        assert_eq!(probe(&stream(&ack), false).status, Status::Match);
        let mut other = ack;
        other[7] = 9; // video
        assert_eq!(probe(&stream(&other), false).status, Status::No);
        assert_eq!(probe(&stream(&ack), true).status, Status::No);
    }

    #[test]
    fn random_bytes_after_a_handshake_are_not_rtmp() {
        // Another type-0 header on a nonzero message stream, another fmt, another command.
        let mut c = connect();
        c[8] = 1;
        assert_eq!(probe(&stream(&c), true).status, Status::No);
        assert_eq!(probe(&stream(&[0x43; 20]), true).status, Status::No);
        let mut body = connect();
        body[15..22].copy_from_slice(b"connecx");
        assert_eq!(probe(&stream(&body), true).status, Status::No);
        assert_eq!(probe(b"\x16\x03\x01", true).status, Status::No);
    }

    #[test]
    fn hostile_shapes_stay_in_bounds() {
        let mut s = stream(&[0, 0xff]);
        s.extend([0xff; 200]);
        for cut in HANDSHAKE..s.len() {
            let _ = probe(&s[..cut], true);
            let _ = probe(&s[..cut], false);
        }
        crate::detect::probes::vectors::never_panics("rtmp");
    }
}
