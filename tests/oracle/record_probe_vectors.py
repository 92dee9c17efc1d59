"""Record the Python probes' answers as test vectors for the Rust probes (core/tests/vectors/).

The Python engine is the oracle while the core is being built: every probe call the analyzer
makes on the given captures is recorded (input, direction, status, metadata, done), plus
deterministic truncations and byte flips of each input, so the Rust probe can be held to the
same answers by `cargo test`. Usage:

    python tests/oracle/record_probe_vectors.py OUT_DIR CAPTURE_OR_BIN...

`.bin` files are raw payloads: they are shown to every probe in both directions.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from portwatch.detect import probes as probes_pkg
from portwatch.model import ProbeStatus

MAX_PER_PROBE = int(__import__("os").environ.get("MAX_PER_PROBE", "600"))
STATUS = {ProbeStatus.NO: "no", ProbeStatus.MATCH: "match", ProbeStatus.MORE: "more"}

seen: dict[str, dict[str, dict]] = {}
originals: dict[str, list] = {}


def _jsonable(value):
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _store(name: str, arg, from_client: bool, result) -> None:
    bucket = seen.setdefault(name, {})
    if len(bucket) >= MAX_PER_PROBE:
        return
    if isinstance(arg, list):
        key = "u" + ",".join(bytes(u).hex() for u in arg) + str(from_client)
        entry = {"units": [bytes(u).hex() for u in arg]}
    else:
        key = "s" + bytes(arg).hex() + str(from_client)
        entry = {"input": bytes(arg).hex()}
    if key in bucket:
        return
    entry.update(from_client=from_client, status=STATUS[result.status], meta=_jsonable(result.meta), done=result.done)
    bucket[key] = entry


def _wrap(name: str, fn):
    def recorder(arg, from_client):
        result = fn(arg, from_client)
        _store(name, arg, from_client, result)
        originals.setdefault(name, []).append((arg, from_client))
        return result

    for attr in ("units", "first_bytes"):
        if hasattr(fn, attr):
            setattr(recorder, attr, getattr(fn, attr))
    return recorder


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    out = []
    n = len(data)
    for cut in sorted({1, 2, 3, 4, 5, 8, 12, 16, 24, 32, 64, n // 2, n - 1}):
        if 0 < cut < n:
            out.append(data[:cut])
    for _ in range(4):
        if n:
            b = bytearray(data)
            i = rng.randrange(min(n, 64))
            b[i] ^= 1 << rng.randrange(8)
            out.append(bytes(b))
    return out


def main() -> None:
    out_dir = Path(sys.argv[1])
    inputs = [Path(p) for p in sys.argv[2:]]
    real_get = probes_pkg.get_probe
    names = sorted(probes_pkg.PROBES)
    fns = {name: real_get(name) for name in names}
    wrapped = {name: _wrap(name, fn) for name, fn in fns.items()}
    probes_pkg.get_probe = lambda name: wrapped[name]
    import portwatch.detect.engine as engine_mod

    engine_mod.get_probe = probes_pkg.get_probe
    from portwatch.capture.sources import CaptureSource
    from portwatch.pipeline import Analyzer, Config

    for path in inputs:
        if path.suffix == ".bin":
            data = path.read_bytes()
            for name, fn in wrapped.items():
                for fc in (True, False):
                    fn([data] if getattr(fn, "units", False) else data, fc)
            continue
        analyzer = Analyzer(Config(), pcap_name=path.name)
        try:
            with CaptureSource(str(path)) as src:
                analyzer.run(analyzer.records_of(src))
        except Exception as exc:  # a corrupt corpus file: keep what was read
            print(f"{path}: {exc}", file=sys.stderr)
        analyzer.close()
    rng = random.Random(20261203)
    for name, calls in list(originals.items()):
        fn = wrapped[name]
        for arg, fc in calls[:200]:
            if isinstance(arg, list):
                for m in _mutations(bytes(arg[0]), rng):
                    fn([m, *arg[1:]], fc)
                fn(arg[:1], fc)
            else:
                for m in _mutations(bytes(arg), rng):
                    fn(m, fc)
    for name in names:  # random bytes and the empty input for every probe
        fn = wrapped[name]
        for _ in range(20):
            blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
            fn([blob] if getattr(fn, "units", False) else blob, rng.random() < 0.5)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, bucket in sorted(seen.items()):
        with open(out_dir / f"{name}.jsonl", "w") as fh:
            for entry in bucket.values():
                fh.write(json.dumps(entry, sort_keys=False) + "\n")
    print({name: len(b) for name, b in sorted(seen.items())})


if __name__ == "__main__":
    main()
