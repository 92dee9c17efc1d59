"""Each plot draws what the flows hold and hands back its Axes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex

import portwatch
from portwatch import plot
from portwatch.frames import flows_frame


@pytest.fixture(scope="module")
def analysed(mixed_pcap: Path) -> portwatch.Analysis:
    return portwatch.analyze(mixed_pcap, progress=False)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def test_protocol_vs_port_highlights_mismatches(analysed: portwatch.Analysis) -> None:
    ax = plot.protocol_vs_port(analysed)
    assert isinstance(ax, Axes)
    xlabels = [t.get_text() for t in ax.get_xticklabels()]
    ylabels = [t.get_text() for t in ax.get_yticklabels()]
    assert xlabels == ["22/tcp", "53/udp", "80/tcp", "443/tcp", "4444/tcp"]
    assert ylabels == ["dns", "http", "ssh", "unknown"]
    red = [c for c in ax.collections if to_hex(c.get_facecolor()[0]) == plot.MISMATCH_COLOR]
    assert len(red) == 1
    points = {(xlabels[int(x)], ylabels[int(y)]) for x, y in red[0].get_offsets()}
    # http on 22 (cleartext on secure port), ssh on 443 (tunnel); encrypted-unknown is not a port mismatch
    assert points == {("22/tcp", "http"), ("443/tcp", "ssh")}


def test_timeline_counts_flows_and_findings(analysed: portwatch.Analysis) -> None:
    ax = plot.timeline(analysed, freq="1min")
    assert isinstance(ax, Axes)
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == len(analysed.flows)
    step = ax.get_lines()[0]
    assert step.get_ydata().sum() == len(analysed.findings)


def test_bytes_by_protocol_on_given_axes(analysed: portwatch.Analysis) -> None:
    _, given = plt.subplots()
    ax = plot.bytes_by_protocol(analysed.flows, ax=given, log=True)
    assert ax is given and ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    flows = analysed.flows
    totals = {p: int((g["bytes_c2s"] + g["bytes_s2c"]).sum())
              for p, g in flows.groupby(flows["protocol"].astype(str))}
    assert labels == sorted(totals, key=totals.get)  # largest at the top
    widths = np.array([p.get_width() for p in ax.patches]).reshape(2, -1).sum(axis=0)
    assert list(widths) == [totals[p] for p in labels]


def test_plots_of_no_flows_do_not_fail() -> None:
    empty = portwatch.Analysis(flows_frame([]))
    for fn in (plot.protocol_vs_port, plot.timeline, plot.bytes_by_protocol):
        assert "no flows" in fn(empty).get_title()


def test_labels_are_not_typeset_as_mathtext(analysed: portwatch.Analysis) -> None:
    flows = analysed.flows.copy()
    flows["protocol"] = flows["protocol"].cat.rename_categories(lambda p: "x$^{evil}$" if p == "ssh" else p)
    ax = plot.bytes_by_protocol(flows)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert r"x\$^{evil}\$" in labels
