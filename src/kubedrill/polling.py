"""Polling, only through tenacity: fetch a value until a predicate holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay

T = TypeVar("T")


def fixed_rate(interval: float) -> Callable[[RetryCallState], float]:
    """A tenacity wait that starts attempt n at n * `interval` after the first (or at once when
    an attempt overran): the probe's own latency does not stretch the interval, so an event is
    seen at most one interval (plus that latency) after it happened."""

    def wait(state: RetryCallState) -> float:
        finished = state.outcome_timestamp or time.monotonic()
        return max(0.0, state.start_time + state.attempt_number * interval - finished)

    return wait


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, bool]:
    """Return (last value, whether `done` held). Exceptions from `fetch` propagate: a fetch
    that can fail transiently returns a value that says so (e.g. None) instead of raising."""

    def last_value(state: RetryCallState) -> T:
        assert state.outcome is not None
        value: T = state.outcome.result()
        return value

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=fixed_rate(interval),
        retry=retry_if_result(lambda value: not done(value)),
        retry_error_callback=last_value,
        sleep=sleep,
    )
    value = retrying(fetch)
    return value, done(value)
