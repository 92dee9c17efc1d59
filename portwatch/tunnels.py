"""What rides inside an SSH or TLS tunnel, from its packet shape alone (no decryption).

The core exports `meta.shape` for ssh, tls and unknown TCP flows (see core/src/flow/shape.rs):
the signed sizes (+ client to server) and gaps of the first payload packets after the
handshake, and per-direction summaries of the whole flow. `features()` turns it into a few
readable numbers; `classify()` walks a small decision tree per carrier (trained by
`benchmarks/tunnel_eval.py` with numpy only, stored as data in
`portwatch/data/tunnel-model.json`) and explains the verdict in words, with the rule path.

`meta.tunnel_contents = {"kind", "confidence", "evidence", "class"}`: kind is one of KINDS;
`class` the recording class it resembles (e.g. tls-pop3, whose kind is forwarded-mail).
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

KINDS = ("interactive", "forwarded-http", "forwarded-mail", "x11", "bulk", "socks", "vpn", "unknown")
CARRIERS = ("ssh", "tls", "unknown")

#: Fewer sequence packets than this: too little to say anything.
MIN_PACKETS = {"ssh": 12, "tls": 4}
SMALL = 120      # a keystroke, its echo, an ACK-like channel message (36-100 bytes with the MAC)
FULL = 1000      # a full or nearly full segment

#: SSH's user authentication (service request to success, channel open) follows the key
#: exchange and looks the same whatever the tunnel carries: the features skip it.
SSH_AUTH_PACKETS = 10

FEATURES = (
    # What the protocol inside does first (the tree prefers these when two splits tie) ...
    "server_first", "req_answer", "echo", "one_way", "up_full", "full_down", "down_per_turn",
    # ... then proportions and timing.
    "exchanges", "opens", "sessions", "turns", "symmetry", "up_share", "up_small", "down_small", "iat_median",
)

#: A forwarded connection opening in SSH: the client's CHANNEL_OPEN direct-tcpip (92-116 bytes
#: with the host names of a local forward) answered by a small OPEN_CONFIRMATION.
OPEN_UP = (88, 240)
OPEN_CONFIRM = (28, 72)
PAUSE_MS = 300.0
OPEN_GAP_MS = 30.0
ANSWER = 200     # bytes down that answer a request (a page, a file), not an acknowledgement
MSS_FULL = 1400  # a full Ethernet-MSS segment (1448 bytes of payload with timestamps)


def _frac(xs: list[float], pred: Any) -> float:
    return sum(1 for x in xs if pred(x)) / len(xs) if xs else 0.0


def _median(xs: list[float]) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def sequence(shape: dict[str, Any], protocol: str = "tls") -> tuple[list[int], list[float]]:
    """The sizes and gaps the features read: for SSH, without the user authentication."""
    sizes = [int(s) for s in shape.get("sizes") or []]
    iats = [float(g) for g in shape.get("iat_ms") or []]
    if protocol == "ssh" and len(sizes) >= SSH_AUTH_PACKETS:
        sizes, iats = sizes[SSH_AUTH_PACKETS:], iats[SSH_AUTH_PACKETS:]
    return sizes, iats


def turns(sizes: list[int]) -> list[tuple[int, int]]:
    """Client turns: (bytes the client sent in a run of client packets, bytes the server sent
    back before the client's next run)."""
    out: list[tuple[int, int]] = []
    for s in sizes:
        if s > 0:
            if out and out[-1][1] == 0:
                out[-1] = (out[-1][0] + s, 0)
            else:
                out.append((s, 0))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] - s)
    return out


