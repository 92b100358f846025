"""The lab supervisor's restart back-off (kubelet-like, shorter)."""

from __future__ import annotations

import pytest

from kubedrill.targets.lab.config import SupervisorSettings
from kubedrill.targets.lab.supervisor import Backoff, next_delay

BACKOFF = Backoff(initial=0.5, maximum=10.0, reset_after=30.0)


def test_first_start_uses_initial() -> None:
    assert next_delay(0.0, 0.0, BACKOFF) == 0.5


def test_doubles_per_quick_crash_and_caps() -> None:
    delays = []
    delay = 0.0
    for _ in range(8):
        delay = next_delay(delay, 1.0, BACKOFF)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_cap_is_exact_when_doubling_overshoots() -> None:
    assert next_delay(6.0, 0.1, BACKOFF) == 10.0
    assert next_delay(10.0, 0.1, BACKOFF) == 10.0


@pytest.mark.parametrize("ran_for", [30.0, 30.001, 3600.0])
def test_long_run_resets(ran_for: float) -> None:
    assert next_delay(8.0, ran_for, BACKOFF) == 0.5
    assert next_delay(10.0, ran_for, BACKOFF) == 0.5


def test_just_under_reset_keeps_doubling() -> None:
    assert next_delay(4.0, 29.999, BACKOFF) == 8.0


@pytest.mark.parametrize("previous", [0.0, -1.0])
def test_no_previous_delay_uses_initial(previous: float) -> None:
    assert next_delay(previous, 5.0, BACKOFF) == 0.5


def test_other_settings() -> None:
    b = Backoff(initial=2.0, maximum=5.0, reset_after=1.0)
    assert next_delay(0, 0, b) == 2.0
    assert next_delay(2.0, 0.5, b) == 4.0
    assert next_delay(4.0, 0.5, b) == 5.0
    assert next_delay(5.0, 1.0, b) == 2.0


def test_defaults_from_lab_config_match() -> None:
    s = SupervisorSettings()
    b = Backoff(s.backoff_initial_s, s.backoff_max_s, s.reset_after_s)
    assert b == BACKOFF
