"""SMB (MS-SMB, MS-SMB2): the protocol header behind a NetBIOS session header, or in a datagram.

- `probe(data, from_client)`: TCP (445 direct hosting or 139): a session message (type 0, 17-bit
  length) whose payload starts with \\xffSMB (SMB1), \\xfeSMB (SMB2/3) or \\xfdSMB (SMB3
  transform), with the SMB2 header length 64 and a known command.
- `probe_dgm(data, from_client)`: a NetBIOS datagram (UDP 138) whose user data is an SMB1
  message (the browser and mailslot announcements).

Meta: ``smb_version`` (1, 2, 3 for a transform header), ``smb_command`` (SMB2 command name, or
the SMB1 command number as hex).
"""

from __future__ import annotations

import struct

from portwatch.detect.probes.netbios import datagram_data
from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

SMB2_COMMANDS = (
    "negotiate", "session_setup", "logoff", "tree_connect", "tree_disconnect", "create", "close",
    "flush", "read", "write", "lock", "ioctl", "cancel", "echo", "query_directory", "change_notify",
    "query_info", "set_info", "oplock_break",
)  # fmt: skip


def smb_header(data: bytes) -> dict | None:
    if len(data) < 4:
        return None
    magic = data[:4]
    if magic == b"\xffSMB":
        if len(data) < 5:
            return None
        return {"smb_version": 1, "smb_command": f"0x{data[4]:02x}"}
    if magic == b"\xfeSMB":
        if len(data) < 14:
            return None
        (hlen,) = struct.unpack_from("<H", data, 4)
        (command,) = struct.unpack_from("<H", data, 12)
        if hlen != 64 or command >= len(SMB2_COMMANDS):
            return None
        return {"smb_version": 2, "smb_command": SMB2_COMMANDS[command]}
    if magic == b"\xfdSMB":
        return {"smb_version": 3, "smb_command": "transform"}
    return None


def probe(data: bytes, from_client: bool) -> ProbeResult:
    if len(data) < 8 or data[0] != 0 or data[1] & 0xFE:
        return NO_MATCH
    length = ((data[1] & 1) << 16) | struct.unpack_from("!H", data, 2)[0]
    if length < 4:
        return NO_MATCH
    meta = smb_header(data[4 : 4 + length])
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)


# The engine skips these probes for units that cannot start this way (engine._Gate).
probe.first_bytes = frozenset((0x00,))  # type: ignore[attr-defined]  # direct-TCP transport header


def probe_dgm(data: bytes, from_client: bool) -> ProbeResult:
    parsed = datagram_data(data)
    if parsed is None:
        return NO_MATCH
    meta = smb_header(parsed[1])
    return NO_MATCH if meta is None else ProbeResult(ProbeStatus.MATCH, meta)

probe_dgm.first_bytes = frozenset((0x10, 0x11, 0x12))  # type: ignore[attr-defined]  # datagram_data