def opens(sizes: list[int], iats: list[float]) -> list[int]:
    """Forwarded-connection openings: a channel-open-sized client packet that starts the
    sequence's client traffic or comes after a lull (OPEN_GAP_MS; a new connection follows a
    user action) or right after another opening, answered by a small confirmation. For each,
    +1 when the client speaks first on the new connection (HTTP: the request), -1 when the
    server does (SMTP, POP3, IMAP: a greeting), 0 when the sequence ends there."""
    out: list[int] = []
    first_up = next((i for i, s in enumerate(sizes) if s > 0), -1)
    last = -10
    for i in range(len(sizes) - 1):
        a, b = sizes[i], -sizes[i + 1]
        if not (OPEN_UP[0] <= a <= OPEN_UP[1] and OPEN_CONFIRM[0] <= b <= OPEN_CONFIRM[1]):
            continue
        if i == first_up or iats[i] >= OPEN_GAP_MS or i == last + 2:
            nxt = sizes[i + 2] if i + 2 < len(sizes) else 0
            if i == last + 2 and out:
                out.pop()  # parallel openings: the earlier one's "next" was this one
                nxt_prev = next((x for x in sizes[i + 2:i + 3]), 0)
                out.append(1 if nxt_prev > 0 else -1 if nxt_prev < 0 else 0)
            out.append(1 if nxt > 0 else -1 if nxt < 0 else 0)
            last = i
    return out


def sessions(sizes: list[int], iats: list[float]) -> int:
    """Stretches of traffic separated by pauses of PAUSE_MS or more."""
    return 1 + sum(1 for g in iats[1:] if g >= PAUSE_MS) if sizes else 0


def features(shape: dict[str, Any], protocol: str = "tls") -> dict[str, float] | None:
    """Readable numbers from `meta.shape`; None when the sequence is too short."""
    return _features(shape, protocol)[0]


def _features(shape: dict[str, Any], protocol: str) -> tuple[dict[str, float] | None, list[int], list[float],
                                                              list[tuple[int, int]], list[int]]:
    """`features()` and what it was computed from (sizes, gaps, turns, openings), which the
    evidence text reads again. One pass over the sequence for the counts (every flow record of
    an ssh or tls flow comes through here: it is on the CLI's per-record path)."""
    sizes, iats = sequence(shape, protocol)
    if len(sizes) < MIN_PACKETS.get(protocol, MIN_PACKETS["tls"]):
        return None, sizes, iats, [], []
    c2s, s2c = shape.get("c2s") or {}, shape.get("s2c") or {}
    n_up = n_down = small_up = small_down = full_down = up_full = big_up = big_down = echoes = 0
    bu = bd = 0
    t: list[tuple[int, int]] = []
    prev = 0
    for s in sizes:
        if s > 0:
            n_up += 1
            bu += s
            if s <= SMALL:
                small_up += 1
            if s >= FULL:
                up_full += 1
                big_up += 1
            # turns(): a run of client packets, then what the server sent back
            if t and t[-1][1] == 0:
                t[-1] = (t[-1][0] + s, 0)
            else:
                t.append((s, 0))
        elif s < 0:
            d = -s
            n_down += 1
            bd += d
            if d <= SMALL:
                small_down += 1
            if d >= MSS_FULL:
                full_down += 1
            if s <= -FULL:
                big_down += 1
            if 0 < prev <= SMALL and s >= -200:
                echoes += 1
            if t:
                t[-1] = (t[-1][0], t[-1][1] - s)
        elif t:
            t[-1] = (t[-1][0], t[-1][1] - s)
        prev = s
    n = len(sizes)
    gaps = iats[1:] or iats
    pauses = 0
    for g in gaps:
        if g >= PAUSE_MS:
            pauses += 1
    op = opens(sizes, iats)
    reqs = answers = exchanges = 0
    for c, d in t:
        if SMALL < c < FULL:
            reqs += 1
            if d >= ANSWER:
                answers += 1
        if 0 < d < ANSWER:
            exchanges += 1
    feats = {
        "up_share": n_up / n,
        "up_small": small_up / n_up if n_up else 0.0,
        "down_small": small_down / n_down if n_down else 0.0,
        "full_down": full_down / n_down if n_down else 0.0,
        "one_way": abs(big_up / n - big_down / n),
        "bytes_ratio": math.log10((c2s.get("bytes", 0) + 1) / (s2c.get("bytes", 0) + 1)),
        "symmetry": min(bu, bd) / max(bu, bd, 1),
        "iat_median": math.log10(_median(gaps) + 0.1),
        "pauses": math.log10(1 + pauses),
        "echo": echoes / small_up if small_up else 0.0,
        "req_answer": answers / reqs if reqs else 0.0,
        "turns": len(t) / n,
        "down_per_turn": math.log10(1 + _median([d for _, d in t])) if t else 0.0,
        "exchanges": math.log10(1 + exchanges),
        "opens": math.log10(1 + len(op)),
        "server_first": sum(op) / len(op) if op else 0.0,
        "sessions": math.log10(sessions(sizes, iats)),
        "up_full": up_full / n_up if n_up else 0.0,
    }
    return feats, sizes, iats, t, op


