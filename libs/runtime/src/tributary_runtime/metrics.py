"""Process metrics in the Prometheus text exposition format (version 0.0.4), served on ``/metrics``.

A few counters, one histogram and callback gauges are all the services need, so this is a
small module rather than a dependency (``prometheus_client`` is not in the lock). Every
update happens on the event loop and is a dict lookup plus an addition; callers count per
batch or per event, never per row. Counters live for the process: a restart starts them at
zero, which Prometheus's ``rate()``/``increase()`` handle as a counter reset.

The metrics every service exposes are defined at the bottom; docs/observability.md lists
them with their labels.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class Metric:
    kind = "untyped"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)

    def samples(self) -> Iterable[str]:
        raise NotImplementedError

    def render(self) -> str:
        head = f"# HELP {self.name} {self.documentation}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, documentation, labelnames)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1, *labelvalues: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self._values[labelvalues] = self._values.get(labelvalues, 0) + amount

    def value(self, *labelvalues: str) -> float:
        return self._values.get(labelvalues, 0)

    def samples(self) -> Iterable[str]:
        for values, total in sorted(self._values.items()):
            yield f"{self.name}{_labels(self.labelnames, values)} {_number(total)}"


# Batch handling takes milliseconds; a phase (a whole import validated or applied in one
# transaction) takes seconds to minutes, hence the long tail.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Histogram(Metric):
    kind = "histogram"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, documentation, labelnames)
        self.buckets = tuple(sorted(buckets))
        # per label values: (count per bucket, non-cumulative, the last one +Inf), sum
        self._values: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *labelvalues: str) -> None:
        counts, total = self._values.setdefault(labelvalues, ([0] * (len(self.buckets) + 1), [0.0]))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        total[0] += value

    def count(self, *labelvalues: str) -> int:
        found = self._values.get(labelvalues)
        return sum(found[0]) if found else 0

    def samples(self) -> Iterable[str]:
        for values, (counts, total) in sorted(self._values.items()):
            running = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                running += n
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{_labels(self.labelnames, values, le)} {running}"
            yield f"{self.name}_sum{_labels(self.labelnames, values)} {_number(total[0])}"
            yield f"{self.name}_count{_labels(self.labelnames, values)} {running}"


class CallbackGauge(Metric):
    """A gauge computed at scrape time from sources registered by whoever owns the numbers."""

    kind = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, documentation, labelnames)
        self._sources: list[Callable[[], Iterable[tuple[LabelValues, float]]]] = []

    def add_source(self, source: Callable[[], Iterable[tuple[LabelValues, float]]]) -> None:
        self._sources.append(source)

    def remove_source(self, source: Callable[[], Iterable[tuple[LabelValues, float]]]) -> None:
        if source in self._sources:
            self._sources.remove(source)

    def samples(self) -> Iterable[str]:
        rows: list[tuple[LabelValues, float]] = []
        for source in list(self._sources):
            rows.extend(source())
        for values, value in sorted(rows):
            yield f"{self.name}{_labels(self.labelnames, values)} {_number(value)}"


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def register(self, metric: Metric) -> Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        return "".join(m.render() for m in self._metrics.values())


REGISTRY = Registry()

EVENTS_CONSUMED = Counter(
    "tributary_events_consumed_total",
    "Events a consumer group handled and committed (including parked and dead-lettered ones).",
    ("group", "topic", "event_type"))
EVENTS_PRODUCED = Counter(
    "tributary_events_produced_total",
    "Messages this process published that the broker acknowledged (dead letters included).",
    ("topic", "event_type"))
BATCH_SECONDS = Histogram(
    "tributary_batch_handling_seconds",
    "Time from a partition batch's transaction start to its commit (successful batches).",
    ("group",))
CONSUMER_LAG = CallbackGauge(
    "tributary_consumer_lag",
    "Messages behind: the partition's high watermark (last fetch) minus the consumer's stored offset.",
    ("group", "topic", "partition"))
DEAD_LETTERS = Counter(
    "tributary_dead_letters_total",
    "Messages a consumer group sent to <topic>.dlq (committed), by source topic and reason code.",
    ("group", "topic", "reason"))
ROWS_PROCESSED = Counter(
    "tributary_rows_processed_total",
    "Rows through a stage: published (ingest), validated (validator), applied (enricher); counted when "
    "the stage's transaction commits, per import.",
    ("stage",))

STAGED_ROWS_PURGED = Counter(
    "tributary_staged_rows_purged_total",
    "Staged rows of finished imports deleted once their retention passed (tributary_runtime.retention); "
    "counted when each import's deletion commits.")

for _metric in (EVENTS_CONSUMED, EVENTS_PRODUCED, BATCH_SECONDS, CONSUMER_LAG, DEAD_LETTERS, ROWS_PROCESSED,
                STAGED_ROWS_PURGED):
    REGISTRY.register(_metric)


def parse_text(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of an exposition as {(name, sorted labels): value} (for tests and tooling)."""
    import re

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        found = line_re.match(line)
        if found is None:
            raise ValueError(f"not an exposition line: {line!r}")
        name, labels, value = found.groups()
        pairs = tuple(sorted((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                             for k, v in label_re.findall(labels or "")))
        samples[(name, pairs)] = float(value)
    return samples
