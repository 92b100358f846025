"""A polled figure next to the cluster's own record of the same moment.

The budget is judged on the polled figure: it is an upper bound of the real one (a poll cannot
see an event before it happened, it only adds up to one interval and a round trip), it exists
on every target, and it is what a client of the cluster experienced. The record says how much
of the figure is the probe's own delay; two figures further apart than the probe interval mean
the probe (or the clock offset) cannot be trusted to that interval, and the report says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubedrill.cluster import Cluster
from kubedrill.probes.kube import api_client
from kubedrill.server_record.clock import ClockOffsets
from kubedrill.server_record.etcd_log import first_election_after
from kubedrill.server_record.lb_log import backend_state_change
from kubedrill.server_record.lease import lease_acquired
from kubedrill.server_record.record import ServerRecord
from kubedrill.timeline import Measurement, Timeline

JUDGED_ON = "polled"
# One probe round trip on the lab's and kind's links, a loaded 2-core machine included.
ROUND_TRIP_S = 0.01


@dataclass(frozen=True)
class RecordContext:
    cluster: Cluster
    clocks: ClockOffsets
    since_wall: float  # the measurement's start, on the runner's wall clock


# Finds the record of an event, given the context and what the drill's probe returned.
RecordFinder = Callable[[RecordContext, object], ServerRecord | None]


@dataclass(frozen=True)
class Recorded:
    """A finder with the words the report uses when it finds nothing."""

    find: RecordFinder
    what: str


def etcd_election() -> Recorded:
    return Recorded(
        lambda ctx, _value: first_election_after(ctx.cluster, ctx.since_wall, ctx.clocks),
        "etcd's 'became leader' log line",
    )


def lease_acquire(name: str) -> Recorded:
    """The Lease's acquireTime; the probe must return the new LeaseState (its identity)."""

    def find(ctx: RecordContext, value: object) -> ServerRecord | None:
        holder = getattr(value, "identity", None)
        if ctx.cluster.kube is None or not holder:
            return None
        api = api_client(ctx.cluster.kube)
        try:
            found = lease_acquired(api, name, holder)
        finally:
            api.close()
        if found is None:
            return None
        # acquireTime is on the new holder's clock; its identity starts with its host name.
        offset = ctx.clocks.offset_of(holder.split("_", 1)[0])
        return ServerRecord(found.wall - offset.seconds, found.source, offset.uncertainty)

    return Recorded(find, f"Lease {name}'s acquireTime")


def lb_state(server: str, state: str) -> Recorded:
    return Recorded(
        lambda ctx, _value: backend_state_change(
            ctx.cluster, server, state, ctx.since_wall, ctx.clocks
        ),
        f"the load balancer's log of {server} going {state}",
    )


def compare(
    measurement: Measurement,
    timeline: Timeline,
    record: ServerRecord | None,
    probe_interval: float,
    what: str,
) -> dict[str, Any]:
    """The report's row: polled and recorded figure, their difference, and whether they agree
    to within the probe interval (plus the clock's uncertainty, for a remote node)."""
    row: dict[str, Any] = {
        "measurement": measurement.name,
        "event": measurement.end_event,
        "polled_s": round(measurement.seconds, 3),
        "probe_interval_s": probe_interval,
        "judged_on": JUDGED_ON,
    }
    if record is None:
        return row | {"server_s": None, "agrees": None, "source": f"no record found ({what})"}
    start = timeline.first(measurement.start_event)
    assert start is not None  # a measurement exists only between two marks
    server_s = record.wall - (timeline.wall_start + start.offset)
    difference = measurement.seconds - server_s
    # A poll sees an event at most one interval and one round trip after it happened.
    slack = probe_interval + ROUND_TRIP_S + record.clock_uncertainty_s
    return row | {
        "server_s": round(server_s, 3),
        "difference_s": round(difference, 3),
        "clock_uncertainty_s": round(record.clock_uncertainty_s, 3),
        "source": record.source,
        # Early by more than the clock's uncertainty is as wrong as late by more than the
        # interval: the probe saw something other than the recorded event.
        "agrees": -record.clock_uncertainty_s - 0.005 <= difference <= slack,
    }
