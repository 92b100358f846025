"""One server-side record of an event, on the runner's clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerRecord:
    """`wall` is the moment in the runner's wall-clock time (a remote node's clock already
    corrected by its measured offset); `clock_uncertainty_s` says how well that is known
    (0 when the component logs on the runner's own kernel clock: the lab, kind)."""

    wall: float
    source: str  # what said so, e.g. "etcd log on etcd-2: became leader at term 5"
    clock_uncertainty_s: float = 0.0


def parse_time(text: str) -> float | None:
    """RFC 3339 / ISO 8601 with any fraction (etcd's zap "ts", HAProxy's iso log header,
    Kubernetes MicroTime) as epoch seconds; None when it is not one."""
    try:
        return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
