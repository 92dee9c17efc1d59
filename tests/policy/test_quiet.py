"""The fast path of `evaluate`: `quiet` says a record needs none of the record-only rules, and it
must never say so when one of them would speak (on real captures and on crafted records near
every edge the table is built from)."""

from __future__ import annotations

import dataclasses
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from findkit import SERVICES, SIGNATURES, context, record

from portwatch.model import Finding, FlowRecord
from portwatch.pipeline import Config, Setup, analyze_path
from portwatch.policy import rules
from portwatch.policy.rules import QUIET, PolicyContext, _port_and_service_rules, quiet
from portwatch.services import fallback_path

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"
CONFIG = Config(services_path=str(fallback_path()))

# A site policy that moves every edge the table reads: insecure by protocol and by service name
# (with and without a reason), tolerated services, negotiated protocols, egress ports.
SITE_POLICY = """\
negotiated = ["http", "ssh"]
[egress]
tcp = [22, 8080]
[protocol_services]
http = ["mysql", "domain"]
ssh = ["https"]
[insecure_services]
http = "plain web"
smtp = ""
domain = "no resolvers here"
https = "only via the proxy"
finger = ""
"""


def static_findings(rec: FlowRecord, ctx: PolicyContext) -> list[Finding]:
    out: list[Finding] = []

    def add(kind: str, message: str, severity: str | None = None) -> None:
        out.append(Finding(kind, severity or "medium", message))

    _port_and_service_rules(rec, ctx, out, add)
    return out


def check_never_quiet_when_rules_speak(recs: list[FlowRecord], ctx: PolicyContext) -> int:
    taken = 0
    for rec in recs:
        if quiet(rec, ctx):
            taken += 1
            assert static_findings(rec, ctx) == [], rec
    return taken


@cache
def capture_records() -> tuple[FlowRecord, ...]:
    out: list[FlowRecord] = []
    for path in sorted([*CAPTURES.glob("*.pcap"), *CAPTURES.glob("tunnels/*.pcap")]):
        analyze_path(str(path), Setup.load(CONFIG), CONFIG, out.append)
    return tuple(out)


def test_quiet_records_of_the_captures_raise_nothing_in_the_rules_it_skips() -> None:
    recs = list(capture_records())
    assert len(recs) > 100
    taken = check_never_quiet_when_rules_speak(recs, context())
    assert 0 < taken < len(recs)  # the fast path is taken, and not for everything
    check_never_quiet_when_rules_speak(recs, context_with_site_policy())


def test_evaluate_with_and_without_the_fast_path_agree_on_the_captures(monkeypatch: pytest.MonkeyPatch) -> None:
    recs = list(capture_records())
    fast_ctx, slow_ctx = context(), context()  # each its own DNS tracker, fed the same records
    fast = [rules.evaluate(r, fast_ctx) for r in recs]
    monkeypatch.setattr(rules, "quiet", lambda rec, ctx: False)
    slow = [rules.evaluate(r, slow_ctx) for r in recs]
    assert fast == slow
    assert any(fast)


def context_with_site_policy() -> PolicyContext:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(SITE_POLICY)
    try:
        return context(f.name)
    finally:
        Path(f.name).unlink()


# Ports on each side of the edges: trusted/unassigned, r-services, STARTTLS ports, the signatures' own.
EDGE_PORTS = sorted({0, 1, 20, 21, 22, 23, 25, 53, 79, 80, 110, 111, 143, 161, 443, 465, 512, 513, 514, 515, 587,
                     993, 1023, 1024, 1080, 2049, 3306, 5060, 6667, 8080, 8443, 40000, 65535}
                    | {p for s in SIGNATURES for p in list(s.ports)[:3]})
SRC_PORTS = (0, 20, 53, 80, 513, 1023, 1024, 40000)
HEADS = ("", "5553455220616e6f6e796d6f75730d0a", "50415353207365637265740d0a", "474554202f20485454502f312e310d0a",
         "zz")


ENTROPY_FACTS = (
    {"length": 512, "entropy": 7.6, "popcount": 4.0, "printable": 0.37, "longest_printable_run": 3,
     "looks_encrypted": True},
    {"length": 40, "entropy": 4.1, "popcount": 3.4, "printable": 1.0, "longest_printable_run": 40,
     "looks_encrypted": False},
)


