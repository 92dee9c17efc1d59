"""The monitor loop: take events in short batches, and between batches do the housekeeping.

Live (`-i`), the core's threads capture and analyse (live.py); this loop polls their records (a
quarter of a second at most), hands them to the outputs, and between polls handles signals
(a reload goes to every thread), commits the database, reads the counters and redraws the view.
Replaying (`-r`), the loop runs the core over the file in batches and expires idle flows and
cuts long ones by the wall clock itself. Signal handlers only set flags; all the Python work
happens here, in the one thread, so no handler ever interrupts a half-written record.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from .. import _core
from ..pipeline import BATCH_RECORDS, Config
from . import reload as reloading
from .analyzer import MonitorAnalyzer
from .emit import Emitter
from .live import LiveCapture
from .view import Snapshot

log = logging.getLogger("portwatch.monitor")

TICK = 0.25
REPLAY_BATCH = 4096


@dataclass(slots=True)
class Limits:
    duration: float | None = None
    max_packets: int | None = None
    active_timeout: float = 1800.0
    expire_interval: float = 5.0


class Monitor:
    def __init__(
        self, analyzer: MonitorAnalyzer, source: LiveCapture | _core.Capture, emitter: Emitter,
        config: Config, limits: Limits, view: object | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.source = source
        self.emitter = emitter
        self.config = config
        self.limits = limits
        self.view = view
        self.stop = [False]
        self.stop_reason = ""
        self.hup = False
        self.errors = 0
        self.started = time.monotonic()
        self.last_rate = (self.started, 0)
        self.pps = 0.0
        self.next_expire = self.started + limits.expire_interval

    # ---- signals -------------------------------------------------------------------------
    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stop[0] = True
        self.stop_reason = signal.Signals(signum).name

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self.hup = True

    def install_signals(self) -> dict[int, Callable | int | None]:
        previous: dict[int, Callable | int | None] = {}
        for sig, handler in ((signal.SIGINT, self._on_stop), (signal.SIGTERM, self._on_stop),
                             (signal.SIGHUP, self._on_hup)):
            previous[sig] = signal.signal(sig, handler)
        return previous

    # ---- main loop -----------------------------------------------------------------------
    def run(self) -> Snapshot:
        previous = self.install_signals()
        try:
            if isinstance(self.source, LiveCapture):
                self._run_live(self.source)
            else:
                self._run_replay(self.source)
        finally:
            if isinstance(self.source, LiveCapture):
                self._stop_live(self.source)
            # Flush everything that is still open: every live flow becomes a record. A flow whose
            # report fails is already out of the table, so trying again goes on with the others.
            for _ in range(self.analyzer.live_flows + 1):
                try:
                    self.analyzer.close()
                    break
                except Exception:
                    self._error("reporting a flow at shutdown")
            self.emitter.commit()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.snapshot()

    def _counters(self) -> Any:
        """packets, malformed, fragments_dropped, flows_evicted: the rings' analyzers when live."""
        return self.source.stats if isinstance(self.source, LiveCapture) else self.analyzer.stats

    def _remaining(self) -> int | None:
        if self.limits.max_packets is None:
            return None
        return self.limits.max_packets - self._counters().packets

    def _should_stop(self) -> bool:
        if self.stop[0]:
            return True
        if self.limits.duration is not None and time.monotonic() - self.started >= self.limits.duration:
            self.stop_reason = "duration"
            return True
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            self.stop_reason = "max-packets"
            return True
        return False

    def _run_live(self, source: LiveCapture) -> None:
        # The core threads capture, analyse, expire idle flows and cut long ones by the wall
        # clock; this loop takes their records and counters a few times a second.
        source.start()
        while not self._should_stop():
            tick = TICK
            if self.limits.duration is not None:
                tick = max(0.0, min(tick, self.limits.duration - (time.monotonic() - self.started)))
            try:
                self.analyzer.deliver(*source.poll(tick))
            except Exception:
                self._error("reporting a flow")
            source.refresh()
            self.housekeeping(None)

    def _stop_live(self, source: LiveCapture) -> None:
        """Stop the threads (each reports its open flows) and report what they gave last."""
        source.stop()
        classified, finished = source.poll(0)
        for raw in classified:
            try:
                self.analyzer.deliver([raw], [])
            except Exception:
                self._error("reporting a flow at shutdown")
        for raw in finished:
            try:
                self.analyzer.deliver([], [raw])
            except Exception:
                self._error("reporting a flow at shutdown")
        for line in source.ring_lines():
            log.info("%s", line)

    def _run_replay(self, capture: _core.Capture) -> None:
        while not self._should_stop():
            remaining = self._remaining()
            n = REPLAY_BATCH if remaining is None else min(REPLAY_BATCH, remaining)
            try:
                self.analyzer._emit(self.analyzer.core.run(capture, n, BATCH_RECORDS))
            except Exception:
                self._error("analysing a packet")
            # Replayed flows expire by packet time inside the core, not by the wall clock.
            self.housekeeping(None)
            if capture.done:
                self.analyzer.error = capture.error
                self.stop_reason = self.stop_reason or "end of capture"
                break

    def _error(self, what: str) -> None:
        self.errors += 1
        if self.errors <= 10 or self.errors % 1000 == 0:
            log.exception("internal error #%d while %s; the monitor goes on", self.errors, what)

    def housekeeping(self, now: float | None) -> None:
        if self.hup:
            self.hup = False
            self.reload()
        mono = time.monotonic()
        if now is not None and mono >= self.next_expire:
            self.next_expire = mono + self.limits.expire_interval
            self.analyzer.expire(now)
            self.analyzer.split_long_flows(self.limits.active_timeout, now)
        self.emitter.commit()
        if self.view is not None:
            self.view.tick(self.snapshot(), self.emitter.tally)  # type: ignore[attr-defined]

    def reload(self) -> None:
        new, error = reloading.load(self.config)
        if new is None:
            log.error("reload failed, keeping the previous configuration: %s", error)
            self.emitter.reload(False, error)
            return
        changed = reloading.changes(self.analyzer.setup, new)
        self.analyzer.reload(new)
        if isinstance(self.source, LiveCapture):
            self.source.set_engine(new)  # every ring's thread swaps it in within 0.2 s
        log.warning("reloaded signatures, services and policy: %s", "; ".join(changed) or "no changes")
        self.emitter.reload(True, changed)

    def snapshot(self) -> Snapshot:
        stats = self._counters()
        mono = time.monotonic()
        t0, p0 = self.last_rate
        if mono - t0 >= 1.0:
            self.pps = (stats.packets - p0) / (mono - t0)
            self.last_rate = (mono, stats.packets)
        live = self.source.stats if isinstance(self.source, LiveCapture) else None
        return Snapshot(
            uptime=mono - self.started,
            packets=stats.packets,
            pps=self.pps,
            live_flows=live.live_flows if live else self.analyzer.live_flows,
            flows_done=self.emitter.tally.flows,
            kernel_drops=live.kernel_drops if live else 0,
            evicted=stats.flows_evicted,
            fragments_dropped=stats.fragments_dropped,
            truncated=live.truncated if live else 0,
            malformed=stats.malformed,
            errors=self.errors,
        )