@lru_cache(maxsize=1)
def load_model() -> dict[str, Any]:
    return json.loads((resources.files("portwatch") / "data" / "tunnel-model.json").read_text(encoding="utf-8"))


def _carrier(protocol: str) -> str:
    return protocol if protocol in CARRIERS else "unknown"


def walk(tree: dict[str, Any], feats: dict[str, float]) -> tuple[dict[str, Any], list[tuple[str, float, bool]]]:
    """The leaf a flow's features reach, and the path: (feature, threshold, went <=)."""
    path = []
    while "feature" in tree:
        le = feats[tree["feature"]] <= tree["threshold"]
        path.append((tree["feature"], tree["threshold"], le))
        tree = tree["le" if le else "gt"]
    return tree, path


def predict(feats: dict[str, float], carrier: str, model: dict[str, Any]) -> tuple[str, float, float, list]:
    """(class, confidence, scaled distance to the class centroid, decision path)."""
    tree = model["trees"].get(carrier)
    if tree is None:
        return "unknown", 0.0, math.inf, []
    leaf, path = walk(tree, feats)
    cls, counts = leaf["class"], leaf["counts"]
    # Leaf purity, smoothed so a leaf of 2 training flows is not "certain".
    prob = (counts.get(cls, 0) + 1) / (sum(counts.values()) + 2)
    mean, std, names = model["mean"], model["std"], model["features"]
    x = [(feats[n] - m) / s for n, m, s in zip(names, mean, std, strict=False)]
    c = model["classes"][cls]["centroid"]
    dist = math.sqrt(sum((a - b) ** 2 for a, b in zip(x, c, strict=False)) / len(x))
    return cls, prob, dist, path


WORDS = {
    "server_first": "who speaks first on forwarded connections (+1 client, -1 server)",
    "req_answer": "share of request-sized client packets answered by a response down",
    "exchanges": "command-reply exchanges (log10 1+n)", "echo": "small client packets echoed",
    "one_way": "one-way-ness of full segments", "iat_median": "median gap (log10 ms)",
}


