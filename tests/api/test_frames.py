"""The DataFrames' dtypes are deliberate, and findings/servers/summary say what the capture holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import portwatch
from portwatch.frames import FLOW_COLUMNS, FlowRows, flows_frame, servers_frame
from portwatch.pipeline import Analyzer, Config, Setup, open_capture


@pytest.fixture(scope="module")
def analysed(mixed_pcap: Path) -> portwatch.Analysis:
    return portwatch.analyze(mixed_pcap, progress=False)


def test_flow_dtypes(analysed: portwatch.Analysis) -> None:
    flows = analysed.flows
    assert tuple(flows.columns) == FLOW_COLUMNS
    dt = flows.dtypes
    for col in ("transport", "orientation", "protocol"):
        assert isinstance(dt[col], pd.CategoricalDtype), col
    assert list(dt["transport"].categories) == ["tcp", "udp"]
    for col in ("ts_start", "ts_end"):
        assert str(dt[col]) == "datetime64[ns, UTC]"
    for col in ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c"):
        assert dt[col] == "int64"
    assert dt["src_port"] == "int32" and dt["dst_port"] == "int32"
    assert isinstance(dt["src_ip"], pd.StringDtype) and isinstance(dt["pcap"], pd.StringDtype)
    assert dt["confidence"] == "float64"


def test_flows_content(analysed: portwatch.Analysis) -> None:
    flows = analysed.flows
    assert len(flows) == 5
    assert flows["ts_start"].is_monotonic_increasing
    by_port = flows.set_index("dst_port")
    assert by_port.loc[443, "protocol"] == "ssh"
    assert by_port.loc[80, "protocol"] == "http"
    assert by_port.loc[53, "protocol"] == "dns" and by_port.loc[53, "transport"] == "udp"
    assert by_port.loc[4444, "protocol"] == "unknown"
    assert by_port.loc[80, "assigned"] == ["http"]
    assert by_port.loc[80, "bytes_c2s"] > 0 and by_port.loc[80, "packets_s2c"] >= 2
    assert (flows["pcap"] == "mixed.pcap").all()


def test_findings_one_row_per_finding_with_flow_columns(analysed: portwatch.Analysis) -> None:
    findings = analysed.findings
    assert len(findings) == sum(len(f) for f in analysed.flows["findings"])
    assert set(findings.columns) == {"flow", "kind", "severity", "message"} | (set(FLOW_COLUMNS) - {"findings"})
    assert findings["severity"].dtype.ordered
    assert isinstance(findings["kind"].dtype, pd.CategoricalDtype)
    ssh = findings[findings["dst_port"] == 443]
    assert {"tunnel", "port-mismatch"} <= set(ssh["kind"])
    assert (ssh["protocol"] == "ssh").all() and (ssh["flow"] == 0).all()
    assert set(findings.loc[findings["severity"] >= "high", "dst_port"]) == {22, 443}  # ordered: comparisons work
    assert "encrypted-unknown" in set(findings[findings["dst_port"] == 4444]["kind"])
    assert "cleartext-on-secure-port" in set(findings[findings["dst_port"] == 22]["kind"])


def test_servers_and_summary(analysed: portwatch.Analysis) -> None:
    servers = analysed.servers.set_index("server")
    assert set(servers.index) == {"10.9.0.1:22", "10.9.0.1:53", "10.9.0.1:80", "10.9.0.1:443", "10.9.0.1:4444"}
    assert servers.loc["10.9.0.1:443", "protocol"] == "ssh"
    assert servers.loc["10.9.0.1:443", "max_severity"] == "high"
    assert pd.isna(servers.loc["10.9.0.1:80", "max_severity"])
    assert servers.loc["10.9.0.1:53", "identity"] == "www.example.org."
    assert list(analysed.servers["dst_port"]) == [22, 53, 80, 443, 4444]  # as `analyze --servers` orders them
    assert servers.loc["10.9.0.1:443", "bytes_c2s"] > 600 and servers.loc["10.9.0.1:443", "clients"] == 1
    summary = analysed.summary()
    assert summary["severity"].cat.codes.is_monotonic_decreasing
    assert (summary["flows"] == 1).all() and len(summary) == len(analysed.findings)


def test_servers_need_an_answer_and_can_split_per_capture(analysed: portwatch.Analysis) -> None:
    flows = analysed.flows.copy()
    rst = flows.iloc[[1]].assign(dst_port=np.int32(9), bytes_s2c=0, packets_s2c=1, bytes_c2s=0, protocol="unknown")
    both = pd.concat([flows, rst.astype(flows.dtypes.to_dict())], ignore_index=True)
    assert 9 not in set(servers_frame(both)["dst_port"])  # a SYN answered by RST is no server
    twice = pd.concat([flows, flows.assign(pcap="other.pcap")], ignore_index=True)
    per = servers_frame(twice, per_capture=True)
    assert list(per.columns[:3]) == ["pcap", "dst_ip", "dst_port"] and len(per) == 10
    assert len(servers_frame(twice)) == 5 and (servers_frame(twice)["flows"] == 2).all()


def test_empty_frames_keep_their_dtypes() -> None:
    a = portwatch.Analysis(flows_frame([]))
    assert tuple(a.flows.columns) == FLOW_COLUMNS
    assert str(a.flows["ts_start"].dtype) == "datetime64[ns, UTC]"
    assert a.findings.empty and a.servers.empty and a.summary().empty
    assert "0 flows" in repr(a)


def test_directory_and_list_inputs(mixed_pcap: Path) -> None:
    a = portwatch.analyze(mixed_pcap.parent, progress=False)
    b = portwatch.analyze([mixed_pcap, mixed_pcap], progress=False)
    assert len(a.flows) == 5 and len(b.flows) == 10 and b.sources == ["mixed.pcap", "mixed.pcap"]
    assert a.stats is not None and a.stats.packets > 30


def test_progress_goes_to_stderr(mixed_pcap: Path, capsys: pytest.CaptureFixture[str]) -> None:
    portwatch.analyze(mixed_pcap, progress=True)
    assert "mixed.pcap:" in capsys.readouterr().err


def test_unreadable_capture_raises(tmp_path: Path) -> None:
    from portwatch.pipeline import CaptureError

    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(CaptureError):
        portwatch.analyze(bad, progress=False)


def test_packets_of_one_flow_match_its_counters(analysed: portwatch.Analysis) -> None:
    flows = analysed.flows
    for label in flows.index:
        pk = analysed.packets(label)
        row = flows.loc[label]
        per_dir = pk.groupby("direction", observed=False)["payload"].agg(["count", "sum"])
        assert per_dir.loc["c2s", "count"] == row["packets_c2s"]
        assert per_dir.loc["s2c", "count"] == row["packets_s2c"]
        assert per_dir.loc["c2s", "sum"] == row["bytes_c2s"]
        assert per_dir.loc["s2c", "sum"] == row["bytes_s2c"]
        assert pk["ts"].iloc[0] == row["ts_start"] and pk["ts"].iloc[-1] == row["ts_end"]
    ssh = analysed.packets(int(flows.index[flows["dst_port"] == 443][0]))
    assert list(ssh["flags"][:3]) == ["S", "SA", "A"]
    assert (ssh["gap"] >= 0).all()


def test_packets_needs_a_capture_for_read_frames(analysed: portwatch.Analysis) -> None:
    other = portwatch.Analysis(analysed.flows)
    with pytest.raises(ValueError, match="capture="):
        other.packets(0)


def test_records_gathered_as_rows_make_the_frame_their_dicts_make(mixed_pcap: Path) -> None:
    """`analyze` keeps each record as a tuple with the core's meta (`FlowRows`): the frame is the one
    `flows_frame` makes of the records' dicts, sorted by start time then capture."""
    config = Config()
    setup = Setup.load(config)
    rows = FlowRows()
    dicts: list[dict] = []

    def sink(rec) -> None:
        rows.add(rec)
        dicts.append(rec.as_dict())

    for name in ("b.pcap", "a.pcap"):  # two captures of the same flows: ties on ts_start
        analyzer = Analyzer(config, sink, setup=setup, pcap_name=name)
        analyzer.run_capture(open_capture(str(mixed_pcap)))
        analyzer.close()
    assert len(dicts) >= 10 and any(d["findings"] for d in dicts)
    dicts.sort(key=lambda r: (r["ts_start"], r.get("pcap") or ""))
    pd.testing.assert_frame_equal(rows.frame(), flows_frame(dicts))
    assert list(rows.frame()["pcap"][:2]) == ["a.pcap", "b.pcap"]
    assert FlowRows().frame().dtypes.equals(flows_frame([]).dtypes)


