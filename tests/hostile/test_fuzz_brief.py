"""A brief fuzz run through the public interface, for CI: arbitrary bytes into every entry point
that reads hostile input, a defined result each time.

The coverage-guided targets are the core's (core/fuzz: probes, capture reader, decoder, signature
loader; their crash inputs replay under `cargo test`, core/tests/fuzz_regressions.rs). This keeps
a few hundred derandomised inputs per entry point as Python sees it, and fuzzes the one loader
that stayed in Python: the site policy.
"""

from __future__ import annotations

import contextlib
import gzip

from _engine import engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pcapkit import write_pcap

from portwatch.pipeline import CaptureError, Config, Setup, analyze_path
from portwatch.policy import config as policy_config
from portwatch.signatures import check_files

BRIEF = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))
_SETUP: list[Setup] = []


def _setup() -> Setup:
    if not _SETUP:
        _SETUP.append(Setup.load(Config()))
    return _SETUP[0]


@BRIEF
@given(st.sampled_from(["tcp", "udp"]), st.lists(st.binary(max_size=400), max_size=4),
       st.lists(st.binary(max_size=400), max_size=4), st.integers(1, 65535), st.booleans())
def test_classify_gives_a_decision_or_waits(transport, client, server, port, final):
    d = engine().classify(transport, client, server, port, may_swap=True, final_=final)
    if final:
        assert d is not None
    if d is not None:
        assert 0.0 <= d["confidence"] <= 1.0 and "\n" not in d["evidence"]


@BRIEF
@given(st.binary(max_size=2000), st.sampled_from(["raw", "pcap", "gzip"]))
def test_any_file_is_a_capture_error_or_flows(tmp_path_factory, data, shape):
    f = tmp_path_factory.mktemp("cap") / "x.pcap"
    if shape == "pcap":
        write_pcap(f, [(1_700_000_000.0, data)])
    else:
        f.write_bytes(gzip.compress(data) if shape == "gzip" else data)
    config = Config()
    try:
        stats = analyze_path(str(f), _setup(), config, lambda r: None)
    except CaptureError as exc:
        assert "\n" not in str(exc)
    else:
        assert stats.error is None or "\n" not in stats.error


@BRIEF
@given(st.text(max_size=600))
def test_any_signature_text_is_valid_or_one_line_problems(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("sig") / "f.toml"
    f.write_text(text, encoding="utf-8")
    for line in check_files([str(f)]):
        assert line.startswith(f"{f}") and "\n" not in line


@BRIEF
@given(st.text(max_size=600))
def test_any_policy_text_is_a_policy_or_a_policy_error(text):
    policy = policy_config.load_policy()
    with contextlib.suppress(policy_config.PolicyError):
        policy_config._load_into(policy, text, "fuzz.toml")
