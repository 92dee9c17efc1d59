"""What rides inside an SSH or TLS tunnel, from its packet shape alone (no decryption).

The core exports `meta.shape` for ssh, tls and unknown TCP flows (see core/src/flow/shape.rs):
the signed sizes (+ client to server) and gaps of the first payload packets after the
handshake, and per-direction summaries of the whole flow. `features()` turns it into a few
readable numbers; `classify()` lets a few bagged small decision trees per carrier vote (trained by
`benchmarks/tunnel_eval.py` with numpy only, stored as data in
`portwatch/data/tunnel-model.json`) and explains the verdict in words, with the rule path.

`meta.tunnel_contents = {"kind", "confidence", "evidence", "class"}`: kind is one of KINDS;
`class` the recording class it resembles (e.g. tls-pop3, whose kind is forwarded-mail).
"""
from __future__ import annotations

import itertools
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
    # What the protocol inside does (the tree prefers these when two splits tie) ...
    "opens", "server_first", "server_opens", "keystrokes", "req_answer", "echo", "one_way", "up_full",
    "full_down", "down_per_turn", "exchanges",
    # ... then proportions and timing.
    "sessions", "turns", "symmetry", "up_share", "up_small", "down_small", "iat_median",
)

#: A forwarded connection opening in SSH: the client's CHANNEL_OPEN direct-tcpip (92-116 bytes
#: with the host names of a local forward) answered by a CHANNEL_OPEN_CONFIRMATION (17 bytes of
#: payload: 44 bytes with chacha20-poly1305, 52 with AES-GCM, 68 with a CTR cipher and an ETM MAC).
#: A CHANNEL_SUCCESS (5 bytes of payload, 36 on the wire with the AEAD ciphers: the answer to an
#: x11-req or pty-req) is too small to be a confirmation. (Openings made at once for parallel
#: connections can arrive glued into one packet each way; they are not counted: a pty-req glued
#: to a shell request and its answers look the same.)
OPEN_UP = (88, 240)
OPEN_CONFIRM = (40, 72)
#: A channel the server opens (X11 forwarding, a remote -R forward): CHANNEL_OPEN "x11" with the
#: originator address (37 bytes of payload: 64-100 on the wire), confirmed by the client.
SERVER_OPEN = (56, 120)
#: A keystroke: the client sends one small packet after a human pause and the server echoes
#: a packet of about the same size (one character back, same framing) within ECHO_MS.
KEY_GAP_MS = 30.0
ECHO_MS = 30.0
ECHO_SLACK = 16
PAUSE_MS = 300.0
OPEN_GAP_MS = 30.0
ANSWER = 200     # bytes down that answer a request (a page, a file), not an acknowledgement
MSS_FULL = 1400  # a full Ethernet-MSS segment (1448 bytes of payload with timestamps)


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


def server_opens(sizes: list[int], iats: list[float]) -> int:
    """Channels the server opens after a lull, each confirmed at once by the client: X11
    forwarding (every X client the remote side starts) or a remote (-R) forward."""
    n = 0
    for i in range(len(sizes) - 1):
        a, b = -sizes[i], sizes[i + 1]
        if (SERVER_OPEN[0] <= a <= SERVER_OPEN[1] and OPEN_CONFIRM[0] <= b <= OPEN_CONFIRM[1]
                and (i == 0 or iats[i] >= OPEN_GAP_MS) and iats[i + 1] < OPEN_GAP_MS):
            n += 1
    return n


def keystrokes(sizes: list[int], iats: list[float]) -> int:
    """Keystroke-echo pairs: a small client packet after a human pause, echoed at once by a
    server packet of about its size (a terminal echoes each character as typed)."""
    n = 0
    for i in range(len(sizes) - 1):
        a, b = sizes[i], -sizes[i + 1]
        if (0 < a <= SMALL and abs(a - b) <= ECHO_SLACK and iats[i] >= KEY_GAP_MS
                and iats[i + 1] < ECHO_MS):
            n += 1
    return n


def sessions(sizes: list[int], iats: list[float]) -> int:
    """Stretches of traffic separated by pauses of PAUSE_MS or more."""
    return 1 + sum(1 for g in iats[1:] if g >= PAUSE_MS) if sizes else 0