def crafted(rng: random.Random) -> FlowRecord:
    sig = rng.choice(SIGNATURES)
    proto = rng.choice((sig.protocol, sig.protocol, "unknown", "http", "ftp", "rsh", "rlogin", "rexec"))
    transport = rng.choice(sig.transports if proto == sig.protocol else ("tcp", "udp"))
    own = sorted(sig.ports) if proto == sig.protocol else [512, 513, 514] if proto.startswith("r") else []
    port = rng.choice(own) if own and rng.random() < 0.6 else rng.choice(EDGE_PORTS)
    meta: dict[str, Any] = {}
    if rng.random() < 0.1:
        meta["control_flow_id"] = 7
    if rng.random() < 0.2:
        meta["http_connect_target"] = rng.choice(("example.com:443", "10.0.0.1:22", 5))
    if rng.random() < 0.2:
        meta["cleartext_login"] = rng.choice((True, False, "USER"))
    if rng.random() < 0.1:
        meta["anonymous_login"] = rng.choice((True, False))
    if rng.random() < 0.4:
        meta["client_head"] = rng.choice(HEADS)
    if rng.random() < 0.1:
        meta["announced_foreign"] = [{"by": "PORT", "endpoint": "203.0.113.9:20"}]
    if rng.random() < 0.1:
        meta["tcp_overlap_conflicts"] = 2
    if rng.random() < 0.2:  # the core's entropy facts of a side's first bytes (encrypted or clear)
        side = rng.choice(("client", "server"))
        meta[f"entropy_{side}"] = rng.choice(ENTROPY_FACTS)
    cport = rng.choice(SRC_PORTS) if rng.random() < 0.5 else 50000
    rec = record(proto, port, transport, cport=cport, c2s=rng.choice((0, 100)), s2c=rng.choice((0, 0, 100)),
                 packets=(3, rng.choice((0, 2))), confidence=rng.choice((0.5, 0.95)),
                 orientation=rng.choice(("handshake", "inferred", "first-packet")), meta=meta)
    if rng.random() < 0.1:  # `assigned` as the record says it, whatever the services file says
        rec.assigned = rng.choice(([], ["http"], ["mdns"]))
    return rec


def context_with_other_signatures() -> PolicyContext:
    """The signatures' flags shuffled (user signatures may set any), r-services without their
    insecure flags, and no insecure_services: the edges the built-in set never reaches."""
    rng = random.Random(20)
    sigs = [dataclasses.replace(s, insecure=rng.random() < 0.2, cleartext_auth=rng.random() < 0.3,
                                encrypted=rng.random() < 0.3, tunnel=rng.random() < 0.2) for s in SIGNATURES]
    rsh = next(s for s in SIGNATURES if s.protocol == "rsh")
    sigs += [dataclasses.replace(rsh, protocol=name, insecure=False, cleartext_auth=False, ports=frozenset({port}))
             for name, port in (("rlogin", 513), ("rexec", 512))]
    sigs = [dataclasses.replace(s, insecure=False, cleartext_auth=False) if s.protocol == "rsh" else s for s in sigs]
    sigs = [dataclasses.replace(s, cleartext_auth=True) if s.protocol == "http" else s for s in sigs]
    policy = dataclasses.replace(context().policy, insecure_services={})
    return PolicyContext.build(SERVICES, sigs, policy)


@pytest.mark.parametrize("variant", ["default", "site", "signatures"])
def test_quiet_crafted_records_near_every_edge(variant: str) -> None:
    ctx = {"default": context, "site": context_with_site_policy, "signatures": context_with_other_signatures}[variant]()
    rng = random.Random(15)
    recs = [crafted(rng) for _ in range(20_000)]
    taken = check_never_quiet_when_rules_speak(recs, ctx)
    assert taken > 500


def test_quiet_table_per_protocol_and_port() -> None:
    ctx = context()
    assert ctx.quiet_static("tls", 443, "tcp") == QUIET
    assert ctx.quiet_static("dns", 53, "udp") == QUIET
    assert ctx.quiet_static("ssh", 443, "tcp") == rules.NOT_QUIET  # port-mismatch, tunnel
    assert ctx.quiet_static("telnet", 23, "tcp") == rules.NOT_QUIET  # insecure
    assert ctx.quiet_static("ftp", 21, "tcp") == rules.NOT_QUIET  # login, bounce
    assert ctx.quiet_static("smtp", 25, "tcp") == rules.QUIET_UNLESS_LOGIN
    assert ctx.quiet_static("http", 80, "tcp") == rules.QUIET_UNLESS_LOGIN_OR_CONNECT  # Basic auth, CONNECT
    assert ctx.quiet_static("unknown", 443, "tcp") == rules.NOT_QUIET


