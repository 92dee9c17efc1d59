"""The tunnel-contents classifier runs in the core (core/src/tunnel/, issue 15): its verdicts are
those the former Python classifier gave, byte for byte. data/verdicts.jsonl was written from the
records of portwatch/tunnels.py as it was before the move (every ssh/tls record of captures/ and
captures/tunnels/), so a change of features, vote, wording or number format shows here."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from portwatch import _core, tunnels
from portwatch.pipeline import Config, Setup, analyze_path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).resolve().parent / "data" / "verdicts.jsonl"


def expected() -> dict[str, list[dict]]:
    by_pcap: dict[str, list[dict]] = defaultdict(list)
    for line in EXPECTED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        by_pcap[row["pcap"]].append(row)
    return by_pcap


EXPECTED_ROWS = expected()


def records(pcap: str) -> list:
    config = Config()
    out: list = []
    analyze_path(str(ROOT / pcap), Setup.load(config), config, out.append)
    return out


def test_expectations_cover_the_tunnel_captures() -> None:
    tunnels_dir = {f"captures/tunnels/{p.name}" for p in (ROOT / "captures" / "tunnels").glob("*.pcap")}
    assert tunnels_dir <= set(EXPECTED_ROWS)
    assert "captures/ssh-443.pcap" in EXPECTED_ROWS
    kinds = {r["tunnel_contents"]["kind"] for rows in EXPECTED_ROWS.values() for r in rows}
    assert {"interactive", "forwarded-http", "forwarded-mail", "x11", "bulk", "unknown"} <= kinds


@pytest.mark.parametrize("pcap", sorted(EXPECTED_ROWS))
def test_core_verdicts_are_the_python_ones(pcap: str) -> None:
    recs = records(pcap)
    got = {r.flow_id: r for r in recs if "tunnel_contents" in r.meta}
    want = EXPECTED_ROWS[pcap]
    assert sorted(got) == sorted(w["flow_id"] for w in want)
    for w in want:
        rec = got[w["flow_id"]]
        assert (rec.src_port, rec.dst_port, rec.protocol) == (w["src_port"], w["dst_port"], w["protocol"])
        tc = rec.meta["tunnel_contents"]
        # Serialized, so 0.0 vs 0 and key order count, as in every output.
        assert orjson.dumps(tc) == orjson.dumps(w["tunnel_contents"]), (pcap, w["flow_id"])
        assert list(rec.meta)[-1] == "tunnel_contents"  # added last, after end_reason, as before
        # The Python API is the same implementation.
        assert tunnels.classify(rec.protocol, {"shape": rec.meta["shape"]}) == tc


def test_python_sees_the_model_the_core_embeds() -> None:
    on_disk = json.loads((ROOT / "portwatch" / "data" / "tunnel-model.json").read_text(encoding="utf-8"))
    assert tunnels.load_model() == on_disk, "the core embeds an older model: rebuild it (cargo/maturin)"
    assert json.loads(_core.tunnel_model_json()) == on_disk


def test_a_held_out_model_is_used_when_given() -> None:
    rec = next(r for r in records("captures/tunnels/interactive-r1.pcap") if "shape" in r.meta)
    model = json.loads(json.dumps(tunnels.load_model()))
    assert tunnels.classify(rec.protocol, {"shape": rec.meta["shape"]}, model) == rec.meta["tunnel_contents"]
    # A model of other features names nothing (one being retrained) ...
    assert tunnels.classify(rec.protocol, {"shape": rec.meta["shape"]}, {**model, "features": ["x"]}) is None
    # ... and a broken one is refused, not half-used.
    broken = {**model, "classes": {}}
    with pytest.raises(ValueError):
        tunnels.classify(rec.protocol, {"shape": rec.meta["shape"]}, broken)


def test_malformed_shapes_give_no_verdict() -> None:
    for shape in ({"sizes": [1, 2], "iat_ms": [0.0]}, {"sizes": "abc"}, {"sizes": [None], "iat_ms": [0.0]}):
        assert tunnels.classify("ssh", {"shape": shape}) is None
    assert tunnels.classify("ssh", {"shape": [1, 2]}) is None
    assert tunnels.classify("ssh", {}) is None
    assert tunnels.classify("tls", {"shape": {}})["evidence"].startswith("only 0 packets after the handshake")
