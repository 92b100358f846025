"""The wrong way round of a member replacement (issue #13): a member whose data is lost, started
again as if nothing happened -- an empty data dir under its old identity. etcd refuses it: with
its old flags (`--initial-cluster-state=new`) it finds its old identity still bootstrapped in the
cluster (or, if it was replaced before, removed) and exits; told `existing` without being
removed and added again, its empty raft log meets the leader's commit index and it panics.

`refusal_in_log` reads which from etcd's own structured log (`--logger=zap`, one JSON object a
line); `wrong_way_outcome` is what a drill polls, with a bound, after such a start.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kubedrill.disaster.membership import MembershipError
from kubedrill.probes.etcd import STATUS_PATH, EtcdClient, EtcdError

# What etcd says when a member it must not accept tries to join (etcd's own words, matched in
# its structured log), and what it means for the person reading the report.
REFUSALS = (
    ("has already been bootstrapped", "its old identity is still a bootstrapped member"),
    ("is out of range [lastIndex", "its raft log is lost: the leader's commit index is past it"),
    # Old flags after the cluster was restored under a new token: its first identity is no
    # member at all, so it bootstraps a cluster of its own, which every peer turns away.
    ("cluster ID mismatch", "it bootstrapped a cluster of its own, which its peers refuse"),
    ("has been permanently removed", "its old identity was removed from the cluster"),
    ("member count is unequal", "its --initial-cluster does not match the cluster"),
)


@dataclass(frozen=True)
class Refusal:
    """How the wrong way round ended: etcd refused the member (`refused`, it exited), or the
    member served. `reason` is etcd's own words for why (a known refusal, when its log has one
    before the exit), `exit` the line it ended with."""

    refused: bool
    reason: str
    meaning: str = ""
    exit: str = ""

    def __str__(self) -> str:
        if not self.refused:
            return f"NOT refused: {self.reason}"
        why = f" ({self.meaning})" if self.meaning else ""
        ended = f"; it exited: {self.exit}" if self.exit and self.exit != self.reason else ""
        return f"etcd refused it: {self.reason}{why}{ended}"


LOGGED = ("warn", "error", "dpanic", "panic", "fatal")
ENDS = ("dpanic", "panic", "fatal")


def refusal_in_log(lines: Iterable[str]) -> Refusal | None:
    """etcd's refusal in its JSON log (`--logger=zap`): the first known refusal it logged (from
    warn up), with the fatal or panic line it ended on when that is among `lines` (a removed
    member logs why as a warning, then exits on "server is stopping"); a fatal or panic line
    with no known reason before it; None while neither. A known refusal counts without an exit:
    a member that bootstrapped a cluster of its own keeps running, refused by every peer."""
    known: tuple[str, str] | None = None
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("level") not in LOGGED:
            continue
        msg, error = str(entry.get("msg", "")), str(entry.get("error", ""))
        said = f"{msg}: {error}" if error else msg
        meaning = next((m for text, m in REFUSALS if text in said), "")
        if meaning and known is None:
            known = (said, meaning)
        if entry["level"] in ENDS:
            ended = f"{entry['level']}: {said}"
            return Refusal(True, known[0], known[1], ended) if known else Refusal(True, ended)
    return Refusal(True, *known) if known else None


def wrong_way_outcome(
    etcd: EtcdClient, node: str, log: Callable[[], str], cluster_id: str
) -> Refusal | None:
    """Polled after the wiped member was started the wrong way: etcd's refusal once it is in
    the member's log; a Refusal that is *not* one when the member serves instead (as a member
    of another cluster, or of this one: either way it joined with data it does not have);
    None while neither."""
    found = refusal_in_log(log().splitlines())
    if found is not None:
        return found
    try:
        status = etcd.call(node, STATUS_PATH, {}, timeout=0.5)
    except EtcdError:
        return None
    serving_in = str(status.get("header", {}).get("cluster_id", ""))
    other = "another cluster" if serving_in != cluster_id else "this cluster"
    return Refusal(False, f"{node} serves clients as a member of {other} (cluster {serving_in})")


def cluster_id(etcd: EtcdClient, via: Iterable[str]) -> str:
    for node in via:
        try:
            return str(etcd.call(node, STATUS_PATH, {})["header"]["cluster_id"])
        except (EtcdError, KeyError):
            continue
    raise MembershipError("no member answered its status", "kubedrill lab status")
