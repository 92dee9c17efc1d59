"""Issue 20: packet shape from the core, the tunnel-contents classifier and the tunnel message."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from portwatch import tunnels  # noqa: E402
from portwatch.pipeline import Config, Setup, analyze_path  # noqa: E402

CAPS = ROOT / "captures" / "tunnels"


def records(name: str) -> list:
    config = Config()
    out: list = []
    analyze_path(str(CAPS / name), Setup.load(config), config, out.append)
    return out


def test_shape_uses_ip_lengths_not_snapped_bytes() -> None:
    # bulk-r1: scp -O uploads 64k: full 1448-byte segments up, though the capture keeps 160 bytes.
    rec = next(r for r in records("bulk-r1.pcap") if r.src_port == 42620)
    shape = rec.meta["shape"]
    assert shape["n"] == 64 == len(shape["sizes"]) == len(shape["iat_ms"])
    assert shape["sizes"].count(1448) > 30  # + is client to server
    assert shape["c2s"]["bytes"] > 64_000 > rec.bytes_c2s  # the record's bytes are what was captured
    assert shape["c2s"]["packets"] + shape["s2c"]["packets"] <= rec.packets_c2s + rec.packets_s2c
    # The SSH key exchange is skipped: the first packet is the encrypted service request, not a banner.
    assert abs(shape["sizes"][0]) < 100


def test_only_tunnel_capable_flows_carry_a_shape() -> None:
    recs = []
    config = Config()
    analyze_path(str(ROOT / "captures" / "http-80.pcap"), Setup.load(config), config, recs.append)
    assert recs and all("shape" not in r.meta for r in recs)


def test_held_out_runs_are_named() -> None:
    import tunnel_eval

    rows = tunnel_eval.load_flows()
    for fold in (1, 5):
        model = tunnel_eval.train([r for r in rows if r["fold"] != fold])
        held = [r for r in rows if r["fold"] == fold]
        verdict = {r["recorded"]: tunnels.classify(r["protocol"], {"shape": r["shape"]}, model)["kind"]
                   for r in held if r["recorded"] in ("interactive", "forwarded-http", "socks", "forwarded-mail")}
        # socks is reported as forwarded-http: ssh -D and ssh -L carrying HTTP look the same.
        assert verdict == {"interactive": "interactive", "forwarded-http": "forwarded-http",
                           "socks": "forwarded-http", "forwarded-mail": "forwarded-mail"}, (fold, verdict)


def test_ssh_on_443_carrying_http_is_forwarded_http() -> None:
    # Recorded separately (captures/ssh-443.pcap), never trained on: ssh -L + two curls.
    config = Config()
    out: list = []
    analyze_path(str(ROOT / "captures" / "ssh-443.pcap"), Setup.load(config), config, out.append)
    tc = next(r for r in out if r.protocol == "ssh").meta["tunnel_contents"]
    assert tc["kind"] == "forwarded-http" and tunnels.is_confident(tc), tc
    assert "client speaking first" in tc["evidence"]


def test_interactive_shell_on_22_is_not_a_forward() -> None:
    for name in ("interactive-r1.pcap", "interactive-r3.pcap", "interactive-r5.pcap", "interactive-r7.pcap",
                 "interactive-r9.pcap"):
        rec = records(name)[0]
        assert rec.dst_port == 22
        tc = rec.meta["tunnel_contents"]
        assert tc["kind"] == "interactive" and "typing intervals" in tc["evidence"], (name, tc)
    # ssh host 'echo hello': too short to name, and certainly not a forward.
    config = Config()
    out: list = []
    analyze_path(str(ROOT / "captures" / "ssh-22.pcap"), Setup.load(config), config, out.append)
    tc = next(r for r in out if r.protocol == "ssh").meta["tunnel_contents"]
    assert not tc["kind"].startswith("forwarded"), tc


def test_tunnel_message_says_what_rides_inside() -> None:
    rec = records("interactive-r2.pcap")[0]  # ssh on 443
    assert rec.dst_port == 443
    tun = [f for f in rec.findings if f.kind == "tunnel"]
    assert tun and "a tunnel carrying interactive" in tun[0].message, tun[0].message


@pytest.mark.parametrize("bad", [["teleport"], "socks"])
def test_policy_rejects_unknown_contents(tmp_path: Path, bad: object) -> None:
    from portwatch.policy.config import PolicyError, load_policy

    p = tmp_path / "site.toml"
    p.write_text(f"tunnel_contents_raise = {bad!r}".replace("'", '"'))
    with pytest.raises(PolicyError):
        load_policy(str(p))


def test_channel_openings_follow_the_ssh_message_sizes() -> None:
    # direct-tcpip CHANNEL_OPEN (100 bytes with AES-GCM) confirmed by a 52-byte
    # CHANNEL_OPEN_CONFIRMATION, then the client speaks first (an HTTP request) ...
    http = [100, -52, 148, -1448, -1448, -600]
    assert tunnels.opens(http, [40.0, 0.1, 0.1, 1.0, 0.0, 0.0]) == [1]
    # ... or the server does (an SMTP/POP3/IMAP greeting).
    assert tunnels.opens([92, -44, -76, 60, -196], [40.0, 0.1, 0.5, 3.0, 0.2]) == [-1]
    # An x11-req or pty-req answered by a 36-byte CHANNEL_SUCCESS is not an opening.
    assert tunnels.opens([116, -36, 84, -72], [40.0, 0.1, 0.1, 0.1]) == []


def test_keystrokes_and_server_opened_channels() -> None:
    # Typing: 36-byte keystrokes after human pauses, each echoed at once by 36 bytes.
    sizes = [36, -36] * 8
    iats = [g for _ in range(8) for g in (180.0, 0.4)]
    assert tunnels.keystrokes(sizes, iats) == 8
    assert tunnels.keystrokes(sizes, [0.1] * 16) == 0  # a paste or a script: no pauses
    # X11: the server opens a channel (68 bytes), the client confirms at once (52), then the
    # X server's setup reply goes up in full segments.
    x11 = [-68, 52, -84, 1448, 1448, 900]
    assert tunnels.server_opens(x11, [40.0, 0.2, 0.1, 0.3, 0.0, 0.0]) == 1
    # The same sizes mid-stream, without the lull before them, are data, not an opening.
    assert tunnels.server_opens([36, *x11], [5.0, 0.1, 0.2, 0.1, 0.3, 0.0, 0.0]) == 0


def test_shipped_model_is_json_data_of_bagged_trees() -> None:
    model = tunnels.load_model()
    assert list(model["features"]) == list(tunnels.FEATURES)
    for carrier in ("ssh", "tls"):
        trees = model["trees"][carrier]
        assert isinstance(trees, list) and len(trees) >= 5
        for tree in trees:
            _, path = tunnels.walk(tree, dict.fromkeys(tunnels.FEATURES, 0.0))
            assert len(path) <= 4  # depth bound of benchmarks/tunnel_eval.py
    assert all(c["runs"] >= 3 for c in model["classes"].values())


def test_runs_recorded_after_the_model_was_fixed() -> None:
    # Runs 6-10 were recorded after the features and the model were fixed (tunnel_eval.FROZEN_RUNS):
    # trained on runs 1-5 only, they are named with macro-F1 >= 0.9 (docs/tunnels.md has the table).
    import tunnel_eval

    rows = tunnel_eval.load_flows()
    old = [r for r in rows if r["fold"] <= tunnel_eval.FROZEN_RUNS]
    new = [r for r in rows if r["fold"] > tunnel_eval.FROZEN_RUNS]
    assert len({r["run"] for r in new}) >= 40
    model = tunnel_eval.train(old)
    results = []
    for r in new:
        v = tunnels.classify(r["protocol"], {"shape": r["shape"]}, model)
        results.append((r["class"], v.get("class", "unknown") if v["kind"] != "unknown" else "unknown", v))
    _, f1 = tunnel_eval.table(results, sorted({r["class"] for r in rows}))
    assert f1 >= 0.9, f1
    # ssh -L next to a remote command (a session channel as well as the forward), like ssh-443.pcap:
    for r, (_, _, v) in zip(new, results, strict=True):
        if "remote command" in r["detail"]:
            assert v["kind"] == "forwarded-http", (r["pcap"], v)
        if r["class"] == "interactive":
            assert v["kind"] == "interactive", (r["pcap"], v)
