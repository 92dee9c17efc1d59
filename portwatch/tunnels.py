"""What rides inside an SSH or TLS tunnel, from its packet shape alone (no decryption).

The core exports `meta.shape` for ssh, tls and unknown TCP flows (see core/src/flow/shape.rs):
the signed sizes (+ client to server) and gaps of the first payload packets after the
handshake, and per-direction summaries of the whole flow. `features()` turns it into a few
readable numbers; `classify()` lets a few bagged small decision trees per carrier vote (trained by
`benchmarks/tunnel_eval.py` with numpy only, stored as data in
`portwatch/data/tunnel-model.json`) and explains the verdict in words, with the rule path.

The classifier lives in the core (core/src/tunnel/), which sets `meta.tunnel_contents` on every
ssh/tls TCP record itself; these functions are a thin layer over it (one implementation) for
tests, notebooks and the trainer.

`meta.tunnel_contents = {"kind", "confidence", "evidence", "class"}`: kind is one of KINDS;
`class` the recording class it resembles (e.g. tls-pop3, whose kind is forwarded-mail).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from . import _core

KINDS = ("interactive", "forwarded-http", "forwarded-mail", "x11", "bulk", "socks", "vpn", "unknown")
CARRIERS = ("ssh", "tls", "unknown")

_CONST = _core.tunnel_constants()
#: The features the model reads, in the order of its mean/std/centroids (core/src/tunnel/features.rs).
FEATURES: tuple[str, ...] = tuple(_CONST["features"])
#: Fewer sequence packets than this: too little to say anything.
MIN_PACKETS: dict[str, int] = dict(_CONST["min_packets"])
#: SSH's user authentication follows the key exchange and looks the same whatever the tunnel
#: carries: the features skip its packets.
SSH_AUTH_PACKETS: int = _CONST["ssh_auth_packets"]
SMALL: int = _CONST["small"]
FULL: int = _CONST["full"]
#: The confidence from which a verdict is taken as said (the shipped model's `confident`).
CONFIDENT: float = _CONST["confident"]


def sequence(shape: dict[str, Any], protocol: str = "tls") -> tuple[list[int], list[float]]:
    """The sizes and gaps the features read: for SSH, without the user authentication."""
    return _core.tunnel_sequence(shape, protocol)


def turns(sizes: list[int]) -> list[tuple[int, int]]:
    """Client turns: (bytes the client sent in a run of client packets, bytes the server sent
    back before the client's next run)."""
    return _core.tunnel_turns(sizes)


def opens(sizes: list[int], iats: list[float]) -> list[int]:
    """Forwarded-connection openings (a channel open answered by a confirmation), each +1 when
    the client speaks first on the new connection, -1 when the server does, 0 at the end."""
    return _core.tunnel_opens(sizes, iats)


def server_opens(sizes: list[int], iats: list[float]) -> int:
    """Channels the server opens after a lull, each confirmed at once by the client (X11, -R)."""
    return _core.tunnel_server_opens(sizes, iats)


def keystrokes(sizes: list[int], iats: list[float]) -> int:
    """Keystroke-echo pairs: a small client packet after a human pause, echoed at once."""
    return _core.tunnel_keystrokes(sizes, iats)


def sessions(sizes: list[int], iats: list[float]) -> int:
    """Stretches of traffic separated by pauses of 300 ms or more."""
    return _core.tunnel_sessions(sizes, iats)


def features(shape: dict[str, Any], protocol: str = "tls") -> dict[str, float] | None:
    """Readable numbers from `meta.shape`; None when the sequence is too short."""
    return _core.tunnel_features(shape, protocol)


@lru_cache(maxsize=1)
def load_model() -> dict[str, Any]:
    """The model the core classifies with (portwatch/data/tunnel-model.json, embedded at build)."""
    import json  # here: only notebooks and tunnel_eval read the model itself

    return json.loads(_core.tunnel_model_json())


def walk(tree: dict[str, Any], feats: dict[str, float]) -> tuple[dict[str, Any], list[tuple[str, float, bool]]]:
    """The leaf a flow's features reach in one tree, and the path: (feature, threshold, went <=)."""
    return _core.tunnel_walk(tree, feats)


def classify(protocol: str, meta: dict[str, Any], model: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """`meta.tunnel_contents` for a flow's meta, or None when it has no (long enough) shape.
    `model`: a model dict (benchmarks/tunnel_eval.py's held-out ones); the shipped one if None."""
    return _core.tunnel_classify(protocol, meta, model or None)


def annotate(protocol: str, transport: str, meta: dict[str, Any]) -> None:
    """Set `meta["tunnel_contents"]` in place for ssh/tls TCP flows with a shape (the core does
    this itself for the records it makes)."""
    if transport != "tcp" or protocol not in ("ssh", "tls") or "tunnel_contents" in meta:
        return
    verdict = classify(protocol, meta)
    if verdict is not None:
        meta["tunnel_contents"] = verdict


def is_confident(verdict: dict[str, Any] | None, threshold: float | None = None) -> bool:
    if not verdict or verdict.get("kind") in (None, "unknown"):
        return False
    if threshold is None:
        threshold = CONFIDENT
    return float(verdict.get("confidence", 0.0)) >= threshold
