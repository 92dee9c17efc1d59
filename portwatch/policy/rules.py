"""Turn a classified flow record into findings: the record and the context in, findings out.

The question each rule answers is the same: is the protocol seen on this server port the one
/etc/services assigns to it, and if not, how bad is it? The mapping from service names to
protocols is data (each signature's `services` list, plus the policy's `protocol_services`), so
`https` means tls and `domain` means dns without a line of code per protocol.

Severity of a protocol found off its ports is graded by the pair:
  - on a port assigned to another protocol portwatch knows: high below 1024 (a trusted port,
    bound on purpose: SSH on 443, TLS on 22), medium above;
  - the encrypted variant of a STARTTLS service on that service's port (TLS on 25/143/587): low;
  - on a port assigned to a service portwatch has no signature for: medium;
  - on a port /etc/services does not list there is nothing to mismatch: `unassigned-port`, low for
    cleartext on a high port or anything on a trusted port (below 1024); an encrypted protocol on
    a high port gets only the inventory note.
Off-port findings lose one step when the protocol was recognised from one direction by a
pattern alone, and fall to info when the server never answered. Every server on a port
/etc/services does not list also gets an `unassigned-port` note (info; low for an unrecognised
TCP listener below 1024), the inventory's question "why is this offered?", unless a finding
already says so (one finding per fact: cleartext on an unassigned high port is its low
`unassigned-port` alone). Flows the core names from their control connection's announcement
(`ftp-data`, `rtp`, `rtcp`: `meta.control_flow_id`) run on negotiated ports and get neither. A
PORT/EPRT naming a host other than the FTP client is an `ftp-bounce`.

Only the DNS tracker and the baseline keep state (bounded, see their modules).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import SEVERITIES, SEVERITY_RANK, Finding, FlowRecord, listed_reason, peek
from ..services import ServicesDB
from ..signatures import SignatureInfo as Signature
from ..tunnels import is_confident as tunnel_confident
from . import encrypted
from .config import Policy
from .dnstunnel import DnsTunnelTracker

if TYPE_CHECKING:  # the baseline module imports the pipeline; the rules only call its check()
    from ..baseline import Baseline

# Findings that already say "this port is not the protocol's / not listed": the inventory's
# unassigned-port note would state the same fact a second time.
ONE_PORT_FACT = frozenset({"unassigned-port", "port-mismatch"})
# The FTP commands by which a client names where the server's data connection goes.
ACTIVE_FTP = frozenset({"PORT", "EPRT"})
TRUSTED_PORT_LIMIT = 1024  # ports below this need root to bind: a listener there was put there on purpose
WEB_PORTS = frozenset((80, 443))  # CONNECT targets of ordinary proxied browsing
STRONG = 0.9  # probe-confirmed (0.9-0.95) or both directions; one pattern alone scores 0.5-0.85
# What `PolicyContext.quiet_static` says of a (protocol, port, transport): whether the record-only
# rules can speak there, or only when the record carries a login or an HTTP CONNECT.
NOT_QUIET, QUIET, QUIET_UNLESS_LOGIN, QUIET_UNLESS_CONNECT, QUIET_UNLESS_LOGIN_OR_CONNECT = range(5)
# Entries of that table kept: past this (a scan over every port), the rest is decided per record.
MAX_QUIET_KEYS = 65_536

AddFn = Callable[[str, str, "str | None"], None]


@dataclass(slots=True)
class PolicyContext:
    services: ServicesDB
    signatures: dict[str, Signature]
    policy: Policy
    # (service name, transport) -> protocols that the name means, from the signatures; the engine
    # reads it for port hints (Setup.load)
    service_protocols: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    # the same from the policy's protocol_services: what a port tolerates, never a detection hint
    tolerated: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    dns: DnsTunnelTracker = field(default_factory=DnsTunnelTracker)
    baseline: Baseline | None = None
    _expected: dict[tuple[int, str, bool], frozenset[str]] = field(default_factory=dict, repr=False)
    _quiet: dict[tuple[str, int, str], int] = field(default_factory=dict, repr=False)
    _insecure_names: dict[tuple[int, str], tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, services: ServicesDB, signatures: list[Signature], policy: Policy) -> PolicyContext:
        ctx = cls(services, {s.protocol: s for s in signatures}, policy)
        ctx.dns.allow(policy.dns_allowed)
        for sig in signatures:
            for name in sig.services:
                for t in sig.transports:
                    ctx.service_protocols.setdefault((name.lower(), t), set()).add(sig.protocol)
        for proto, names in policy.protocol_services.items():
            known = ctx.signatures.get(proto)
            for name in names:
                for t in known.transports if known else ("tcp", "udp"):
                    ctx.tolerated.setdefault((name, t), set()).add(proto)
        return ctx

    def expected_protocols(self, port: int, transport: str, tolerated: bool = True) -> frozenset[str]:
        """Protocols the services database (via signature service names) expects on a port; with
        `tolerated`, also those the policy's protocol_services accepts there (remembered per port)."""
        key = (port, transport, tolerated)
        found = self._expected.get(key)
        if found is None:
            found = self._expected[key] = frozenset(self._expected_protocols(port, transport, tolerated))
        return found

    def _expected_protocols(self, port: int, transport: str, tolerated: bool) -> set[str]:
        out: set[str] = set()
        for name in self.services.all_names(port, transport):
            key = (name.lower(), transport)
            out |= self.service_protocols.get(key, set())
            if tolerated:
                out |= self.tolerated.get(key, set())
        return out

    def quiet_static(self, protocol: str, port: int, transport: str) -> int:
        """Can the record-only rules (`_port_and_service_rules`) speak about `protocol` on this port,
        for a record on an assigned port, not announced, from an unprivileged client port (`quiet`
        checks those)? QUIET: never; QUIET_UNLESS_*: only for a login or a CONNECT; NOT_QUIET: ask
        the rules. Like `expected_protocols`, it assumes the context is not changed after it is built."""
        key = (protocol, port, transport)
        found = self._quiet.get(key)
        if found is None:
            found = self._quiet_static(protocol, port, transport)
            if len(self._quiet) < MAX_QUIET_KEYS:
                self._quiet[key] = found
        return found

    def _quiet_static(self, protocol: str, port: int, transport: str) -> int:
        sig = self.signatures.get(protocol)
        insecure = self.policy.insecure_services
        if (protocol == "unknown" or sig is None
                or not self.port_fits(protocol, port, transport)  # _port_rules
                or protocol in insecure or sig.insecure  # _insecure_rules, by protocol
                or protocol == "ftp"  # _bounce_rule
                or (port in R_SERVICES and protocol in R_PROTOCOLS)):  # _source_port_rule's r-services
            return NOT_QUIET
        for svc in self.services.all_names(port, transport):  # _insecure_rules, by service name
            svc = svc.lower()
            if svc in insecure and (protocol == svc or protocol in self.service_protocols.get((svc, transport), ())):
                return NOT_QUIET
        login, connect = sig.cleartext_auth, protocol == "http"  # _insecure_rules' login, _connect_rule
        if login and connect:
            return QUIET_UNLESS_LOGIN_OR_CONNECT
        return QUIET_UNLESS_LOGIN if login else QUIET_UNLESS_CONNECT if connect else QUIET

    def insecure_names(self, port: int, transport: str) -> tuple[str, ...]:
        """The port's service names (aliases too, lowercase, in sorted order) that the site policy's
        `insecure_services` lists: what `_insecure_rules` asks of every record that answered, most
        ports none (remembered per port, as `quiet_static`)."""
        key = (port, transport)
        found = self._insecure_names.get(key)
        if found is None:
            insecure = self.policy.insecure_services
            found = tuple(svc for svc in (n.lower() for n in sorted(self.services.all_names(port, transport)))
                          if svc in insecure)
            if len(self._insecure_names) < MAX_QUIET_KEYS:
                self._insecure_names[key] = found
        return found

    def port_fits(self, protocol: str, port: int, transport: str) -> bool:
        sig = self.signatures.get(protocol)
        if sig is not None and port in sig.ports and transport in sig.transports:
            return True
        return protocol in self.expected_protocols(port, transport)

    def is_encrypted(self, protocol: str) -> bool:
        sig = self.signatures.get(protocol)
        return bool(sig and sig.encrypted)


def endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def port_text(names: list[str], port: int, transport: str, registry: str = "/etc/services") -> str:
    """How a message names a port: with what the services database (`ServicesDB.registry`: /etc/services,
    IANA or a named file) assigns to it, so a finding says which registry said so."""
    where = f"{port}/{transport}"
    return f"{where} ({registry}: {', '.join(names)})" if names else f"{where} ({unassigned_by(registry)})"


def unassigned_by(registry: str) -> str:
    return "unassigned by IANA" if registry == "IANA" else f"unassigned in {registry}"


def does_not_list(registry: str) -> str:
    """The verb phrase for a port absent from `registry`: "IANA does not assign", "/etc/services does not list"."""
    return "IANA does not assign" if registry == "IANA" else f"{registry} does not list"


def answered(rec: FlowRecord) -> bool:
    """Did a server really take part? Bytes back, or client bytes that the server acknowledged."""
    if rec.bytes_s2c > 0:
        return True
    return rec.transport == "tcp" and rec.bytes_c2s > 0 and rec.packets_s2c > 0


def evaluate(record: FlowRecord, ctx: PolicyContext, dns_counted: tuple[tuple | None] | None = None,
             ) -> list[Finding]:
    """The record's findings. `dns_counted`: (what the DNS tracker's core answered,) for a DNS
    record the core already counted (`quiet_setup`), not to be counted again."""
    policy = ctx.policy
    out: list[Finding] = []

    def add(kind: str, message: str, severity: str | None = None) -> None:
        out.append(Finding(kind, severity or policy.severity.get(kind, "medium"), message))

    if quiet(record, ctx):
        server = where = None  # said only when a rule below speaks
    else:
        server, where = _port_and_service_rules(record, ctx, out, add)
    # The tracker's own first test is the protocol: nothing else reaches it.
    if record.protocol != "dns":
        dns = None
    elif dns_counted is None:
        dns = ctx.dns.account(record)
    else:
        dns = ctx.dns.signal(record, dns_counted[0])
    conflicts = record.meta.get("tcp_overlap_conflicts")
    outdated = insecure_version(record, ctx.policy)
    left_open = listed_reason(record.meta, ctx.policy.insecure_settings)
    if server is None and (dns is not None or conflicts or outdated or left_open):
        server = endpoint(record.dst_ip, record.dst_port)
        where = port_text(record.assigned, record.dst_port, record.transport, ctx.services.registry)
    if dns is not None:
        verdict = dns.verdict(server, where)  # type: ignore[arg-type]
        add("dns-tunnel", verdict.message, verdict.severity)
    if outdated:
        add("insecure-protocol", f"{record.protocol} on {server}, {where}: the server's version is insecure, "
            f"{outdated}{_evidence(record)}")
    if left_open:
        # no credential at all: as bad as one crossing in clear
        add("insecure-protocol", f"{record.protocol} on {server}, {where}: {left_open}{_evidence(record)}", "high")
    if conflicts:
        client = endpoint(record.src_ip, record.src_port)
        add("stream-anomaly", f"{conflicts} overlapping TCP segment(s) between {client} and {server}, {where}, "
            "carried different bytes than the first copy: an insertion/evasion attempt "
            "or a broken stack; the first copy was analysed")
    if ctx.baseline is not None:
        new = ctx.baseline.check(record, ctx.services.registry)
        if new is not None:
            add("new-service", *new)
    return _apply_policy(out, record, policy)


