"""Pictures of an `Analysis` (or of its flows DataFrame), drawn with matplotlib.

Each function draws on `ax` (a new figure when None) and returns the Axes, so the caller can restyle
it, add to it or save it. Labels come from sanitised flow records; matplotlib's mathtext is switched
off for them (a banner holding ``$...$`` must not be typeset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .api import Analysis

# Findings that mean "this protocol is not the one the port is assigned to" (an unassigned port is no
# mismatch: there is nothing to contradict).
MISMATCH_KINDS = frozenset({"port-mismatch", "tunnel", "cleartext-on-secure-port"})
MISMATCH_COLOR = "#d62728"
FITTING_COLOR = "#1f77b4"
FINDING_COLOR = "#ff7f0e"
UNASSIGNED_COLOR = "#8c8c8c"
BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_bytes(value: float, _pos: object = None) -> str:
    """``1.5 MB`` (decimal units, as ``ls --si``): a byte axis's tick labels, never ``1e8``."""
    if value <= 0:
        return "0" if value == 0 else ""
    unit = 0
    while value >= 1000 and unit < len(BYTE_UNITS) - 1:
        value /= 1000
        unit += 1
    text = f"{value:.1f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"
    return f"{text} {BYTE_UNITS[unit]}"


def _flows(data: Analysis | pd.DataFrame) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else data.flows