def _evidence(kind: str, shape: dict[str, Any], f: dict[str, float], protocol: str = "ssh",
              path: list | None = None,
              seen: tuple[list[int], list[float], list[tuple[int, int]], list[int]] | None = None) -> str:
    """The verdict in words. `seen`: (sizes, gaps, turns, openings) as `_features` found them."""
    if seen is None:
        sizes, iats = sequence(shape, protocol)
        t, op = turns(sizes), opens(sizes, iats)
    else:
        sizes, iats, t, op = seen
    up = [s for s in sizes if s > 0]
    c2s, s2c = shape.get("c2s") or {}, shape.get("s2c") or {}
    kb_up, kb_down = c2s.get("bytes", 0) / 1000, s2c.get("bytes", 0) / 1000
    if kind == "interactive":
        small = [s for s in up if s <= SMALL]
        gaps = [g for s, g in zip(sizes, iats, strict=False) if 0 < s <= SMALL]
        rng = f"{min(small)}-{max(small)}" if small else "?"
        text = (f"{len(small)} client packets of {rng} bytes at typing intervals (median "
                f"{_median(gaps):.0f} ms), {f['echo']:.0%} echoed by a small server packet")
    elif kind in ("forwarded-http", "socks"):
        reqs = [c for c, d in t if SMALL < c < FULL and d >= ANSWER]
        conns = (f"{len(op)} forwarded connection(s) opened, the client speaking first on "
                 f"{sum(1 for o in op if o > 0)}; " if op else "")
        text = (f"{conns}{len(reqs)} request-sized client packets each answered by a response down "
                f"({f['full_down']:.0%} of server packets full 1448-byte segments): {kb_up:.1f} KB up, "
                f"{kb_down:.1f} KB down; web traffic"
                + (" (an ssh -L forward and an ssh -D SOCKS proxy look the same)" if protocol == "ssh" else ""))
    elif kind == "forwarded-mail":
        first = (f"the server speaks first (a greeting) on {sum(1 for o in op if o < 0)} of {len(op)} "
                 "forwarded connections; " if op else "the server speaks first; ")
        text = (f"{first}a command-reply dialogue of {round(10 ** f['exchanges'] - 1)} small exchanges "
                f"({kb_up:.1f} KB up, {kb_down:.1f} KB down)")
    elif kind == "x11":
        text = (f"steady two-way chatter of small packets ({f['down_small']:.0%} of server packets <= "
                f"{SMALL} bytes, median gap {10 ** f['iat_median']:.0f} ms, no typing pauses) with bursts of "
                f"full segments up ({f['up_full']:.0%} of client packets): a remote X display")
    elif kind == "bulk":
        one = "up" if kb_up > kb_down else "down"
        text = (f"{max(kb_up, kb_down):.0f} KB {one} in back-to-back full segments, no request/response "
                f"rhythm ({round(10 ** f['exchanges'] - 1)} small exchanges): a file copy")
    else:
        text = f"{len(sizes)} packets, {kb_up:.1f} KB up, {kb_down:.1f} KB down"
    if path:
        rule = " and ".join(f"{n} {'<=' if le else '>'} {t:g}" for n, t, le in path)
        text += f" [rule: {rule}]"
    return text


def classify(protocol: str, meta: dict[str, Any], model: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """`meta.tunnel_contents` for a flow's meta, or None when it has no (long enough) shape."""
    shape = meta.get("shape")
    if not isinstance(shape, dict):
        return None
    model = model or load_model()
    if list(model.get("features") or []) != list(FEATURES):
        return None  # a model for other features (being retrained)
    f, sizes, iats, t, op = _features(shape, protocol)
    if f is None:
        n = len(sizes)
        where = "the user authentication" if protocol == "ssh" else "the handshake"
        return {"kind": "unknown", "confidence": 0.0,
                "evidence": f"only {n} packets after {where}: too few to tell what rides inside"}
    cls, prob, dist, path = predict(f, _carrier(protocol), model)
    kind = model["classes"].get(cls, {}).get("kind", "unknown")
    if dist > model.get("max_distance", 3.0):
        return {"kind": "unknown", "confidence": 0.0, "class": cls,
                "evidence": f"no known shape fits (nearest: {kind}, {dist:.1f} spreads away)"}
    return {"kind": kind, "confidence": round(prob, 3), "class": cls,
            "evidence": _evidence(kind, shape, f, protocol, path, (sizes, iats, t, op))}


def annotate(protocol: str, transport: str, meta: dict[str, Any]) -> None:
    """Set `meta["tunnel_contents"]` in place for ssh/tls TCP flows with a shape."""
    if transport != "tcp" or protocol not in ("ssh", "tls") or "tunnel_contents" in meta:
        return
    verdict = classify(protocol, meta)
    if verdict is not None:
        meta["tunnel_contents"] = verdict


def is_confident(verdict: dict[str, Any] | None, threshold: float | None = None) -> bool:
    if not verdict or verdict.get("kind") in (None, "unknown"):
        return False
    if threshold is None:
        threshold = load_model().get("confident", 0.6)
    return float(verdict.get("confidence", 0.0)) >= threshold