def insecure_version(record: FlowRecord, policy: Policy) -> str | None:
    """Why the version the server agreed to is insecure, when the site policy's `insecure_versions`
    lists the record's fact (`tls_version_server`, `ssh_protoversion_server`, `smb_dialect_server`...)
    with that value; None otherwise."""
    return listed_reason(record.meta, policy.insecure_versions)


def quiet(record: FlowRecord, ctx: PolicyContext) -> bool:
    """True when none of `_port_and_service_rules` can speak for this record (most records: a
    protocol on a port it fits, nothing insecure, nothing announced), decided from the per-(protocol,
    port, transport) table `PolicyContext.quiet_static` and a few fields of the record (for an
    unrecognised flow: whether a server answered, and the core's entropy facts)."""
    meta = record.meta
    if ("control_flow_id" in meta
            or (record.src_port < TRUSTED_PORT_LIMIT and record.transport == "tcp"
                and record.orientation != "inferred")):
        return False
    if record.protocol == "unknown":
        # Unrecognised bytes give the rules something to say only through a server that answered
        # (the inventory note, an insecure service by name) or the core's entropy facts (encrypted-
        # unknown, cleartext on a TLS-only port); a login counts only for a signature's protocol. A
        # scan's SYNs, a flow cut in its handshake, a client talking to nobody have none of them.
        return (not answered(record) and "unknown" not in ctx.signatures
                and "entropy_client" not in meta and "entropy_server" not in meta)
    if not record.assigned:
        return False
    shape = ctx.quiet_static(record.protocol, record.dst_port, record.transport)
    if shape == QUIET:
        return True
    login = shape in (QUIET_UNLESS_LOGIN, QUIET_UNLESS_LOGIN_OR_CONNECT) and (
        meta.get("cleartext_login") or meta.get("anonymous_login"))
    connect = shape in (QUIET_UNLESS_CONNECT, QUIET_UNLESS_LOGIN_OR_CONNECT) and isinstance(
        meta.get("http_connect_target"), str)
    return shape != NOT_QUIET and not login and not connect