def test_quiet_per_record_conditions() -> None:
    ctx = context()
    assert quiet(record("tls", 443), ctx)
    assert not quiet(record("tls", 443, cport=999), ctx)  # privileged-source-port is asked
    assert quiet(record("tls", 443, cport=999, orientation="inferred"), ctx)
    assert not quiet(record("tls", 40000), ctx)  # unassigned: the inventory note is asked
    assert not quiet(record("tls", 443, meta={"control_flow_id": 3}), ctx)
    assert not quiet(record("http", 80, meta={"http_connect_target": "h:22"}), ctx)
    assert not quiet(record("http", 80, meta={"cleartext_login": True}), ctx)
    assert quiet(record("http", 80, meta={"http_host": "h"}), ctx)
    assert not quiet(record("smtp", 25, meta={"cleartext_login": True}), ctx)
    assert not quiet(record("smtp", 25, meta={"anonymous_login": True}), ctx)
    # the core's facts say whether a login crossed (the signature's [conversation]), not the head
    assert quiet(record("smtp", 25, meta={"client_head": b"AUTH PLAIN x\r\n".hex()}), ctx)
    assert quiet(record("smtp", 25, meta={"client_head": b"EHLO x\r\n".hex()}), ctx)


def test_quiet_unrecognised_flows_that_no_server_answered() -> None:
    ctx = context()
    unanswered = {"c2s": 0, "s2c": 0, "packets": (1, 0)}
    assert quiet(record("unknown", 443, **unanswered), ctx)  # a SYN to 443
    assert quiet(record("unknown", 40000, **unanswered), ctx)  # unassigned: no server, no inventory note
    assert quiet(record("unknown", 23, c2s=20, s2c=0, packets=(2, 0)), ctx)  # bytes nobody acknowledged
    assert not quiet(record("unknown", 40000, c2s=0, s2c=10, packets=(1, 1)), ctx)  # a server answered
    assert not quiet(record("unknown", 23, c2s=20, s2c=0, packets=(2, 1)), ctx)  # acknowledged: telnet's port
    assert not quiet(record("unknown", 443, c2s=0, s2c=0, packets=(1, 0), cport=999), ctx)  # privileged source
    for fact in ("entropy_client", "entropy_server"):
        assert not quiet(record("unknown", 443, **unanswered, meta={fact: ENTROPY_FACTS[0]}), ctx)
    # each fact the fast path looks for is one the skipped rules speak from, when nobody answered
    encrypted = record("unknown", 443, c2s=512, s2c=0, packets=(3, 0), meta={"entropy_client": ENTROPY_FACTS[0]})
    assert [f.kind for f in static_findings(encrypted, ctx)] == ["encrypted-unknown"]
    clear = record("unknown", 443, c2s=40, s2c=0, packets=(3, 0), meta={"entropy_client": ENTROPY_FACTS[1]})
    assert [f.kind for f in static_findings(clear, ctx)] == ["cleartext-on-secure-port"]


def test_quiet_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MAX_QUIET_KEYS", 10)
    ctx = PolicyContext.build(SERVICES, SIGNATURES, context().policy)
    for port in range(1000, 1100):
        ctx.quiet_static("tls", port, "tcp")
    assert len(ctx._quiet) == 10
    assert ctx.quiet_static("tls", 443, "tcp") == QUIET  # past the bound: decided all the same


def test_insecure_names_are_the_ports_listed_services_in_the_order_the_rule_asks() -> None:
    ctx = context_with_site_policy()
    # primary names and aliases, lowercase: 80/tcp is http (alias www), only http is listed
    assert ctx.insecure_names(80, "tcp") == ("http",)
    assert ctx.insecure_names(53, "udp") == ("domain",)
    assert ctx.insecure_names(79, "tcp") == ()  # `finger = ""` takes finger off the list
    assert ctx.insecure_names(8080, "tcp") == ()  # http-alt and webcache: neither listed
    assert ctx.insecure_names(40000, "tcp") == ()  # nothing assigned
    assert ctx.insecure_names(80, "tcp") is ctx.insecure_names(80, "tcp")  # remembered per port
    assert context().insecure_names(80, "tcp") == ()  # the default policy lists no service by name here


def test_a_service_name_on_the_policy_makes_an_answered_unknown_server_insecure() -> None:
    ctx = context_with_site_policy()
    answered = record("unknown", 53)
    found = [f for f in static_findings(answered, ctx) if f.kind == "insecure-protocol"]
    assert len(found) == 1 and "no resolvers here" in found[0].message
    silent = record("unknown", 53, s2c=0, packets=(3, 0))  # nothing came back: nothing was offered
    assert "insecure-protocol" not in [f.kind for f in static_findings(silent, ctx)]
    assert "insecure-protocol" not in [f.kind for f in static_findings(record("unknown", 8080), ctx)]
