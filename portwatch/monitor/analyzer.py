"""The pipeline's Analyzer with what a long-running monitor needs on top.

- every flow's `flow_id` is prefixed with the run's id (carried in `meta` until the emitter lifts
  it out), so that the classification event, the findings and the final record of one flow can be
  joined across restarts;
- a flow given up on as unknown is reported at once, as a classified one is (the core reports
  both when asked for classification events);
- the active timeout: a flow older than it is reported as a segment and continues under the same
  flow_id with its verdict kept, as NetFlow exporters do, so a week-long tunnel appears in the
  output before it ends (the core keeps the flow and its state; `split_long_flows`).
"""

from __future__ import annotations

from typing import Any

from ..model import FlowRecord
from ..pipeline import Analyzer, Setup, complete_record
from .emit import ACTIVE_TIMEOUT


class MonitorAnalyzer(Analyzer):
    def __init__(self, *args: Any, run_id: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_id = run_id
        self.segments = 0

    def _record(self, rec: FlowRecord, dns_counted: tuple[tuple | None] | None = None) -> FlowRecord:
        rec = complete_record(rec, self.setup, dns_counted)
        rec.meta["flow_id"] = f"{self.run_id}{rec.flow_id}"
        return rec

    def deliver(self, classified: list[FlowRecord], finished: list[FlowRecord]) -> None:
        """Records produced elsewhere (the core's live capture threads), classified ones first."""
        if self.on_classified is not None:
            for rec in classified:
                self.on_classified(self._record(rec))
        for rec in finished:
            rec = self._record(rec)
            if rec.meta.get("end_reason") == ACTIVE_TIMEOUT:
                self.segments += 1
            self.on_record(rec)

    def expire(self, now: float) -> None:
        """Idle flows by the wall clock (a silent link still ends its flows)."""
        self._emit(self.core.expire(now))

    def split_long_flows(self, active: float, now: float) -> int:
        """Report every settled flow older than `active` seconds and let it go on as a new segment."""
        raws = self.core.split_long_flows(active, now, ACTIVE_TIMEOUT)
        self._emit(raws)
        self.segments += len(raws)
        return len(raws)

    def reload(self, setup: Setup) -> None:
        """New signatures, services and policy; every live flow and its state is kept."""
        self.setup = setup
        self.core.set_engine(setup.engine, setup.known_ports)