def quiet_setup(ctx: PolicyContext, ports: list[tuple[int, str]]) -> tuple[list, list, bool, int, Any] | None:
    """What the core needs to hand over the records no rule speaks about as their lines or their
    tally, without Python records (`_core.Analyzer.quiet_records`): the service names of each of
    `ports` (`assigned`; `Setup.known_ports`, the ports the services database lists), the facts
    and values `insecure_versions` and `insecure_settings` give a reason for, whether an
    unanswered unrecognised flow is quiet, the trusted-port limit `quiet` applies to client
    ports, and the DNS-tunnel tracker's core, which counts each DNS record there (a record with
    a signal comes with it, for `evaluate`'s `dns_counted`). The core then passes a record as
    quiet when `quiet` would, but for its (protocol, port, transport), which it is taught
    (`teach_quiet`), and reads any other fact `evaluate` asks about, conservatively. None with a
    baseline: it asks about every record."""
    if ctx.baseline is not None:
        return None
    names = [(port, t, ctx.services.names(port, t)) for port, t in ports]
    listed = [(fact, [value for value, why in reasons.items() if why])
              for listing in (ctx.policy.insecure_versions, ctx.policy.insecure_settings)
              for fact, reasons in listing.items()]
    return names, listed, "unknown" not in ctx.signatures, TRUSTED_PORT_LIMIT, ctx.dns.core


def quiet_key(record: FlowRecord, ctx: PolicyContext) -> bool:
    """Can the core be taught this record's (protocol, server port, transport) as quiet (see
    `quiet_setup`)? Where `quiet_static` says the record-only rules never speak, or only
    for facts the core checks (the DNS tracker's signal is one)."""
    return (record.protocol != "unknown" and bool(record.assigned)
            and ctx.quiet_static(record.protocol, record.dst_port, record.transport) != NOT_QUIET)


def _port_and_service_rules(record: FlowRecord, ctx: PolicyContext, out: list[Finding], add: Any,
                            ) -> tuple[str, str]:
    """The rules that depend on the record alone (no tracker, no baseline); returns how the
    messages name the server and the port."""
    policy = ctx.policy
    proto = record.protocol
    port = record.dst_port
    transport = record.transport
    names = list(record.assigned)
    registry = ctx.services.registry
    where = port_text(names, port, transport, registry)
    server = endpoint(record.dst_ip, port)
    sig = ctx.signatures.get(proto)
    evidence = _evidence(record)
    expected = ctx.expected_protocols(port, transport, tolerated=False)  # what the messages name

    # a connection its control connection announced (FTP data, RTP from SDP) has the port that
    # conversation chose: what /etc/services assigns to that port says nothing about it
    announced = "control_flow_id" in record.meta
    if proto != "unknown" and sig is not None and not announced:
        _port_rules(record, ctx, sig, expected, server, where, evidence, add)
        _connect_rule(record, server, where, add)
    elif proto == "unknown":
        verdict = encrypted.judge(
            record, server, where, expected=expected,
            expected_encrypted=any(ctx.is_encrypted(p) for p in expected),
            egress=policy.is_egress(port, transport),
        )
        if verdict is not None:
            add("encrypted-unknown", verdict.message, verdict.severity)
        elif expected and all(ctx.is_encrypted(p) for p in expected):
            _cleartext_unknown(record, expected, server, where, add)
    if (not names and answered(record) and proto not in policy.negotiated and not announced
            and not any(f.kind in ONE_PORT_FACT for f in out)):
        # the inventory question for every server on a port the services database does not list
        label = f"{proto} server" if proto != "unknown" else "unrecognised server"
        trusted = "trusted port " if port < TRUSTED_PORT_LIMIT else ""
        # an unrecognised TCP listener below 1024 was bound by root on purpose; UDP "servers" on low
        # ports are as often peer-to-peer media picking random ports
        sev = "low" if trusted and proto == "unknown" and transport == "tcp" else "info"
        why = "ask why it is offered"
        if rcmd_stderr_channel(record):
            sev, why = "info", RCMD_STDERR_NOTE
        add("unassigned-port", f"{label} {server} on {trusted}{where}, a port {does_not_list(registry)}: "
            f"{why}{evidence}", sev)
    _insecure_rules(record, ctx, sig, server, where, evidence, add)
    _bounce_rule(record, server, add)
    _source_port_rule(record, sig, server, where, add)
    return server, where