def features(shape: dict[str, Any], protocol: str = "tls") -> dict[str, float] | None:
    """Readable numbers from `meta.shape`; None when the sequence is too short."""
    sizes, iats = sequence(shape, protocol)
    if len(sizes) < MIN_PACKETS.get(protocol, MIN_PACKETS["tls"]):
        return None
    c2s, s2c = shape.get("c2s") or {}, shape.get("s2c") or {}
    up = [s for s in sizes if s > 0]
    down = [-s for s in sizes if s < 0]
    n_up, n_down, n = len(up), len(down), len(sizes)
    echoes = sum(1 for a, b in itertools.pairwise(sizes) if 0 < a <= SMALL and -200 <= b < 0)
    small_up = sum(1 for s in up if s <= SMALL)
    gaps = iats[1:] or iats
    t = turns(sizes)
    op = opens(sizes, iats)
    bu, bd = sum(up), sum(down)
    requests = [d for c, d in t if SMALL < c < FULL]
    # counts over plain comprehensions: this runs for every ssh/tls record of a capture
    return {
        "up_share": n_up / n,
        "up_small": small_up / n_up if n_up else 0.0,
        "down_small": sum(1 for s in down if s <= SMALL) / n_down if n_down else 0.0,
        "full_down": sum(1 for s in down if s >= MSS_FULL) / n_down if n_down else 0.0,
        "one_way": abs(sum(1 for s in sizes if s >= FULL) / n - sum(1 for s in sizes if s <= -FULL) / n),
        "bytes_ratio": math.log10((c2s.get("bytes", 0) + 1) / (s2c.get("bytes", 0) + 1)),
        "symmetry": min(bu, bd) / max(bu, bd, 1),
        "iat_median": math.log10(_median(gaps) + 0.1),
        "pauses": math.log10(1 + sum(1 for g in gaps if g >= PAUSE_MS)),
        "echo": echoes / small_up if small_up else 0.0,
        "req_answer": sum(1 for d in requests if d >= ANSWER) / len(requests) if requests else 0.0,
        "turns": len(t) / n,
        "down_per_turn": math.log10(1 + _median([d for _, d in t])) if t else 0.0,
        "exchanges": math.log10(1 + sum(1 for _, d in t if 0 < d < ANSWER)),
        "opens": math.log10(1 + len(op)),
        "server_opens": math.log10(1 + server_opens(sizes, iats)),
        "keystrokes": keystrokes(sizes, iats) / n_up if up else 0.0,
        "server_first": sum(op) / len(op) if op else 0.0,
        "sessions": math.log10(sessions(sizes, iats)),
        "up_full": sum(1 for s in up if s >= FULL) / n_up if n_up else 0.0,
    }


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


def _leaf(tree: dict[str, Any], feats: dict[str, float]) -> dict[str, Any]:
    """`walk` without the path, for the trees whose path is not quoted."""
    while "feature" in tree:
        tree = tree["le"] if feats[tree["feature"]] <= tree["threshold"] else tree["gt"]
    return tree


def predict(feats: dict[str, float], carrier: str, model: dict[str, Any]) -> tuple[str, float, float, list]:
    """(class, confidence, scaled distance to the class centroid, decision path).

    Every tree of the carrier votes with its leaf's class shares; the class with the most votes
    wins, its mean share (smoothed so a leaf of 2 training flows is not "certain") is the
    confidence. The path is that of the first tree (grown on every run) when it agrees."""
    trees = model["trees"].get(carrier)
    if not trees:
        return "unknown", 0.0, math.inf, []
    if isinstance(trees, dict):
        trees = [trees]
    votes: dict[str, float] = {}
    first_leaf, first_path = walk(trees[0], feats)
    for i, tree in enumerate(trees):
        leaf = first_leaf if i == 0 else _leaf(tree, feats)
        counts = leaf["counts"]
        n = sum(counts.values())
        for c, k in counts.items():
            votes[c] = votes.get(c, 0.0) + (k + 1) / (n + 2)
    cls = max(votes, key=lambda c: (votes[c], c))
    prob = votes[cls] / len(trees)
    path = first_path if first_leaf["class"] == cls else []
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
              path: list | None = None) -> str:
    sizes, iats = sequence(shape, protocol)
    up = [s for s in sizes if s > 0]
    c2s, s2c = shape.get("c2s") or {}, shape.get("s2c") or {}
    kb_up, kb_down = c2s.get("bytes", 0) / 1000, s2c.get("bytes", 0) / 1000
    op = opens(sizes, iats)
    if kind == "interactive":
        small = [s for s in up if s <= SMALL]
        gaps = [g for s, g in zip(sizes, iats, strict=False) if 0 < s <= SMALL]
        rng = f"{min(small)}-{max(small)}" if small else "?"
        text = (f"{len(small)} client packets of {rng} bytes at typing intervals (median "
                f"{_median(gaps):.0f} ms), {keystrokes(sizes, iats)} of them keystrokes echoed at once by a "
                "server packet of the same size")
    elif kind in ("forwarded-http", "socks"):
        reqs = [c for c, d in turns(sizes) if SMALL < c < FULL and d >= ANSWER]
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
        so = server_opens(sizes, iats)
        text = ((f"the server opened {so} channel(s) to the client (X11 connections); " if so else "")
                + f"steady two-way chatter of small packets ({f['down_small']:.0%} of server packets <= "
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
    f = features(shape, protocol)
    if f is None:
        n = len(sequence(shape, protocol)[0])
        where = "the user authentication" if protocol == "ssh" else "the handshake"
        return {"kind": "unknown", "confidence": 0.0,
                "evidence": f"only {n} packets after {where}: too few to tell what rides inside"}
    cls, prob, dist, path = predict(f, _carrier(protocol), model)
    kind = model["classes"].get(cls, {}).get("kind", "unknown")
    if dist > model.get("max_distance", 3.0):
        return {"kind": "unknown", "confidence": 0.0, "class": cls,
                "evidence": f"no known shape fits (nearest: {kind}, {dist:.1f} spreads away)"}
    return {"kind": kind, "confidence": round(prob, 3), "class": cls,
            "evidence": _evidence(kind, shape, f, protocol, path)}


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