def test_frame_records_copy_or_share_the_frames_objects(analysed: portwatch.Analysis) -> None:
    from portwatch.frames import frame_records

    flows = analysed.flows
    copied, shared = frame_records(flows), frame_records(flows, copy=False)
    assert copied == shared
    for name in ("meta", "assigned", "findings"):
        assert copied[0][name] is not flows[name].iloc[0]
        assert shared[0][name] is flows[name].iloc[0]


def test_summary_is_made_once(analysed: portwatch.Analysis) -> None:
    assert analysed.summary() is analysed.summary()
    assert len(analysed.summary()) >= 1


_CELLS = (st.none() | st.just(pd.NA) | st.just("") | st.just(float("nan")) | st.integers() | st.booleans()
          | st.text(max_size=6) | st.text(alphabet="ab\x00\x1b\u2028\u200e\ud800", max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(_CELLS, max_size=8) | st.lists(st.text(alphabet="az09.:", max_size=5), max_size=8)
       | st.lists(st.integers(), max_size=8), st.sampled_from([None, ""]))
def test_a_text_column_is_each_value_through_safe_text(values: list[object], empty: str | None) -> None:
    """`_texts`' one-pass check over a column gives what a `safe_text` call per value gives."""
    from portwatch.frames import _texts, safe_text

    want = [None if v is None or v is pd.NA else empty if v == "" else safe_text(str(v)) for v in values]
    assert _texts(values, empty) == want
