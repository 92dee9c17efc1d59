"""Issue 18 item 11: byte axes in B/kB/MB/GB, a log scale not stacked, the findings line covering
the last bin, and "fits the port" not drawn for ports with no assignment."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from _kit import record

from portwatch import frames, plot
from portwatch.model import Finding


def _flows() -> pd.DataFrame:
    recs = [record(i, port=443, protocol="tls").as_dict() for i in range(3)]
    big = record(10, port=80, protocol="http", assigned=["http"]).as_dict()
    big["bytes_s2c"] = 300_000_000
    odd = record(20, port=50000, protocol="unknown", assigned=[]).as_dict()
    late = record(100, port=22, protocol="tls", assigned=["ssh"],
                  findings=[Finding("port-mismatch", "high", "TLS on 22")]).as_dict()
    return frames.flows_frame([*recs, big, odd, late])


def _labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()]


def test_bytes_axis_reads_in_units():
    ax = plot.bytes_by_protocol(_flows())
    labels = _labels(ax)
    assert any(label.endswith(("MB", "GB", "kB", "KB")) for label in labels), labels
    assert not any("e" in label and label[0].isdigit() for label in labels)
    assert ax.xaxis.get_offset_text().get_text() == ""


def test_log_scale_is_not_stacked():
    ax = plot.bytes_by_protocol(_flows(), log=True)
    assert ax.get_xscale() == "log"
    lefts = [p.get_x() for p in ax.patches]
    assert max(lefts) == min(lefts)  # every bar starts at the axis: side by side, never stacked
    assert not any("e" in label and label[0].isdigit() for label in _labels(ax))


def test_findings_line_covers_the_last_bin():
    flows = _flows()
    ax = plot.timeline(flows, freq="10s")
    import matplotlib.dates as mdates

    bars = ax.patches
    bar_end = max(b.get_x() + b.get_width() for b in bars)
    ends = [mdates.date2num(x) if not isinstance(x, float) else x for x in ax.get_lines()[0].get_xdata()]
    for coll in ax.collections:  # the last bin's segment
        for seg in coll.get_segments():
            ends.extend(seg[:, 0])
    assert np.isclose(max(ends), bar_end)


def test_fits_the_port_not_drawn_for_unassigned_ports():
    ax = plot.protocol_vs_port(_flows())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "port unassigned" in labels and "fits the port" in labels and "mismatch" in labels
    odd = frames.flows_frame([record(20, port=50000, protocol="unknown", assigned=[]).as_dict()])
    only = [t.get_text() for t in plot.protocol_vs_port(odd).get_legend().get_texts()]
    assert "fits the port" not in only
