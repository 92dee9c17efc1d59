"""ONC RPC (RFC 5531) calls and replies of the NFS family: NFS, MOUNT, NLM, NSM, NFS_ACL, portmapper.

`probe(data, from_client)`: one UDP datagram; `probe_tcp`: a TCP stream, whose records start with
a 4-byte record mark (last-fragment bit, 31-bit length). A call has message type 0, RPC version 2,
a program of the NFS family with a plausible version, and a credential flavour of at most 6 (or
RPCSEC_GSS, 6) with a body length of at most 400 bytes. A reply has message type 1 and a reply
status of 0 or 1 with the accept/reject state in range.

Meta: ``rpc_program`` ("nfs", "mount", "portmap"...), ``rpc_version``, ``rpc_procedure``.
"""

from __future__ import annotations

import struct

from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

PROGRAMS = {
    100000: "portmap",
    100003: "nfs",
    100005: "mount",
    100021: "nlm",
    100024: "status",
    100227: "nfs_acl",
    100011: "rquota",
}
MAX_AUTH = 400


def _parse(data: bytes) -> dict | None:
    if len(data) < 24:
        return None
    _, mtype = struct.unpack_from("!II", data, 0)
    if mtype == 1:
        (reply_stat,) = struct.unpack_from("!I", data, 8)
        if reply_stat == 0:
            flavor, length = struct.unpack_from("!II", data, 12)
            if flavor > 6 or length > MAX_AUTH or len(data) < 24 + length:
                return None
            (accept,) = struct.unpack_from("!I", data, 20 + length)
            return {"rpc_reply": "accepted"} if accept <= 5 else None
        if reply_stat == 1:
            (reject,) = struct.unpack_from("!I", data, 12)
            return {"rpc_reply": "denied"} if reject <= 1 else None
        return None
    if mtype != 0 or len(data) < 40:
        return None
    rpcvers, prog, vers, proc, flavor, length = struct.unpack_from("!IIIIII", data, 8)
    if rpcvers != 2 or prog not in PROGRAMS or not 1 <= vers <= 4 or proc > 64:
        return None
    if flavor > 6 or length > MAX_AUTH or len(data) < 40 + length:
        return None
    return {"rpc_program": PROGRAMS[prog], "rpc_version": vers, "rpc_procedure": proc}


def probe(data: bytes, from_client: bool) -> ProbeResult:
    meta = _parse(data)
    if meta is None or ("rpc_reply" in meta) == from_client:
        return NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, meta)


def probe_call(data: bytes, from_client: bool) -> ProbeResult:
    """Calls only (from the client): a program number and version to check, unlike a bare reply."""
    return probe(data, from_client) if from_client else NO_MATCH


def probe_reply(data: bytes, from_client: bool) -> ProbeResult:
    """Replies only (from the server): xid, type 1 and small status words; weak evidence alone."""
    return probe(data, from_client) if not from_client else NO_MATCH


def probe_tcp(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 28:
        return NO_MATCH
    (mark,) = struct.unpack_from("!I", data, 0)
    if not 24 <= mark & 0x7FFFFFFF <= 1 << 24:
        return NO_MATCH
    return probe(data[4:], from_client)
