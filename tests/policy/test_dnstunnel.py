"""The DNS tunnel tracker: name shapes, aggregation per registered domain, bounded state."""

from __future__ import annotations

import random

import pytest
from findkit import record
from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch import _core
from portwatch.policy import dnstunnel
from portwatch.policy.dnstunnel import DnsTunnelTracker, name_shape, registered_domain

B32 = "abcdefghijklmnopqrstuvwxyz234567"


def encoded(rng: random.Random, n: int = 52) -> str:
    return "".join(rng.choice(B32) for _ in range(n))


def dns(name: str, qtype: str = "A", *, packets: int = 1, answers: list[str] | None = None, i: int = 0):
    meta = {"dns_query": name, "dns_qtype": qtype}
    if answers:
        meta["dns_answers"] = answers
    return record("dns", 53, "udp", cport=20000 + i, meta=meta, packets=(packets, packets))


def test_registered_domain_heuristic() -> None:
    assert registered_domain(["a", "b", "example", "com"]) == ["example", "com"]
    assert registered_domain(["x", "example", "co", "uk"]) == ["example", "co", "uk"]


def test_name_shape_separates_encoded_data_from_hostnames() -> None:
    rng = random.Random(5)
    assert name_shape(f"{encoded(rng)}.t.example.com.").suspicious
    assert name_shape(f"{'0123456789abcdef' * 3}.hash.example.net.").suspicious  # 48 hex characters
    for ordinary in ("www.example.com.", "c-flightproxy-euno-01-teams.cloudapp.net.",
                     "iTunes_Ctrl_4ABB39A41EEFDEB3._dacp._tcp.local.", "FHEPFCELEHFCEPFFFACACACACACACABN.",
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.org."):
        shape = name_shape(ordinary)
        assert shape is None or not shape.suspicious, ordinary


def test_an_escaped_byte_is_one_character_of_its_label() -> None:
    # the probe writes a non-printable byte as \\DDD (RFC 1035 5.1): one byte on the wire
    shape = name_shape("a\\000b\\255.cd.example.com.")
    assert shape is not None and shape.data == "axbxcd" and shape.longest_label == 4
    assert shape.domain == "example.com"


def test_one_socket_with_many_null_queries_is_high_at_once() -> None:
    tr = DnsTunnelTracker()
    v = tr.observe(dns("vaaaakardli.t.example.test.", "NULL", packets=40), "10.0.0.53:53", "53/udp")
    assert v is not None and v.severity == "high" and "40 queries" in v.message and "NULL" in v.message


def test_many_unusual_type_queries_over_unique_names_across_flows() -> None:
    tr = DnsTunnelTracker()
    verdicts = [tr.observe(dns(f"p{i}x.c.tun.example.", "TXT", i=i, packets=2), "s", "w") for i in range(12)]
    assert verdicts[0] is None and verdicts[-1] is not None and verdicts[-1].severity == "high"


def test_long_answers_alone_are_only_a_note() -> None:
    tr = DnsTunnelTracker()
    rng = random.Random(2)
    v = tr.observe(dns("cdn.example.com.", answers=[f"CNAME {encoded(rng, 50)}.edge.example.net."]), "s", "w")
    assert v is not None and v.severity == "info"


def test_reverse_lookups_and_mdns_are_ignored() -> None:
    tr = DnsTunnelTracker()
    for i in range(100):
        assert tr.observe(dns(f"{i}.1.0.10.in-addr.arpa.", "PTR", i=i), "s", "w") is None
    mdns = record("dns", 5353, "udp", meta={"dns_query": f"{encoded(random.Random(1))}.local.", "dns_qtype": "NULL"},
                  packets=(50, 0))
    assert tr.observe(mdns, "s", "w") is None


def test_state_is_bounded() -> None:
    tr = DnsTunnelTracker(max_domains=50, max_names=10)
    rng = random.Random(3)
    for i in range(500):
        tr.observe(dns(f"{encoded(rng, 8)}.d{i % 200}.example.", i=i), "s", "w")
    # 200 domains in rotation through 50 slots: every look-up after the first 50 evicts the oldest
    assert len(tr) == 50 and tr.evicted == 450
    for i in range(100):
        tr.observe(dns(f"{encoded(rng, 8)}.one.example.", i=i), "s", "w")
    one = tr.counts("one.example")
    assert one["remembered_names"] == 10 and one["unique"] >= 100 - 10  # counted beyond the remembered names


def test_a_flow_reported_twice_counts_its_queries_once() -> None:
    tr = DnsTunnelTracker()
    early = dns("q1.c.tun.example.", "TXT", packets=5)
    tr.observe(early, "s", "w")
    late = dns("q1.c.tun.example.", "TXT", packets=8)
    tr.observe(late, "s", "w")
    d = tr.counts("tun.example")
    assert d["queries"] == 8 and d["unusual_queries"] == 8 and d["unique"] == 1


def test_account_counts_every_flow_but_speaks_only_for_those_with_marks() -> None:
    rng = random.Random(9)
    tr = DnsTunnelTracker()
    assert tr.account(dns("www.example.com.")) is None  # counted, nothing to word
    assert tr.counts("example.com")["queries"] == 1
    signal = tr.account(dns(f"{encoded(rng)}.t.example.com.", i=1))
    assert signal is not None and signal.shape.suspicious and not signal.reasons
    verdict = signal.verdict("10.0.0.53:53", "53/udp (/etc/services: domain)")
    assert verdict.severity == "low"
    assert "to 10.0.0.53:53 on 53/udp (/etc/services: domain)" in verdict.message
    assert tr.counts("example.com")["unique"] == 2


def test_name_shape_drops_empty_labels_and_keeps_the_registered_domain() -> None:
    shape = name_shape("A..Bc.example.co.uk.")
    assert shape is not None
    assert (shape.domain, shape.data, shape.longest_label) == ("example.co.uk", "abc", 2)
    assert name_shape("..com.") is None
    assert name_shape("example.com").data == ""


# Names built from what decides a split: letters of both cases, digits, dots (empty labels, a
# trailing dot), backslashes before digits, letters, dots and newlines, the second-level labels.
_NAME_PIECES = st.sampled_from(["a", "B", "x", "0", "7", "9", ".", "..", "\\", "\\1", "\\12", "\\123", "\\\n",
                                "\\.", "co", "com", "uk", "DE", "Org", "gov", "\n", " ", "-", "_"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_NAME_PIECES, max_size=24).map("".join))
def test_the_cores_split_of_an_ascii_name_is_pythons(name: str) -> None:
    assert dnstunnel._split_ascii(name) == dnstunnel.split_name(name)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_the_cores_split_of_any_ascii_text_is_pythons(name: str) -> None:
    assert dnstunnel._split_ascii(name) == dnstunnel.split_name(name)


def test_a_name_past_ascii_is_split_by_pythons_rules() -> None:
    # Python lowers "İ" to two characters and reads "٣٤٥" after a backslash as three digits.
    shape = name_shape("\u0130\\\u0663\u0664\u0665.Example.COM.")
    assert shape is not None
    assert (shape.domain, shape.data, shape.longest_label) == ("example.com", "i\u0307x", 3)
    with pytest.raises(ValueError):
        dnstunnel._split_ascii("\u0130.example.com")


def test_a_long_high_entropy_label_from_the_cores_split_is_suspicious() -> None:
    label = "0123456789abcdefghijklmnopqrstuvwxyz-_" + "\\255" * 4  # 42 characters, 38 distinct
    shape = name_shape(f"{label}.t.example.co.uk.")
    assert shape is not None and shape.suspicious
    assert (shape.domain, shape.longest_label) == ("example.co.uk", 42)
    assert not name_shape(f"{'a' * 45}.example.com.").suspicious  # long, but one character


# A stream of DNS records over a few domains, sockets and query types: names ordinary and
# encoded, repeated, past ASCII; answers small and large; sockets reported more than once.
_B32_LABEL = st.text(alphabet=B32, min_size=1, max_size=70)
_QNAME = st.one_of(
    st.builds(lambda data, d: f"{data}.{d}.", _B32_LABEL,
              st.sampled_from(["t.example.com", "tun.example", "x.co.uk", "a.b.example.org", "9.in-addr.arpa"])),
    st.sampled_from(["www.example.com.", "WWW.Example.com", "com.", "\u0130x.tun.example.", "a\\000b.tun.example"]),
)
_ANSWER = st.one_of(
    st.sampled_from(["A 10.0.0.1", "NULL (300 bytes)", "KEY (12 bytes)", "TYPE65300 (0200 bytes)", "MX 10 m.x."]),
    st.builds(lambda n: "TXT " + "v" * n, st.integers(150, 250)),
    st.builds(lambda data: f"CNAME {data}.edge.example.net.", _B32_LABEL),
)
_DNS_RECORD = st.builds(
    lambda qname, qtype, packets, answers, sock, port: record(
        "dns", port, "udp", cport=20000 + sock, packets=(packets, packets),
        meta={"dns_query": qname, "dns_qtype": qtype, "dns_answers": answers}),
    _QNAME, st.sampled_from(["A", "AAAA", "TXT", "NULL", "CNAME", "TYPE65300", "TYPE65535", "", "PRIVATE"]),
    st.integers(0, 45), st.lists(_ANSWER, max_size=3), st.integers(0, 6), st.sampled_from([53, 53, 53, 5353]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_DNS_RECORD, max_size=80))
def test_the_cores_bookkeeping_is_the_reference_implementations(records) -> None:
    from dnstunnel_reference import ReferenceTracker

    core, reference = DnsTunnelTracker(max_domains=4, max_names=6), ReferenceTracker(4, 6)
    for rec in records:
        found = core._core.account(rec)
        assert found == reference.account(rec), rec.meta
    assert (len(core), core.evicted) == (len(reference.domains), reference.evicted)
    for name, d in reference.domains.items():
        counts = core.counts(name)
        assert counts is not None
        assert (counts["unique"], counts["suspicious"], counts["queries"], counts["unusual_queries"],
                counts["longest_label"], counts["max_entropy"], counts["remembered_names"]) == (
            d.unique, d.suspicious, d.queries, d.unusual_queries, d.longest_label, d.max_entropy, len(d.names))


def test_a_record_from_the_core_is_read_from_its_map() -> None:
    rng = random.Random(4)
    meta = _core.Meta({"dns_query": f"{encoded(rng)}.t.example.com.", "dns_qtype": "NULL",
                       "dns_answers": ["NULL (400 bytes)", 7]})
    rec = dns("x.example.com.")
    rec.meta = meta
    signal = DnsTunnelTracker().account(rec)
    assert signal is not None and signal.qtype == "NULL" and signal.answer == "NULL answer of 400 bytes"
    assert type(rec.meta) is _core.Meta and meta.json() is not None  # still the core's map


def test_the_reason_names_the_unusual_types_among_the_three_most_asked() -> None:
    from dnstunnel_reference import ReferenceTracker

    core, reference = DnsTunnelTracker(), ReferenceTracker(8, 64)
    asked = [("A", 6), ("TXT", 5), ("NULL", 4), ("TYPE65300", 1), ("MX", 1), ("TXT", 1)]
    found = []
    for i, (qtype, packets) in enumerate(asked * 2):
        rec = dns(f"n{i}.tun.example.", qtype, packets=packets, i=i)
        found.append(core._core.account(rec))
        assert found[-1] == reference.account(rec)
    assert found[-1][4] == ["24 TXT/NULL queries over 12 unique names under tun.example"]


def test_a_record_made_by_hand_with_odd_numbers_is_still_counted() -> None:
    tr = DnsTunnelTracker()
    rec = dns("q.c.tun.example.", "NULL")
    rec.packets_c2s, rec.src_port, rec.ts_start = 40.0, None, None  # type: ignore[assignment]
    signal = tr.account(rec)
    assert signal is not None and "one client socket sent 40 queries" in signal.reasons[0]
    assert tr.counts("tun.example")["queries"] == 40


def test_a_domain_the_site_allows_is_not_counted() -> None:
    tr = DnsTunnelTracker()
    tr.allow(frozenset({"tun.example"}))
    assert tr.account(dns("q.c.tun.example.", "NULL", packets=40)) is None and tr.counts("tun.example") is None
    tr.allow(frozenset())
    assert tr.account(dns("q.c.tun.example.", "NULL", packets=40)) is not None
