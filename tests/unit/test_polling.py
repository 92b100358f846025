"""poll_until: polling through tenacity without real sleeping.

tenacity measures `stop_after_delay` with `time.monotonic()`; the `fake_time` fixture swaps the
clock tenacity reads for one that only the injected `sleep` advances, so timeouts are exact and
instantaneous.
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator

import pytest
import tenacity

from kubedrill.polling import poll_until


class FakeTime:
    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(tenacity, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def counter(values: list[int]) -> Iterator[int]:
    yield from values


def test_returns_first_value_when_done_at_once(fake_time: FakeTime) -> None:
    calls: list[int] = []

    def fetch() -> int:
        calls.append(1)
        return 42

    value, ok = poll_until(fetch, lambda v: v == 42, timeout=10, sleep=fake_time.sleep)
    assert (value, ok) == (42, True)
    assert len(calls) == 1
    assert fake_time.sleeps == []


def test_polls_until_done_with_fixed_interval(fake_time: FakeTime) -> None:
    values = counter([1, 2, 3, 4, 5])
    value, ok = poll_until(
        lambda: next(values), lambda v: v >= 3, timeout=10, interval=0.5, sleep=fake_time.sleep
    )
    assert (value, ok) == (3, True)
    assert fake_time.sleeps == [0.5, 0.5]


def test_timeout_returns_last_value_and_false(fake_time: FakeTime) -> None:
    fetched: list[int] = []

    def fetch() -> int:
        fetched.append(len(fetched))
        return fetched[-1]

    value, ok = poll_until(
        fetch, lambda v: v < 0, timeout=1.0, interval=0.25, sleep=fake_time.sleep
    )
    assert ok is False
    # Attempts at t=0, .25, .5, .75, 1.0; the one at 1.0 reaches the deadline and stops.
    assert fetched == [0, 1, 2, 3, 4]
    assert value == 4
    assert fake_time.sleeps == [0.25] * 4


def test_none_from_a_transient_failure_is_retried(fake_time: FakeTime) -> None:
    answers: Iterator[str | None] = iter([None, None, "n2"])
    value, ok = poll_until(
        lambda: next(answers),
        lambda v: v is not None,
        timeout=5,
        interval=1.0,
        sleep=fake_time.sleep,
    )
    assert (value, ok) == ("n2", True)
    assert fake_time.sleeps == [1.0, 1.0]


def test_exceptions_from_fetch_propagate_without_retry(fake_time: FakeTime) -> None:
    calls: list[int] = []

    def fetch() -> int:
        calls.append(1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        poll_until(fetch, lambda v: True, timeout=5, sleep=fake_time.sleep)
    assert len(calls) == 1
    assert fake_time.sleeps == []


def test_zero_timeout_makes_one_attempt(fake_time: FakeTime) -> None:
    calls: list[int] = []

    def fetch() -> int:
        calls.append(1)
        return 0

    value, ok = poll_until(fetch, lambda v: v == 1, timeout=0, sleep=fake_time.sleep)
    assert (value, ok) == (0, False)
    assert calls == [1]
    assert fake_time.sleeps == []


def test_real_clock_with_noop_sleep_still_times_out() -> None:
    """Without faking tenacity's clock: a no-op sleep must not turn a timeout into a hang."""
    slept: list[float] = []
    started = time.monotonic()
    value, ok = poll_until(
        lambda: "x", lambda v: v == "y", timeout=0.05, interval=0.01, sleep=slept.append
    )
    assert (value, ok) == ("x", False)
    assert slept
    # Fixed rate: the first wait is one interval less the probe's (tiny) time.
    assert slept[0] == pytest.approx(0.01, abs=0.005)
    assert time.monotonic() - started < 1.0


def test_fixed_rate_subtracts_the_probe_latency(fake_time: FakeTime) -> None:
    """Attempt n starts n intervals after the first, however long each probe took: a slow
    probe does not stretch the poll period (the figure stays within one interval)."""

    def slow_probe() -> bool:
        fake_time.now += 0.03  # every probe takes 30 ms
        return len(fake_time.sleeps) >= 3

    _, ok = poll_until(slow_probe, bool, timeout=5, interval=0.1, sleep=fake_time.sleep)
    assert ok
    assert fake_time.sleeps == pytest.approx([0.07, 0.07, 0.07])


def test_fixed_rate_does_not_wait_after_an_overrun(fake_time: FakeTime) -> None:
    def slower_than_the_interval() -> bool:
        fake_time.now += 0.25
        return len(fake_time.sleeps) >= 2

    poll_until(slower_than_the_interval, bool, timeout=5, interval=0.1, sleep=fake_time.sleep)
    assert fake_time.sleeps == [0.0, 0.0]