def _axes(ax: Axes | None, size: tuple[float, float] = (8.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new = plt.subplots(figsize=size, layout="constrained")
    return new


def _text(value: Any) -> str:
    # A literal "$" would start mathtext; escaping it keeps labels as the plain text they are.
    return str(value).replace("$", r"\$")


def mismatched(flows: pd.DataFrame) -> pd.Series:
    """Boolean Series: the flow has a finding saying its protocol does not belong on its server port."""
    return flows["findings"].map(lambda fl: any(f["kind"] in MISMATCH_KINDS for f in fl)).astype(bool)


def protocol_vs_port(data: Analysis | pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Detected protocol (y) against server port (x), one marker per (port, transport, protocol),
    its area growing with the number of flows; combinations with a mismatch finding in red, those on
    a port /etc/services assigns nothing to in grey (there is nothing to fit)."""
    flows = _flows(data)
    ax = _axes(ax)
    if flows.empty:
        ax.set_title("Detected protocol vs server port (no flows)")
        return ax
    frame = pd.DataFrame({
        "port": flows["dst_port"].astype("int64"),
        "transport": flows["transport"].astype(str),
        "protocol": flows["protocol"].astype(str),
        "mismatch": mismatched(flows),
        "assigned": flows["assigned"].map(lambda a: bool(len(a))).astype(bool),
    })
    groups = frame.groupby(["port", "transport", "protocol"], sort=True).agg(
        flows=("mismatch", "size"), mismatch=("mismatch", "any"), assigned=("assigned", "any")).reset_index()
    ports = sorted({(int(p), t) for p, t in zip(groups["port"], groups["transport"], strict=True)})
    protocols = sorted(set(groups["protocol"]))
    xpos = {pt: i for i, pt in enumerate(ports)}
    ypos = {p: i for i, p in enumerate(protocols)}
    x = np.array([xpos[(int(p), t)] for p, t in zip(groups["port"], groups["transport"], strict=True)])
    y = np.array([ypos[p] for p in groups["protocol"]])
    sizes = 40 + 160 * np.sqrt(groups["flows"].to_numpy() / groups["flows"].max())
    mismatch = groups["mismatch"].to_numpy()
    assigned = groups["assigned"].to_numpy()
    for sel, color, label in ((~mismatch & assigned, FITTING_COLOR, "fits the port"),
                              (~mismatch & ~assigned, UNASSIGNED_COLOR, "port unassigned"),
                              (mismatch, MISMATCH_COLOR, "mismatch")):
        if sel.any():
            ax.scatter(x[sel], y[sel], s=sizes[sel], c=color, label=label, alpha=0.85, edgecolors="black",
                       linewidths=0.5, zorder=3)
    for xi, yi, n in zip(x, y, groups["flows"], strict=True):
        ax.annotate(str(n), (xi, yi), textcoords="offset points", xytext=(8, 6), fontsize=8)
    ax.set_xticks(range(len(ports)), [f"{p}/{t}" for p, t in ports], rotation=45, ha="right")
    ax.set_yticks(range(len(protocols)), [_text(p) for p in protocols])
    ax.set_xlim(-0.5, len(ports) - 0.5)
    ax.set_ylim(-0.5, len(protocols) - 0.5)
    ax.set_xlabel("server port")
    ax.set_ylabel("detected protocol")
    ax.set_title("Detected protocol vs server port")
    ax.grid(True, alpha=0.3, zorder=0)
    ax.legend(loc="best", fontsize=8)
    return ax


def _auto_freq(start: pd.Timestamp, end: pd.Timestamp) -> str:
    span = (end - start).total_seconds()
    for limit, freq in ((120, "1s"), (3600, "1min"), (6 * 3600, "5min"), (3 * 86400, "1h"), (60 * 86400, "1D")):
        if span <= limit:
            return freq
    return "7D"


def timeline(data: Analysis | pd.DataFrame, freq: str | None = None, ax: Axes | None = None) -> Axes:
    """Flows started and findings raised per time bin (`freq` a pandas offset such as "1min",
    chosen from the time span when None). Findings are counted at their flow's start."""
    flows = _flows(data)
    ax = _axes(ax)
    if flows.empty:
        ax.set_title("Flows and findings over time (no flows)")
        return ax
    start, end = flows["ts_start"].min(), flows["ts_start"].max()
    freq = freq or _auto_freq(start, end)
    index = pd.DatetimeIndex(flows["ts_start"])
    per_flow = pd.Series(1, index=index).resample(freq).sum()
    nfind = pd.Series(flows["findings"].map(len).to_numpy(), index=index).resample(freq).sum()
    width = pd.Timedelta(freq)
    ax.bar(per_flow.index, per_flow.to_numpy(), width=width, align="edge", color=FITTING_COLOR, alpha=0.6,
           label="flows")
    ax.step(nfind.index, nfind.to_numpy(), where="post", color=MISMATCH_COLOR, linewidth=2, label="findings")
    # where="post" draws each value from its bin's start to the next point, so the last bin would have
    # no line: draw its value across it too.
    ax.hlines(nfind.to_numpy()[-1], nfind.index[-1], nfind.index[-1] + width, color=MISMATCH_COLOR, linewidth=2)
    ax.set_xlabel(f"time (UTC), bins of {freq}")
    ax.set_ylabel("count")
    ax.set_title("Flows and findings over time")
    ax.legend(loc="best", fontsize=8)
    ax.figure.autofmt_xdate()
    return ax


def bytes_by_protocol(data: Analysis | pd.DataFrame, ax: Axes | None = None, log: bool = False) -> Axes:
    """Bytes per detected protocol (transport payload), client-to-server and server-to-client stacked,
    largest on top; with `log`, a log axis and the two directions side by side (stacking on a log
    scale would misstate the second bar). Ticks read B, KB, MB, GB."""
    flows = _flows(data)
    ax = _axes(ax)
    if flows.empty:
        ax.set_title("Bytes by protocol (no flows)")
        return ax
    totals = (flows.assign(protocol=flows["protocol"].astype(str))
              .groupby("protocol")[["bytes_c2s", "bytes_s2c"]].sum())
    totals = totals.loc[(totals["bytes_c2s"] + totals["bytes_s2c"]).sort_values().index]
    y = np.arange(len(totals))
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if log:
        h = 0.4
        ax.barh(y - h / 2, totals["bytes_c2s"], height=h, color=FITTING_COLOR, label="client → server")
        ax.barh(y + h / 2, totals["bytes_s2c"], height=h, color=FINDING_COLOR, label="server → client")
        ax.set_xscale("log")
    else:
        ax.barh(y, totals["bytes_c2s"], color=FITTING_COLOR, label="client → server")
        ax.barh(y, totals["bytes_s2c"], left=totals["bytes_c2s"], color=FINDING_COLOR, label="server → client")
    ax.xaxis.set_major_formatter(FuncFormatter(human_bytes))
    if log:
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(y, [_text(p) for p in totals.index])
    ax.set_xlabel("payload bytes (log scale)" if log else "payload bytes")
    ax.set_title("Bytes by protocol")
    ax.legend(loc="lower right", fontsize=8)
    return ax