def _bounce_rule(rec: FlowRecord, server: str, add: Any) -> None:
    """An FTP client naming another host in PORT/EPRT (the core lists it as `announced_foreign` and
    expects nothing there): the server would connect to that host for the client (RFC 2577)."""
    if rec.protocol != "ftp":
        return
    foreign = peek(rec.meta, "announced_foreign")
    if not isinstance(foreign, list):
        return
    targets = [str(a.get("endpoint")) for a in foreign if isinstance(a, dict) and a.get("by") in ACTIVE_FTP]
    if targets:
        client = endpoint(rec.src_ip, rec.src_port)
        shown = ", ".join(targets[:3]) + (f" and {len(targets) - 3} more" if len(targets) > 3 else "")
        add("ftp-bounce", f"FTP client {client} told server {server} to open its data connection to {shown}, "
            "not to the client: an FTP bounce (RFC 2577), a scan or relay through the server")


def _strength(rec: FlowRecord) -> tuple[int, str]:
    """How many severity steps an off-port finding loses for weak evidence, and the note saying why.

    A finding about a server rests on the detection: a server that never answered offers nothing
    we saw; a protocol recognised from one direction by a pattern, below probe confidence, may be a
    look-alike (a TPKT header read as TDS, a QUIC packet read as TFTP).
    """
    if not answered(rec):
        return 3, " (the server never answered: only the client's bytes were seen)"
    evidence = str(rec.meta.get("evidence", ""))
    if ("client bytes" in evidence and "server bytes" in evidence) or rec.confidence >= STRONG:
        return 0, ""
    return 1, f" (recognised from one direction only, confidence {rec.confidence:.2f})"


def _lowered(severity: str, steps: int) -> str:
    return SEVERITIES[max(SEVERITY_RANK[severity] - steps, 0)]


def _port_rules(
    rec: FlowRecord, ctx: PolicyContext, sig: Signature, expected: frozenset[str], server: str, where: str,
    evidence: str, add: Any,
) -> None:
    proto, port, transport = rec.protocol, rec.dst_port, rec.transport
    policy = ctx.policy
    if ctx.port_fits(proto, port, transport):
        return
    steps, weak = _strength(rec)

    def emit(kind: str, message: str, severity: str | None = None) -> None:
        sev = severity or policy.severity.get(kind, "medium")
        add(kind, message + weak + evidence, _lowered(sev, steps))

    name = proto
    names = rec.assigned
    egress = policy.is_egress(port, transport)
    if sig.tunnel and egress:
        inside = peek(rec.meta, "tunnel_contents")
        if tunnel_confident(inside):  # what rides inside, from the packet shape (portwatch/tunnels.py)
            emit("tunnel", f"{name} server {server} on {where}, a port firewalls commonly let out: a tunnel carrying "
                 f"{inside['kind']} (confidence {inside['confidence']:.2f}: {inside['evidence']})",
                 "high" if inside["kind"] in policy.tunnel_contents_raise else None)
        else:
            emit("tunnel", f"{name} server {server} on {where}, a port firewalls commonly let out: {proto} can "
                 "carry other traffic (port forwards, a SOCKS proxy, a VPN) through it")
    expected_encrypted = any(ctx.is_encrypted(p) for p in expected)
    if expected:
        others = ", ".join(sorted(expected))
        if not sig.encrypted and expected_encrypted:
            secure = ", ".join(sorted(p for p in expected if ctx.is_encrypted(p)))
            emit("cleartext-on-secure-port", f"cleartext {name} on {server}, but {where} expects an encrypted "
                 f"protocol ({secure}): what should be protected crosses in clear")
        if sig.encrypted and all(_starttls(ctx, p) for p in expected):
            emit("port-mismatch", f"{name} on {server}, {where} is assigned to {others}: probably that service "
                 "wrapped in TLS (implicit TLS on its cleartext port)", "low")
        else:
            sev = "high" if port < TRUSTED_PORT_LIMIT else "medium"
            emit("port-mismatch", f"{name} on {server}, but {where} is assigned to {others}", sev)
    elif names:
        emit("port-mismatch", f"{name} on {server}, but {where} is assigned to another service", "medium")
    elif port < TRUSTED_PORT_LIMIT:
        emit("unassigned-port", f"{name} server {server} on trusted port {where}: a listener below 1024 was "
             "bound on purpose", "low")
    elif not sig.encrypted and not sig.any_port and proto not in policy.negotiated:
        # no assignment to mismatch: the inventory's question, raised a step for the clear text
        emit("unassigned-port", f"cleartext {name} server {server} on an unassigned high port {where}: "
             "ask why it is offered", "low")


