//! ONC RPC (RFC 5531) calls and replies of the NFS family: NFS, MOUNT, NLM, NSM, NFS_ACL, RQUOTA,
//! portmapper.
//!
//! `oncrpc`: a call in one UDP datagram from the client; `oncrpc_reply`: a reply from the server;
//! `oncrpc_tcp`: a TCP stream, whose records start with a 4-byte record mark (last-fragment bit,
//! 31-bit length), either way. A call has message type 0, RPC version 2, a program of the NFS
//! family with a version of 1-4 and a procedure of at most 64, and a credential flavour of at most
//! 6 (RPCSEC_GSS) with a body of at most 400 bytes. A reply has message type 1 and a reply status
//! of 0 or 1 with the accept/reject state in range.
//!
//! Meta: `rpc_program` ("nfs", "mount", "portmap"...), `rpc_version`, `rpc_procedure` for a call;
//! `rpc_reply` ("accepted", "denied") for a reply.
#![forbid(unsafe_code)]

use super::{Probe, ProbeResult};
use crate::meta::{json, Meta};

pub static PROBES: &[Probe] = &[
    Probe::single("oncrpc", probe_call),
    Probe::single("oncrpc_reply", probe_reply),
    Probe::single("oncrpc_tcp", probe_tcp),
];

const MAX_AUTH: usize = 400;
const MAX_FLAVOR: u32 = 6;
const MAX_PROCEDURE: u32 = 64;
const MAX_ACCEPT_STAT: u32 = 5;
const MAX_REJECT_STAT: u32 = 1;
const MIN_RECORD: u32 = 24;
const MAX_RECORD: u32 = 1 << 24;

fn program_name(prog: u32) -> Option<&'static str> {
    Some(match prog {
        100000 => "portmap",
        100003 => "nfs",
        100005 => "mount",
        100021 => "nlm",
        100024 => "status",
        100227 => "nfs_acl",
        100011 => "rquota",
        _ => return None,
    })
}

