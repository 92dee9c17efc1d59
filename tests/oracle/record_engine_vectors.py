"""Record the Python engine's answers as test vectors for the Rust engine (core/src/detect/engine.rs).

Two files in OUT_DIR:
- classify.jsonl: every `Engine.classify` call the analyzer makes on the given captures (inputs,
  hex-encoded units, and the Decision or null), and every `upgrade_meta` call;
- regex.jsonl: for every input of the given probe-vector files (core/tests/vectors/*.jsonl), which
  signature regexes Python's `re` finds within their depth (the Rust translation must agree).

    python tests/oracle/record_engine_vectors.py OUT_DIR [--vectors VEC.jsonl...] [CAPTURE...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import portwatch.detect.engine as engine_mod
import portwatch.pipeline as pipeline_mod
from portwatch.detect.signature import load_signatures

MAX_CALLS = 4000
seen: dict[str, dict] = {}


def _jsonable(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _units(units) -> list[str]:
    return [bytes(u).hex() for u in units]


def record_classify(out: Path, captures: list[Path]) -> None:
    real = engine_mod.Engine.classify
    real_upgrade = pipeline_mod.upgrade_meta

    def classify(self, transport, client, server, server_port, *, may_swap=False, final=False, client_port=None):
        d = real(self, transport, client, server, server_port, may_swap=may_swap, final=final, client_port=client_port)
        entry = {"call": "classify", "transport": transport, "client": _units(client), "server": _units(server),
                 "server_port": server_port, "may_swap": may_swap, "final": final, "client_port": client_port}
        key = json.dumps(entry)
        if key not in seen and len(seen) < MAX_CALLS:
            entry["decision"] = None if d is None else {
                "protocol": d.protocol, "confidence": d.confidence, "evidence": d.evidence,
                "meta": _jsonable(d.meta), "swapped": d.swapped, "done": d.done}
            seen[key] = entry
        return d

    def upgrade_meta(protocol, client, server, classify=None):
        m = real_upgrade(protocol, client, server, classify)
        entry = {"call": "upgrade_meta", "protocol": protocol, "client": _units(client[:1]),
                 "server": _units(server[:1])}
        key = json.dumps(entry)
        if key not in seen and len(seen) < MAX_CALLS:
            entry["meta"] = _jsonable(m)
            seen[key] = entry
        return m

    engine_mod.Engine.classify = classify
    pipeline_mod.upgrade_meta = upgrade_meta
    from portwatch.capture.sources import CaptureSource
    from portwatch.pipeline import Analyzer, Config

    for path in captures:
        analyzer = Analyzer(Config(), pcap_name=path.name)
        try:
            with CaptureSource(str(path)) as src:
                analyzer.run(analyzer.records_of(src))
        except Exception as exc:  # a corrupt corpus file: keep what was read
            print(f"{path}: {exc}", file=sys.stderr)
        analyzer.close()
    with open(out / "classify.jsonl", "w") as fh:
        for entry in seen.values():
            fh.write(json.dumps(entry) + "\n")


def record_regex(out: Path, vector_files: list[Path]) -> None:
    pats = [(s.protocol, i, m.regex, m.depth) for s in load_signatures() for i, m in enumerate(s.matches)
            if m.regex is not None]
    inputs: dict[bytes, None] = {}
    for f in vector_files:
        for line in f.read_text().splitlines():
            v = json.loads(line)
            for h in v.get("units") or [v.get("input", "")]:
                inputs[bytes.fromhex(h)] = None
    with open(out / "regex.jsonl", "w") as fh:
        fh.write(json.dumps({"patterns": [[p, i, d] for p, i, _, d in pats]}) + "\n")
        for data in inputs:
            hits = [k for k, (_, _, rx, d) in enumerate(pats) if rx.search(data, 0, d) is not None]
            fh.write(json.dumps({"input": data.hex(), "hits": hits}) + "\n")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    args = sys.argv[2:]
    vectors = [Path(a) for a in args if a.endswith(".jsonl")]
    captures = [Path(a) for a in args if not a.endswith(".jsonl") and a != "--vectors"]
    if vectors:
        record_regex(out, vectors)
    if captures:
        record_classify(out, captures)


if __name__ == "__main__":
    main()
