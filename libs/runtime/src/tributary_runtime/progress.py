"""PhaseProgress at most once a second while a long phase runs."""

from __future__ import annotations

import time

from contracts import Envelope, Phase, PhaseProgress, topics

from .consumer import Unit


class ProgressReporter:
    def __init__(self, unit: Unit, cause: Envelope, phase: Phase, total: int, producer: str,
                 interval_s: float = 1.0, attempt: int = 1) -> None:
        self.unit, self.cause, self.phase, self.total = unit, cause, phase, total
        self.producer, self.interval_s = producer, interval_s
        # A retried phase reports under ids of its own (``#attempt``), not the failed attempt's.
        self.suffix = f"#{attempt}" if attempt > 1 else ""
        self._last = time.monotonic()

    async def advance(self, rows_done: int) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s or rows_done >= self.total:
            return
        self._last = now
        event = PhaseProgress(phase=self.phase, rows_done=rows_done, rows_total=self.total)
        await self.unit.publish(topics.EVENTS, self.cause.follow(
            event, producer=self.producer, stage_key=f"{self.phase}:{rows_done}{self.suffix}"))
