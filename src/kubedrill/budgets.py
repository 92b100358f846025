"""Timing budgets: the product's assertions.

Defaults come from the seed document (new etcd leader < 15 s, controller lease takeover < 30 s,
recovery < 1 min). They can be overridden in pyproject/ini (`kubedrill_budgets`), per run
(`--budget NAME=SECONDS`) and per drill (`@pytest.mark.budget(NAME=SECONDS)`), in that order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubedrill.errors import ConfigError

DEFAULT_BUDGETS: Mapping[str, float] = {
    "leader_election": 15.0,  # etcd: a new leader after the old one is lost
    "detect": 15.0,  # a component failure is noticed (LB marks down, lease expires)
    "lease_takeover": 30.0,  # controller/scheduler Lease has a new holder
    "recovery": 60.0,  # the cluster is fully back after heal
    "api_recovery": 60.0,  # /readyz through the load balancer is OK again
    # A lost zone's pods run in the surviving zones again: the node lifecycle's grace period
    # plus the pods' unreachable toleration plus scheduling. Sized for the zone drill's lab
    # (10 s + 10 s, fixtures/labs/zones.yaml), after a lost controller-manager leader's Lease
    # takeover (15 s + 2 s); upstream defaults (50 s + 300 s) need ~400 s.
    "reschedule": 90.0,
    # Disaster recovery (RTO): a lost quorum restored from a snapshot until writes are
    # accepted again; the seed's RTO target for its multi-region mode is < 5 min.
    "disaster_recovery": 300.0,
    # A whole region dark: API writes through the surviving regions accepted again (the
    # seed's multi-region RTO, < 5 min), and the returning region's members caught up.
    "region_rto": 300.0,
    "region_catch_up": 300.0,
    # One API request through the load balancer, as the maintenance drills' clients wait for
    # it: a slower answer is a failed request ("timeout"). A stricter client (a probe, an
    # operator with a short deadline) is `--budget request=2s`.
    "request": 5.0,
    # Not a failover figure: how long a drill waits for a healthy cluster before its fault
    # (the previous drill's aftermath may still be settling); past it the drill is skipped.
    "settle": 30.0,
}

_DURATION = re.compile(r"^\s*(?P<value>-?[0-9]*\.?[0-9]+)\s*(?P<unit>ms|s|m)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration(text: str | float | int, *, field: str) -> float:
    """Parse '15', '15s', '1.5s', '500ms', '1m' into seconds; reject negatives and junk."""
    if isinstance(text, bool):
        raise ConfigError(f"budget {field!r}: {text!r} is not a duration", _DURATION_HINT)
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _DURATION.match(text)
        if match is None:
            raise ConfigError(f"budget {field!r}: {text!r} is not a duration", _DURATION_HINT)
        value = float(match["value"]) * _UNIT_SECONDS[match["unit"]]
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"budget {field!r}: {text!r} must be a positive duration", _DURATION_HINT)
    return value


_DURATION_HINT = "write a positive number of seconds, e.g. 15, 15s, 500ms or 1m"


@dataclass(frozen=True)
class Budgets:
    """Resolved budgets in seconds, by name."""

    limits: Mapping[str, float]

    @classmethod
    def defaults(cls) -> Budgets:
        return cls(dict(DEFAULT_BUDGETS))

    def overridden(self, overrides: Mapping[str, str | float | int]) -> Budgets:
        merged = dict(self.limits)
        for name, raw in overrides.items():
            if name not in DEFAULT_BUDGETS:
                known = ", ".join(sorted(DEFAULT_BUDGETS))
                raise ConfigError(f"unknown budget {name!r}", f"known budgets: {known}")
            merged[name] = parse_duration(raw, field=name)
        return Budgets(merged)

    def __getitem__(self, name: str) -> float:
        try:
            return self.limits[name]
        except KeyError:
            known = ", ".join(sorted(self.limits))
            raise ConfigError(f"unknown budget {name!r}", f"known budgets: {known}") from None


def parse_assignments(items: Iterable[str], *, source: str) -> dict[str, str]:
    """Parse ['leader_election=10s', ...] as given on the command line or in ini files."""
    parsed: dict[str, str] = {}
    for item in items:
        for part in item.split():
            name, sep, value = part.partition("=")
            if not sep or not name or not value:
                raise ConfigError(
                    f"{source}: {part!r} is not NAME=DURATION",
                    "e.g. --budget leader_election=10s",
                )
            parsed[name.strip()] = value.strip()
    return parsed
