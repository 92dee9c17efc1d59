"""The pipeline's Analyzer with what a long-running monitor needs on top.

- every flow gets a `flow_id` (carried in `meta` until the emitter lifts it out), so that the
  classification event, the findings and the final record of one flow can be joined;
- a flow given up on as unknown is reported at once, as a classified one is (the base class
  reports only successful classifications early);
- the active timeout: a flow older than it is reported as a segment and continues under the same
  flow_id with its verdict kept, as NetFlow exporters do, so a week-long tunnel appears in the
  output before it ends.
"""

from __future__ import annotations

from ..capture.flows import Flow
from ..pipeline import Analyzer
from .emit import ACTIVE_TIMEOUT


class MonitorAnalyzer(Analyzer):
    def __init__(self, *args, run_id: str = "", **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.run_id = run_id
        self.flow_seq = 0
        self.segments = 0

    def _new_flow(self, *args, **kwargs) -> Flow:  # type: ignore[no-untyped-def]
        flow = super()._new_flow(*args, **kwargs)
        self.flow_seq += 1
        flow.meta["flow_id"] = f"{self.run_id}{self.flow_seq}"
        return flow

    def _give_up(self, flow: Flow) -> None:
        super()._give_up(flow)
        if self.on_classified is not None and not flow.reported:
            self.on_classified(self.record(flow))
            flow.reported = True

    def split_long_flows(self, active: float, now: float) -> int:
        """Report every settled flow older than `active` seconds and let it go on as a new segment."""
        split = 0
        for flow in list(self.table.flows()):
            # A flow still being inspected is left to finish; a closed one ends on its own.
            if flow.inspecting or flow.closed_at is not None or now - flow.ts_start < active:
                continue
            self.table.remove(flow, ACTIVE_TIMEOUT)
            cont = flow.fork(flow.ts_end)
            cont.reported = True
            cont.meta = {k: v for k, v in flow.meta.items() if k not in ("end_reason", "evicted")}
            cont.meta["segment"] = int(flow.meta.get("segment", 0)) + 1
            self.table.add(cont)
            split += 1
        self.segments += split
        return split
