"""Turn host facts into flow-shaped records with findings. Pure: facts and the policy context in.

Each configured service and each listener becomes one FlowRecord (DESIGN.md's schema, so that the
jsonl/csv sinks and the summary serve `audit` as they serve `analyze`): the server side is the
service's address and port, there is no client (`src_ip` empty), `orientation` is "audit", and
`meta.audit` says where the record comes from (inetd, xinetd, listener). Findings use the shared
catalogue and, where none fits, the kinds in `model.AUDIT_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Finding, FlowRecord
from ..policy.config import load_policy
from ..policy.rules import TRUSTED_PORT_LIMIT, PolicyContext, does_not_list, evaluate
from ..policy.rules import _apply_policy as apply_policy
from ..sanitize import clean_text
from .model import AUDIT_SEVERITY, HostFacts, Listener, ServiceDef

# inetd's built-in services: nothing needs them today, and they answer anyone.
INTERNAL_DOS = frozenset(("echo", "discard", "chargen", "daytime", "time"))
# UDP echo and chargen answer spoofed datagrams: reflection, and the echo<->chargen loop (CVE-1999-0103).
REFLECTORS = frozenset(("echo", "chargen"))


@dataclass(frozen=True, slots=True)
class Insecure:
    label: str
    severity: str
    why: str


_RSH = "trusts the client's address and ~/.rhosts instead of a password, and nothing is encrypted"
INSECURE_SERVICES = {
    "telnet": Insecure("telnet", "high", "logins and passwords cross the network in clear"),
    "shell": Insecure("rsh", "high", _RSH),
    "cmd": Insecure("rsh", "high", _RSH),
    "login": Insecure("rlogin", "high", _RSH),
    "exec": Insecure("rexec", "high", "passwords cross the network in clear"),
    "finger": Insecure("finger", "medium", "tells anyone the user names, login times and idle hosts"),
    "tftp": Insecure("tftp", "medium", "no authentication: anyone can fetch (and maybe store) files"),
    "talk": Insecure("talk", "medium", "unauthenticated and cleartext, lets anyone write to users' terminals"),
    "ntalk": Insecure("talk", "medium", "unauthenticated and cleartext, lets anyone write to users' terminals"),
}
# The daemon tells the truth when the service name does not (in.telnetd put on another port).
INSECURE_DAEMONS = {
    "in.telnetd": "telnet", "telnetd": "telnet", "in.rshd": "shell", "rshd": "shell", "in.rlogind": "login",
    "rlogind": "login", "in.rexecd": "exec", "rexecd": "exec", "in.fingerd": "finger", "fingerd": "finger",
    "cfingerd": "finger", "efingerd": "finger", "in.tftpd": "tftp", "tftpd": "tftp", "in.talkd": "talk",
    "talkd": "talk", "in.ntalkd": "ntalk", "ntalkd": "ntalk",
}
# Daemons that authenticate users and become them, or supervise others: root is their job.
NEEDS_ROOT = frozenset((
    "in.telnetd", "telnetd", "in.rlogind", "rlogind", "in.rshd", "rshd", "in.rexecd", "rexecd", "in.ftpd", "ftpd",
    "proftpd", "vsftpd", "pure-ftpd", "sshd", "sshd-session", "dropbear", "imapd", "ipop3d", "popa3d", "dovecot",
    "uucpd", "uucico", "cvs", "swat", "smbd", "rsync", "sendmail", "exim4", "master", "inetd", "xinetd",
    "openbsd-inetd", "init", "systemd", "login", "cupsd", "dockerd", "containerd", "kubelet", "libvirtd",
))
NEEDS_ROOT_SERVICES = frozenset((
    "telnet", "login", "shell", "cmd", "exec", "ftp", "ssh", "pop3", "pop-3", "imap", "imap2", "uucp",
    "cvspserver", "swat", "smtp", "rsync", "netbios-ssn", "microsoft-ds",
))
# Known to run unprivileged in every distribution that packages them (nobody, tty, identd...).
NO_ROOT_NEEDED = frozenset((
    "in.fingerd", "fingerd", "cfingerd", "efingerd", "in.tftpd", "tftpd", "in.talkd", "talkd", "in.ntalkd",
    "ntalkd", "in.identd", "identd", "oidentd", "authd", "in.comsat", "comsat", "rpc.rstatd", "rpc.rusersd",
    "rpc.rwalld", "rpc.sprayd", "in.timed", "leafnode", "in.rwhod", "named", "unbound", "dnsmasq", "ntpd",
    "chronyd", "snmpd", "redis-server", "memcached", "mysqld", "mariadbd", "postgres", "squid", "tor",
))
NO_ROOT_SERVICES = frozenset(("finger", "tftp", "talk", "ntalk", "ident", "auth", "biff", "comsat"))


def _lookup_name(svc: ServiceDef) -> str:
    # `tcpmux/+name` entries are served through the tcpmux port (RFC 1078), not a port of their own.
    return "tcpmux" if svc.name.startswith("tcpmux/") else svc.name


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class Auditor:
    def __init__(self, ctx: PolicyContext, now: float) -> None:
        self.ctx = ctx
        self.now = now
        builtin = load_policy().insecure_services
        self._extra_insecure = frozenset(n for n in INSECURE_SERVICES if n not in builtin)

    def _insecure_reason(self, name: str) -> str | None:
        """Why offering `name` is insecure: the site policy's insecure_services decide, and the
        audit's own table adds only names the built-in policy does not list (tftp), so that a site
        which takes a built-in entry back silences the audit too."""
        why = self.ctx.policy.insecure_services.get(name)
        if why is None and name in self._extra_insecure:
            entry = INSECURE_SERVICES[name]
            why = f"{entry.label}: {entry.why}"
        return why

    def _sev(self, kind: str) -> str:
        return AUDIT_SEVERITY.get(kind) or self.ctx.policy.severity.get(kind, "medium")

    # ---- configured services ---------------------------------------------------------------
    def service_port(self, svc: ServiceDef) -> int:
        if svc.port is not None:
            return svc.port
        if svc.rpc:
            return 0  # rpcbind hands out the port at run time
        entries = self.ctx.services.by_name(_lookup_name(svc), svc.transport)
        return entries[0].port if entries else 0

    def service_record(self, svc: ServiceDef, tcpd_convention: bool) -> FlowRecord:
        port = self.service_port(svc)
        transport = svc.transport
        address = svc.address or ("::" if svc.protocol.endswith("6") else "0.0.0.0")
        meta: dict[str, object] = {
            "audit": svc.origin, "file": clean_text(svc.file, 300), "line": svc.line,
            "service": clean_text(svc.name, 64),
            "socket_type": svc.socket_type, "wait": svc.wait, "user": clean_text(svc.user, 64),
            "server": clean_text(svc.server, 200), "daemon": clean_text(svc.daemon, 64), "wrapped": svc.wrapped,
        }
        if svc.group:
            meta["group"] = clean_text(svc.group, 64)
        if svc.args:
            meta["args"] = clean_text(" ".join(svc.args), 200)
        for key, value in svc.extra.items():
            meta[key] = clean_text(value, 200)
        rec = FlowRecord(self.now, self.now, transport, "", 0, clean_text(address, 64), port, "audit",
                         assigned=self.ctx.services.names(port, transport) if port else [], meta=meta)
        rec.findings = apply_policy(self._service_findings(svc, rec, tcpd_convention), rec, self.ctx.policy)
        return rec

    def _service_findings(self, svc: ServiceDef, rec: FlowRecord, tcpd_convention: bool) -> list[Finding]:
        out: list[Finding] = []
        name, daemon = clean_text(svc.name, 64), clean_text(svc.daemon, 64)
        where = f"{clean_text(svc.file, 300)}:{svc.line}"  # an image's file names are its author's choice
        what = f"{svc.origin} service {name} on {rec.dst_port or '?'}/{svc.transport}"
        if svc.internal and svc.name in INTERNAL_DOS:
            if self._insecure_reason(svc.name) is None:
                pass  # the site took it off its insecure_services list
            elif svc.transport == "udp" and svc.name in REFLECTORS:
                out.append(Finding("insecure-protocol", "high", f"{what} is enabled at {where}: UDP {name} answers "
                                   "spoofed datagrams, a reflection vector, and an echo/chargen pair loops forever "
                                   "(CVE-1999-0103)"))
            else:
                out.append(Finding("insecure-protocol", self._sev("insecure-protocol"),
                                   f"{what} is enabled at {where}: an {svc.origin} internal service nothing needs, a "
                                   "denial-of-service vector"))
        elif not svc.internal:
            # The daemon tells the truth when the name does not (in.telnetd put under another name).
            for key in (svc.name.lower(), INSECURE_DAEMONS.get(svc.daemon)):
                why = self._insecure_reason(key) if key else None
                if why is not None:
                    ran = f" (runs {daemon})" if daemon != name else ""
                    known = INSECURE_SERVICES.get(key or "")
                    out.append(Finding("insecure-protocol", known.severity if known else self._sev("insecure-protocol"),
                                       f"{what}{ran} is enabled at {where}: {clean_text(why, 200)}"))
                    break
        if svc.user == "root" and not svc.internal:
            if svc.daemon in NO_ROOT_NEEDED or (svc.name in NO_ROOT_SERVICES and svc.daemon not in NEEDS_ROOT):
                out.append(Finding("root-service", self._sev("root-service"),
                                   f"{what} runs {daemon} as root at {where}: it works as an unprivileged user "
                                   "(nobody), so a flaw in it need not give away the host"))
            elif svc.daemon not in NEEDS_ROOT and svc.name not in NEEDS_ROOT_SERVICES:
                out.append(Finding("root-service", "low", f"{what} runs {daemon} as root at {where}: it is not "
                                   "known to need root; run it as its own user if it can"))
        if (tcpd_convention and svc.origin == "inetd" and not svc.internal and not svc.wrapped and not svc.rpc):
            out.append(Finding("unwrapped-service", self._sev("unwrapped-service"),
                               f"{what} at {where} starts {daemon} directly, not through tcpd as the other "
                               "services here do: /etc/hosts.allow and hosts.deny do not apply to it"))
        if not svc.rpc and not svc.unlisted and not self.ctx.services.by_name(_lookup_name(svc), svc.transport):
            consequence = ("inetd cannot find its port and will not start it" if svc.origin == "inetd"
                           else "xinetd will not start it unless it is marked type = UNLISTED")
            out.append(Finding("unknown-service", self._sev("unknown-service"),
                               f"{what} at {where}: {name}/{svc.transport} is not in "
                               f"{self.ctx.services.source}: {consequence} (misspelt or missing entry?)"))
        if svc.unlisted and rec.dst_port and not rec.assigned:
            out.append(self._unassigned(rec, f"{what} at {where}"))
        return out

    def _unassigned(self, rec: FlowRecord, what: str) -> Finding:
        where = f"{rec.dst_port}/{rec.transport}"
        unlisted = does_not_list(self.ctx.services.registry)
        if rec.dst_port < TRUSTED_PORT_LIMIT:
            return Finding("unassigned-port", self._sev("unassigned-port"),
                           f"{what} listens on trusted port {where}, which {unlisted}")
        return Finding("unassigned-port", "info", f"{what} listens on {where}, which {unlisted}")

    # ---- listening sockets -----------------------------------------------------------------
    def listener_record(self, lst: Listener, probe: dict[str, object] | None = None) -> FlowRecord:
        meta: dict[str, object] = {"audit": "listener", "inode": lst.inode, "uid": lst.uid}
        if lst.pids:
            meta["pid"] = lst.pids[0]
            if len(lst.pids) > 1:
                meta["pids"] = lst.pids[:16]
        if lst.process is not None:
            meta["process"] = clean_text(lst.process, 64)
        if lst.proc_uid is not None:
            meta["uid"] = lst.proc_uid
        if lst.user is not None:
            meta["user"] = clean_text(lst.user, 64)
        rec = FlowRecord(self.now, self.now, lst.transport, "", 0, lst.address, lst.port, "audit",
                         assigned=self.ctx.services.names(lst.port, lst.transport), meta=meta)
        found: list[Finding] = []
        if probe is not None:
            protocol = str(probe.pop("protocol", "unknown"))
            confidence = float(probe.pop("confidence", 0.0))  # type: ignore[arg-type]
            # The probe's own exchange is this record's traffic: the policy grades a verdict by
            # whether the server answered, as it does for a captured flow.
            rec.bytes_c2s = int(probe.pop("bytes_c2s", 0))  # type: ignore[call-overload]
            rec.bytes_s2c = int(probe.pop("bytes_s2c", 0))  # type: ignore[call-overload]
            rec.packets_c2s, rec.packets_s2c = int(rec.bytes_c2s > 0), int(rec.bytes_s2c > 0)
            rec.meta.update(probe)
            if protocol != "unknown":
                rec.protocol, rec.confidence = protocol, confidence
                found = evaluate(rec, self.ctx)  # port-mismatch, tunnel, insecure-protocol: analyze's own rules
        found += apply_policy(self._listener_findings(lst, rec, {f.kind for f in found}), rec, self.ctx.policy)
        rec.findings = found
        return rec

    def _listener_findings(self, lst: Listener, rec: FlowRecord, already: set[str]) -> list[Finding]:
        out: list[Finding] = []
        who = clean_text(lst.process, 64) if lst.process else f"uid {lst.uid}"
        what = f"{who} on {_endpoint(lst.address, lst.port)}"
        if not rec.assigned and "unassigned-port" not in already:
            out.append(self._unassigned(rec, what))
        if lst.process is not None and lst.proc_uid == 0:
            if lst.process in NO_ROOT_NEEDED:
                out.append(Finding("root-service", self._sev("root-service"), f"{what}/{lst.transport} runs as root:"
                                   f" {who} works as an unprivileged user, so a flaw in it need not give away the "
                                   "host"))
            elif lst.port >= TRUSTED_PORT_LIMIT and lst.process not in NEEDS_ROOT:
                out.append(Finding("root-service", "low", f"{what}/{lst.transport} runs as root on an unprivileged "
                                   "port, where binding needs no root: check whether it must"))
        return out


def tcpd_convention(facts: HostFacts) -> bool:
    """tcpd is the local convention when at least half the external inetd entries, enabled or
    commented out, go through it (the classic Debian/BSD inetd.conf wraps them all)."""
    external = [s for s in (*facts.services, *facts.disabled) if s.origin == "inetd" and not s.internal and not s.rpc]
    wrapped = sum(1 for s in external if s.wrapped)
    return wrapped > 0 and 2 * wrapped >= len(external)


def audit_records(facts: HostFacts, ctx: PolicyContext, now: float,
                  probes: dict[int, dict[str, object]] | None = None) -> list[FlowRecord]:
    """Records for every enabled service and every listener; `probes` is keyed by socket inode."""
    auditor = Auditor(ctx, now)
    convention = tcpd_convention(facts)
    services = [auditor.service_record(s, convention) for s in facts.services]
    listeners = []
    for lst in facts.listeners:
        probe = (probes or {}).get(lst.inode)
        listeners.append(auditor.listener_record(lst, dict(probe) if probe is not None else None))
    _link(services, listeners, facts.sockets_read)
    return services + listeners


def _link(services: list[FlowRecord], listeners: list[FlowRecord], sockets_read: bool) -> None:
    """Say which configured service a listener is, and whether a configured service listens at all
    (an enabled entry with no socket: the super-server is not running, or refused the entry)."""
    by_port: dict[tuple[int, str], list[FlowRecord]] = {}
    for rec in listeners:
        by_port.setdefault((rec.dst_port, rec.transport), []).append(rec)
    for svc in services:
        if not svc.dst_port:
            continue
        found = by_port.get((svc.dst_port, svc.transport), [])
        if sockets_read:
            svc.meta["listening"] = bool(found)
        for rec in found:
            rec.meta.setdefault("configured", f"{svc.meta['audit']} {svc.meta['file']}:{svc.meta['line']}")