# Cleartext on a TLS-only port: the side's first bytes must be mostly printable with a long readable
# run and not look encrypted (the core's entropy facts), over enough bytes to say so.
CLEARTEXT_MIN_BYTES = 8
CLEARTEXT_MIN_PRINTABLE = 0.9
CLEARTEXT_MIN_RUN = 6


def _cleartext_side(meta: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    sides = [(side, peek(meta, f"entropy_{side}")) for side in ("client", "server")]
    facts = [(side, f) for side, f in sides if isinstance(f, dict) and int(f.get("length", 0)) > 0]
    # A side that looks encrypted, or opens with a known binary framing (the core's Ex5: a TLS
    # record, compressed data), makes the flow no cleartext protocol.
    if not facts or any(f.get("looks_encrypted") or str(f.get("exempt_rule") or "").startswith("Ex5")
                        for _, f in facts):
        return None
    for side, f in facts:
        if (int(f.get("length", 0)) >= CLEARTEXT_MIN_BYTES and float(f.get("printable", 0)) >= CLEARTEXT_MIN_PRINTABLE
                and int(f.get("longest_printable_run", 0)) >= CLEARTEXT_MIN_RUN):
            return side, f
    return None


def _cleartext_unknown(rec: FlowRecord, expected: frozenset[str], server: str, where: str, add: Any) -> None:
    """An unrecognised protocol in clear on a port whose service is encrypted-only (443, 465, 636,
    853, 993, 995...): a netcat chat or a home-grown protocol where TLS belongs."""
    found = _cleartext_side(rec.meta)
    if found is None:
        return
    side, f = found
    sev = None if answered(rec) else "low"
    add("cleartext-on-secure-port", f"unrecognised cleartext on {server}, but {where} expects an encrypted "
        f"protocol ({', '.join(sorted(expected))}): {side} bytes {f.get('printable', 0):.0%} printable over "
        f"{f.get('length', 0)} bytes, longest readable run {f.get('longest_printable_run', 0)}", sev)


# Services that authenticate clients by their trusted source port (a port only root can bind):
# rexec 512, rlogin 513, rsh 514 (rcmd(3)), lpd 515 (RFC 1179 asks for 721-731), and NFS/portmap,
# whose servers commonly insist on reserved ports ("secure" exports).
TRUSTED_PORT_SERVICES = frozenset((111, 512, 513, 514, 515, 2049))
R_SERVICES = {512: "rexec", 513: "rlogin", 514: "rsh"}
R_PROTOCOLS = frozenset(("rsh", "rlogin", "rexec"))  # the signatures' names for rcmd(3) services
FTP_DATA_PORT = 20  # active FTP: the server opens the data connection from port 20 (RFC 959)
RESVPORT_LOW = 512  # rresvport(3) hands out 1023 down to 512: the range rcmd(3) binds on both sides
RCMD_STDERR_NOTE = ("both ends on reserved ports with no protocol of their own: probably the stderr channel of "
                    "an rsh session (rcmd(3): rshd connects back from a reserved port to the client's)")


def rcmd_stderr_channel(rec: FlowRecord) -> bool:
    """rsh's second connection (rshd(8)): the client sends a port number that it bound with rresvport(3),
    and the server connects to it from a port rresvport gave it, to carry the command's stderr as bare
    text. Both ends in 512..1023 and nothing recognised: seen from the wire, the server is the
    "client" of this flow and its reserved source port is the protocol working as designed."""
    return (rec.transport == "tcp" and rec.protocol == "unknown"
            and RESVPORT_LOW <= rec.src_port < TRUSTED_PORT_LIMIT and RESVPORT_LOW <= rec.dst_port < TRUSTED_PORT_LIMIT)


def _source_port_rule(rec: FlowRecord, sig: Signature | None, server: str, where: str, add: Any) -> None:
    """`privileged-source-port`: a TCP client that bound a port below 1024 (root chose it) to reach a
    service that trusts no such port, or an r-service reached from an unprivileged port (which it
    refuses). Only handshake-oriented TCP: with an inferred orientation the client is a guess, and
    UDP services answer from their own low ports (NTP, DNS, IKE, syslog, bootp). rsh's stderr channel
    (reserved port to reserved port, see rcmd_stderr_channel) is the trusted-port scheme itself, and
    so is any protocol whose signature says `reserved_source_port` (ONC RPC's MOUNT and NLM sit on
    ports the portmapper hands out, so the port list alone cannot know them)."""
    if rec.transport != "tcp" or rec.orientation == "inferred":
        return
    sport, dport = rec.src_port, rec.dst_port
    client = endpoint(rec.src_ip, sport)
    # Only a recognised r-service: 514/tcp also carries syslog over TCP (RFC 6587), which trusts no port.
    if dport in R_SERVICES and sport >= TRUSTED_PORT_LIMIT and rec.protocol in R_PROTOCOLS:
        name = R_SERVICES[dport]
        add("privileged-source-port", f"{name} client {client} reached {server} on {where} from unprivileged port "
            f"{sport}: {name}d trusts only clients on ports below 1024 (bound by root) and should refuse it; "
            "an accepted session means the server does not check, or the client is not a stock rcmd(3) client",
            "low")
        return
    if (sport >= TRUSTED_PORT_LIMIT or sport == 0 or dport in TRUSTED_PORT_SERVICES or sport in (dport, FTP_DATA_PORT)
            or (sig is not None and sig.reserved_source_port) or rcmd_stderr_channel(rec)):
        return
    add("privileged-source-port", f"client {client} connected to {server} on {where} from privileged port "
        f"{sport}: only root can bind a port below 1024 and this service trusts no source port, so a tool "
        "chose it on purpose (a firewall rule keyed on source ports, e.g. 53 or 88, can be slipped past this way)")


def _starttls(ctx: PolicyContext, protocol: str) -> bool:
    sig = ctx.signatures.get(protocol)
    return bool(sig and sig.cleartext_auth and not sig.encrypted)


def _connect_rule(rec: FlowRecord, server: str, where: str, add: Any) -> None:
    """An HTTP proxy relaying CONNECT: ordinary for web ports, a tunnel for anything else. Only a
    2xx answer opens the tunnel (RFC 9110 section 9.3.6): a refused CONNECT relayed nothing, and
    is noted as an attempt (low when it was for a port no web client asks for)."""
    target = rec.meta.get("http_connect_target")
    if rec.protocol != "http" or not isinstance(target, str):
        return
    host, _, port_s = target.rpartition(":")
    tport = int(port_s) if port_s.isdigit() else 0
    status = rec.meta.get("http_status")
    if isinstance(status, int) and not 200 <= status < 300:
        add("tunnel", f"HTTP proxy {server}, {where}, refused CONNECT to {target} (status {status}): nothing was "
            "relayed", "info" if tport in WEB_PORTS else "low")
        return
    if tport in WEB_PORTS:
        add("tunnel", f"HTTP proxy {server}, {where}, relays CONNECT to {target}: proxied web traffic", "info")
    else:
        add("tunnel", f"HTTP proxy {server}, {where}, relays CONNECT to {target}, not a web port: an arbitrary "
            "TCP tunnel (SSH, VPN, remote desktop) through the proxy", "high")


def _insecure_rules(
    rec: FlowRecord, ctx: PolicyContext, sig: Signature | None, server: str, where: str, evidence: str, add: Any,
) -> None:
    """The site policy's `insecure_services` decides what is insecure to offer, by protocol or service name.

    A service name counts when the server answered and the bytes are that service (or nothing
    recognised): syslog over TCP on 514 is not rsh just because /etc/services calls 514/tcp shell.
    """
    proto, port, transport = rec.protocol, rec.dst_port, rec.transport
    insecure = ctx.policy.insecure_services
    reason = insecure.get(proto) if proto != "unknown" else None
    if reason is None and answered(rec):
        for svc in ctx.insecure_names(port, transport):
            if proto in ("unknown", svc) or proto in ctx.service_protocols.get((svc, transport), ()):
                reason = insecure[svc]
                break
    # The core's facts (core/src/detect/upgrades.rs, from the signature's [conversation] login and
    # anonymous patterns): which lines are a login is protocol knowledge, kept in signatures/.
    login, anonymous = rec.meta.get("cleartext_login"), rec.meta.get("anonymous_login")
    label = proto if proto != "unknown" else "server"
    if (login or anonymous) and sig is not None and sig.cleartext_auth:
        what = f": {reason}" if reason else ""
        if not login:
            # a public anonymous FTP login carries no secret; the service is still cleartext
            add("insecure-protocol", f"{label} anonymous login on {server}, {where}, without TLS: no secret "
                f"crossed, but everything else does in clear{what}{evidence}", "medium")
        else:
            add("insecure-protocol", f"{label} login on {server}, {where}, without TLS: credentials crossed in "
                f"clear (not shown){what}{evidence}", "high")
    elif reason:
        add("insecure-protocol", f"{label} on {server}, {where}, is offered: {reason}{evidence}")
    elif sig is not None and sig.insecure and not _secured(rec.meta, sig):
        # the signature's own flag, not backed by the site policy: worth a note, not an alarm
        add("insecure-protocol", f"{label} on {server}, {where}: its signature marks {proto} insecure, the site "
            f"policy's insecure_services does not list it{evidence}", "info")


def _secured(meta: Any, sig: Signature) -> bool:
    """A flow of an insecure protocol that its facts make secure (the signature's `secure_when`:
    SNMPv3 with authentication and privacy)."""
    return any(str(meta.get(fact)) in values for fact, values in sig.secure_when)


_EVIDENCE = (("ssh_server", "banner"), ("ssh_client", "client"), ("sni", "SNI"), ("http_host", "Host"),
             ("http_server", "Server"), ("banner", "banner"), ("dns_query", "query"))


def _evidence(record: FlowRecord) -> str:
    meta = record.meta
    parts = []
    for key, label in _EVIDENCE:
        # `in` first: most records hold none of these, and asking the core's map whether it has a
        # key costs half of asking for a value that is not there
        if key not in meta:
            continue
        value = meta.get(key)
        if isinstance(value, str) and value:
            parts.append(f"{label}: {value}")
        if len(parts) == 2:
            break
    return f" [{'; '.join(parts)}]" if parts else ""


def _apply_policy(findings: list[Finding], record: FlowRecord, policy: Policy) -> list[Finding]:
    if not findings:
        return findings
    floor = SEVERITY_RANK[policy.min_severity]
    kept = []
    for f in findings:
        if f.kind in policy.disabled or _allowed(f.kind, record, policy):
            continue
        if f.kind in policy.severity_overrides:
            f.severity = policy.severity_overrides[f.kind]
        if SEVERITY_RANK[f.severity] >= floor:
            kept.append(f)
    return kept


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _allowed(kind: str, record: FlowRecord, policy: Policy) -> bool:
    if not policy.allow:
        return False
    server = _address(record.dst_ip)
    client = _address(record.src_ip)
    for rule in policy.allow:
        if rule.protocol is not None and rule.protocol != record.protocol:
            continue
        if rule.ports and record.dst_port not in rule.ports:
            continue
        if rule.transport is not None and rule.transport != record.transport:
            continue
        if rule.kinds and kind not in rule.kinds:
            continue
        if rule.networks and (server is None or not any(server in n for n in rule.networks)):
            continue
        if rule.clients and (client is None or not any(client in n for n in rule.clients)):
            continue
        return True
    return False