fn be32(data: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(
        data.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// The facts of a call or reply, and whether it is a reply.
fn parse(data: &[u8]) -> Option<(Meta, bool)> {
    if data.len() < 24 {
        return None;
    }
    let mut meta = Meta::new();
    match be32(data, 4)? {
        1 => {
            let word = match be32(data, 8)? {
                0 => {
                    let (flavor, length) = (be32(data, 12)?, be32(data, 16)? as usize);
                    if flavor > MAX_FLAVOR || length > MAX_AUTH {
                        return None;
                    }
                    (be32(data, 20 + length)? <= MAX_ACCEPT_STAT).then_some("accepted")?
                }
                1 => (be32(data, 12)? <= MAX_REJECT_STAT).then_some("denied")?,
                _ => return None,
            };
            meta.insert("rpc_reply".into(), json!(word));
            Some((meta, true))
        }
        0 if data.len() >= 40 => {
            let (rpcvers, prog, vers, proc) = (
                be32(data, 8)?,
                be32(data, 12)?,
                be32(data, 16)?,
                be32(data, 20)?,
            );
            let (flavor, length) = (be32(data, 24)?, be32(data, 28)? as usize);
            let name = program_name(prog)?;
            if rpcvers != 2 || !(1..=4).contains(&vers) || proc > MAX_PROCEDURE {
                return None;
            }
            if flavor > MAX_FLAVOR || length > MAX_AUTH || data.len() < 40 + length {
                return None;
            }
            meta.insert("rpc_program".into(), json!(name));
            meta.insert("rpc_version".into(), json!(vers));
            meta.insert("rpc_procedure".into(), json!(proc));
            Some((meta, false))
        }
        _ => None,
    }
}

/// A call from the client or a reply from the server.
fn probe(data: &[u8], from_client: bool) -> ProbeResult {
    match parse(data) {
        Some((meta, is_reply)) if is_reply != from_client => ProbeResult::hit(meta),
        _ => ProbeResult::no(),
    }
}

/// Calls only (from the client): a program number and version to check, unlike a bare reply.
pub fn probe_call(data: &[u8], from_client: bool) -> ProbeResult {
    if from_client {
        probe(data, from_client)
    } else {
        ProbeResult::no()
    }
}

/// Replies only (from the server): xid, type 1 and small status words; weak evidence alone.
pub fn probe_reply(data: &[u8], from_client: bool) -> ProbeResult {
    if from_client {
        ProbeResult::no()
    } else {
        probe(data, from_client)
    }
}

pub fn probe_tcp(data: &[u8], from_client: bool) -> ProbeResult {
    let Some(mark) = be32(data, 0).filter(|_| data.len() >= 28) else {
        return ProbeResult::no();
    };
    if !(MIN_RECORD..=MAX_RECORD).contains(&(mark & 0x7fff_ffff)) {
        return ProbeResult::no();
    }
    probe(data.get(4..).unwrap_or_default(), from_client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::probes::Status;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// NFSv3 GETATTR call (RFC 1813) with AUTH_UNIX credentials (uid 0, gid 0, no groups).
    fn nfs_getattr() -> Vec<u8> {
        let mut out = words(&[0x1234_5678, 0, 2, 100003, 3, 1]);
        let mut cred = words(&[0, 6]); // stamp, machine name length
        cred.extend_from_slice(b"client\0\0");
        cred.extend(words(&[0, 0, 0]));
        out.extend(words(&[1, cred.len() as u32]));
        out.extend(cred);
        out.extend(words(&[0, 0])); // AUTH_NONE verifier
        out.extend(words(&[8, 1, 2])); // file handle
        out
    }

    /// An accepted reply: AUTH_NONE verifier, SUCCESS.
    fn accepted() -> Vec<u8> {
        words(&[0x1234_5678, 1, 0, 0, 0, 0, 0, 0])
    }

    #[test]
    fn calls() {
        let r = probe_call(&nfs_getattr(), true);
        assert_eq!(r.meta["rpc_program"], "nfs");
        assert_eq!(r.meta["rpc_version"], 3);
        assert_eq!(r.meta["rpc_procedure"], 1);
        assert_eq!(
            r.meta.keys().collect::<Vec<_>>(),
            ["rpc_program", "rpc_version", "rpc_procedure"]
        );
        assert_eq!(probe_call(&nfs_getattr(), false).status, Status::No);
        assert_eq!(probe_reply(&nfs_getattr(), false).status, Status::No);
        let mut wrong = nfs_getattr();
        wrong[15] = 0x99; // program 100249
        assert_eq!(probe_call(&wrong, true).status, Status::No);
    }

    #[test]
    fn replies() {
        assert_eq!(
            probe_reply(&accepted(), false).meta["rpc_reply"],
            "accepted"
        );
        assert_eq!(probe_reply(&accepted(), true).status, Status::No);
        assert_eq!(probe_call(&accepted(), true).status, Status::No);
        let denied = words(&[7, 1, 1, 1, 2, 3]); // AUTH_ERROR, AUTH_REJECTEDCRED
        assert_eq!(probe_reply(&denied, false).meta["rpc_reply"], "denied");
        let bad = words(&[7, 1, 1, 2, 2, 3]);
        assert_eq!(probe_reply(&bad, false).status, Status::No);
        let mut long_verf = accepted();
        long_verf[19] = 12; // a verifier body of 12 bytes leaves no room for the accept state
        assert_eq!(probe_reply(&long_verf, false).status, Status::No);
    }

    #[test]
    fn tcp_record_marks() {
        let call = nfs_getattr();
        let mut framed = (0x8000_0000 | call.len() as u32).to_be_bytes().to_vec();
        framed.extend(&call);
        assert_eq!(probe_tcp(&framed, true).meta["rpc_program"], "nfs");
        let mut reply = (0x8000_0000u32 | 32).to_be_bytes().to_vec();
        reply.extend(accepted());
        assert_eq!(probe_tcp(&reply, false).meta["rpc_reply"], "accepted");
        assert_eq!(probe_tcp(&reply, true).status, Status::No);
        reply[3] = 23;
        assert_eq!(probe_tcp(&reply, false).status, Status::No);
    }

    #[test]
    fn python_vectors() {
        for name in ["oncrpc", "oncrpc_reply", "oncrpc_tcp"] {
            crate::detect::probes::vectors::replay(name);
        }
    }
}
