//! MongoDB wire protocol: the 16-byte MsgHeader and the start of the message body.
//!
//! messageLength (little-endian, 21 bytes..48 MB), an opcode of the wire protocol (OP_REPLY 1,
//! OP_UPDATE 2001, OP_INSERT 2002, OP_QUERY 2004, OP_GET_MORE 2005, OP_DELETE 2006,
//! OP_KILL_CURSORS 2007, OP_COMPRESSED 2012, OP_MSG 2013; replies only from the server, the rest
//! only from the client), and for OP_QUERY a NUL-terminated "db.collection" name, for OP_MSG a
//! section kind of 0 or 1 followed by a BSON document length.
//!
//! Meta: `mongodb_op` ("query", "msg", "reply"...), `mongodb_collection` for OP_QUERY.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};
use crate::text::clean_text;

pub static PROBES: &[Probe] = &[Probe::single("mongodb", probe)];

const MAX_MESSAGE: i32 = 48 * 1024 * 1024;
const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_MSG: i32 = 2013;
/// How far the collection name's NUL is looked for (from offset 20).
const NAME_SPAN: usize = 256;
const NAME_PART_MAX: usize = 120;
const MAX_RETURNED: i32 = 1 << 20;

fn op_name(op: i32) -> Option<&'static str> {
    Some(match op {
        1 => "reply",
        2001 => "update",
        2002 => "insert",
        2004 => "query",
        2005 => "get-more",
        2006 => "delete",
        2007 => "kill-cursors",
        2012 => "compressed",
        2013 => "msg",
        _ => return None,
    })
}

fn le_i32(data: &[u8], off: usize) -> Option<i32> {
    Some(i32::from_le_bytes(
        data.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// `[\x21-\x7e]{1,120}\.[\x21-\x7e]{1,120}`, the whole of `name`: some dot must split it so.
fn is_collection(name: &[u8]) -> bool {
    let part = |n: usize| (1..=NAME_PART_MAX).contains(&n);
    name.iter().all(|b| (0x21..=0x7e).contains(b))
        && name
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'.' && part(i) && part(name.len() - i - 1))
}

pub fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    if data.len() < 21 {
        return ProbeResult::no();
    }
    let (Some(length), Some(op)) = (le_i32(data, 0), le_i32(data, 12)) else {
        return ProbeResult::no();
    };
    let Some(name) = op_name(op) else {
        return ProbeResult::no();
    };
    if !(21..=MAX_MESSAGE).contains(&length) || (op == OP_REPLY) == from_client {
        return ProbeResult::no();
    }
    let mut meta = Meta::new();
    meta.insert("mongodb_op".into(), json!(name));
    match op {
        OP_QUERY => {
            let window = data
                .get(20..(20 + NAME_SPAN).min(data.len()))
                .unwrap_or_default();
            let Some(collection) = window
                .iter()
                .position(|&b| b == 0)
                .and_then(|end| window.get(..end))
            else {
                return ProbeResult::no();
            };
            if !is_collection(collection) {
                return ProbeResult::no();
            }
            meta.insert(
                "mongodb_collection".into(),
                json!(clean_text(collection, 128)),
            );
        }
        OP_MSG => {
            let doc = match (data.get(20), le_i32(data, 21)) {
                (Some(0 | 1), Some(doc)) => doc,
                _ => return ProbeResult::no(),
            };
            if !(5..=length).contains(&doc) {
                return ProbeResult::no();
            }
        }
        OP_REPLY => match le_i32(data, 32) {
            Some(returned) if (0..=MAX_RETURNED).contains(&returned) => {}
            _ => return ProbeResult::no(),
        },
        _ => {}
    }
    ProbeResult::hit(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn message(op: i32, body: &[u8]) -> Vec<u8> {
        let mut out = ((16 + body.len()) as i32).to_le_bytes().to_vec();
        out.extend_from_slice(&7i32.to_le_bytes()); // requestID
        out.extend_from_slice(&0i32.to_le_bytes()); // responseTo
        out.extend_from_slice(&op.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    /// A BSON document {"isMaster": 1}.
    fn is_master() -> Vec<u8> {
        let mut doc = vec![0x10];
        doc.extend_from_slice(b"isMaster\0");
        doc.extend_from_slice(&1i32.to_le_bytes());
        doc.push(0);
        let mut out = ((doc.len() + 4) as i32).to_le_bytes().to_vec();
        out.extend(doc);
        out
    }

    #[test]
    fn op_query_from_spec() {
        let mut body = 0i32.to_le_bytes().to_vec(); // flags
        body.extend_from_slice(b"admin.$cmd\0");
        body.extend_from_slice(&0i32.to_le_bytes()); // numberToSkip
        body.extend_from_slice(&(-1i32).to_le_bytes()); // numberToReturn
        body.extend(is_master());
        let r = probe(&message(OP_QUERY, &body), true);
        assert_eq!(r.meta["mongodb_op"], "query");
        assert_eq!(r.meta["mongodb_collection"], "admin.$cmd");
        assert_eq!(probe(&message(OP_QUERY, &body), false).status, Status::No);
    }

    #[test]
    fn op_msg_and_reply() {
        let mut body = 0u32.to_le_bytes().to_vec(); // flagBits
        body.push(0); // section kind 0: body
        body.extend(is_master());
        assert_eq!(
            probe(&message(OP_MSG, &body), true).meta["mongodb_op"],
            "msg"
        );
        body[4] = 2;
        assert_eq!(probe(&message(OP_MSG, &body), true).status, Status::No);
        let mut reply = 8u32.to_le_bytes().to_vec(); // responseFlags: AwaitCapable
        reply.extend_from_slice(&0i64.to_le_bytes()); // cursorID
        reply.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
        reply.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
        reply.extend(is_master());
        assert_eq!(
            probe(&message(OP_REPLY, &reply), false).meta["mongodb_op"],
            "reply"
        );
        assert_eq!(probe(&message(OP_REPLY, &reply), true).status, Status::No);
    }

    #[test]
    fn collection_grammar() {
        assert!(is_collection(b"a.b"));
        assert!(is_collection(b"a.b.c"));
        assert!(!is_collection(b".ab"));
        assert!(!is_collection(b"ab."));
        assert!(!is_collection(b"ab"));
        assert!(!is_collection(b"a .b"));
        let long = [&[b'x'; 121][..], b".y"].concat();
        assert!(!is_collection(&long));
        assert!(is_collection(
            &[&[b'x'; 60][..], b".", &[b'x'; 60], b".y"].concat()
        ));
    }

    #[test]
    fn python_vectors() {
        crate::detect::probes::vectors::replay("mongodb");
    }
}
