"""Scrape the control plane's metrics in a thread through a drill and keep their time series.

Like Prometheus: every round records `up{job,instance}` (1 when the scrape worked, 0 when it
failed) and, when a target fails or stops exposing a series, a staleness marker for each series
it had exposed, so that an alert rule sees a dead member's series vanish rather than linger.
Offsets are on the drill's timeline. Bounded in time (`max_duration`) and in size
(`max_series`); it stops by itself.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from kubedrill.checks.verdict import Attachment
from kubedrill.cluster import Cluster
from kubedrill.polling import poll_until
from kubedrill.probes.metrics import Scraper, ScrapeResult, SeriesKey, scraper_for, series_key
from kubedrill.timeline import Timeline

# (offset on the timeline, value); None is a staleness marker (the series vanished there).
Point = tuple[float, float | None]


@dataclass
class RecordedSeries:
    """Time series by (metric, labels), sampled every `interval` seconds."""

    interval: float
    points: dict[SeriesKey, list[Point]] = field(default_factory=dict)

    def add(self, key: SeriesKey, offset: float, value: float | None) -> None:
        self.points.setdefault(key, []).append((offset, value))

    def select(self, name: str, **labels: str) -> dict[SeriesKey, list[Point]]:
        """Series of metric `name` whose labels include `labels`."""
        return {
            key: points
            for key, points in self.points.items()
            if key[0] == name and all(dict(key[1]).get(k) == v for k, v in labels.items())
        }

    def __iter__(self) -> Iterator[tuple[SeriesKey, list[Point]]]:
        return iter(sorted(self.points.items()))

    @property
    def start(self) -> float:
        return min((p[0][0] for p in self.points.values() if p), default=0.0)

    @property
    def end(self) -> float:
        return max((p[-1][0] for p in self.points.values() if p), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval,
            "series": [
                {
                    "metric": name,
                    "labels": dict(labels),
                    "points": [[round(o, 3), v] for o, v in points],
                }
                for (name, labels), points in self
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordedSeries:
        out = cls(float(data["interval_s"]))
        for item in data["series"]:
            key = series_key(item["metric"], item["labels"])
            out.points[key] = [
                (float(o), None if v is None else float(v)) for o, v in item["points"]
            ]
        return out


@dataclass
class ScrapeCost:
    """What scraping costs: per scrape wall time and CPU time, per job."""

    wall_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    rounds: int = 0
    failed: int = 0

    def add(self, result: ScrapeResult) -> None:
        job = result.target.job
        self.wall_ms.setdefault(job, []).append(result.seconds * 1000)
        self.cpu_ms.setdefault(job, []).append(result.cpu_seconds * 1000)
        self.failed += not result.ok

    def to_dict(self) -> dict[str, Any]:
        def median(values: list[float]) -> float:
            return round(statistics.median(values), 2) if values else 0.0

        return {
            "rounds": self.rounds,
            "failed_scrapes": self.failed,
            "median_wall_ms": {job: median(v) for job, v in self.wall_ms.items()},
            "median_cpu_ms": {job: median(v) for job, v in self.cpu_ms.items()},
            "cpu_ms_per_round": round(sum(sum(v) for v in self.cpu_ms.values()) / self.rounds, 2)
            if self.rounds
            else 0.0,
        }


@dataclass(kw_only=True)
class MetricsRecorder:
    scraper: Scraper
    timeline: Timeline
    interval: float = 1.0
    max_duration: float = 900.0
    max_series: int = 5000
    name: str = "metrics-recorder"

    def __post_init__(self) -> None:
        self._series = RecordedSeries(self.interval)
        self._cost = ScrapeCost()
        self._seen: dict[str, set[SeriesKey]] = {}  # target url -> series it exposes now
        self.dropped_series = 0
        self.last_round = -1.0  # offset of the latest recorded round; -1 before the first
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    @classmethod
    def for_cluster(
        cls, cluster: Cluster, timeline: Timeline, interval: float = 1.0, **kw: Any
    ) -> MetricsRecorder:
        """etcd members, and with Kubernetes the apiservers, controller-managers, schedulers
        and the Nodes' Ready condition."""
        return cls(
            scraper=scraper_for(cluster, timeout=min(0.8, interval * 0.8)),
            timeline=timeline,
            interval=interval,
            **kw,
        )

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, *, final_round: bool = True) -> RecordedSeries:
        """Stop scraping (idempotent) and return the series. With `final_round`, first wait
        (up to three intervals) for a round that began after this call, so that a change the
        drill measured at its very end is in the series too."""
        if final_round and self._thread.is_alive() and not self._stop.is_set():
            asked = self.timeline.now()
            poll_until(
                lambda: self.last_round,
                lambda last: last >= asked,
                timeout=3 * self.interval,
                interval=0.1,
            )
        self._stop.set()
        if self._thread.ident is None:
            self.scraper.close()  # never started: the thread would have closed it
        elif self._thread.is_alive():
            self._thread.join(timeout=10)
        return self.series()

    def series(self) -> RecordedSeries:
        """A copy of what was recorded so far."""
        with self._lock:
            return RecordedSeries(
                self.interval, {k: list(v) for k, v in self._series.points.items()}
            )

    def summary(self) -> dict[str, Any]:
        """What scraping cost (kubedrill.checks.Recorder): summary.json `recorders`."""
        return self.cost()

    def attachments(self) -> list[Attachment]:
        """The recorded series, for the report: what the alert rules were judged on."""
        return [Attachment("metrics series", "json", self.series().to_dict())]

    def cost(self) -> dict[str, Any]:
        with self._lock:
            return {**self._cost.to_dict(), "dropped_series": self.dropped_series}

    def scrape_once(self) -> None:
        """One round: every target, recorded at the round's start offset."""
        offset = self.timeline.now()
        results = self.scraper.scrape_all(deadline=self.interval * 0.9)
        with self._lock:
            self._cost.rounds += 1
            self.last_round = offset
            for result in results:
                self._cost.add(result)
                self._record(offset, result)

    def _record(self, offset: float, result: ScrapeResult) -> None:
        target = result.target
        self._add(series_key("up", target.labels), offset, 1.0 if result.ok else 0.0)
        seen = target.url + target.job
        # Series left out of a light round did not vanish: they are carried over, unsampled.
        now = set(result.samples) | {
            k for k in self._seen.get(seen, set()) if result.ok and k[0] in result.skipped
        }
        for vanished in self._seen.get(seen, set()) - now:
            self._add(vanished, offset, None)
        self._seen[seen] = now
        for key, value in result.samples.items():
            self._add(key, offset, value)

    def _add(self, key: SeriesKey, offset: float, value: float | None) -> None:
        if key not in self._series.points and len(self._series.points) >= self.max_series:
            self.dropped_series += 1
            return
        self._series.add(key, offset, value)

    def _run(self) -> None:
        started = self.timeline.now()
        rounds = 0
        try:
            while not self._stop.is_set() and self.timeline.now() - started < self.max_duration:
                self.scrape_once()
                rounds += 1
                # On a fixed grid: a slow round does not shift the ones after it.
                wait = started + rounds * self.interval - self.timeline.now()
                if wait > 0:
                    self._stop.wait(wait)
        finally:
            self.scraper.close()
