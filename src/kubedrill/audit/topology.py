"""How many control-plane nodes, in how many failure domains, and how many etcd members (the
seed's checklist: 3+ control-plane nodes across failure domains; etcd 3-5 members, odd)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from kubedrill.audit.finding import Judgement

ZONE_LABEL = "topology.kubernetes.io/zone"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def judge_control_planes(target_nodes: Sequence[str], api_nodes: Sequence[str] | None) -> Judgement:
    """The target's control-plane nodes and, where there is Kubernetes, the Nodes carrying the
    control-plane role label."""
    count = len(target_nodes)
    evidence = f"{count} control-plane node(s): {', '.join(target_nodes) or 'none'}"
    if api_nodes is not None:
        evidence += f"; Nodes labelled control-plane in the API: {len(api_nodes)}"
    if count >= 3:
        return Judgement("pass", evidence)
    return Judgement(
        "fail",
        evidence,
        f"add control-plane nodes up to at least 3 (it has {count}): with fewer, losing one "
        "node loses the control plane",
    )


def judge_zones(zones: Mapping[str, str | None], *, note: str = "") -> Judgement:
    """Control-plane Node -> its zone label (None: unlabelled). Pass when no zone holds a
    majority of them (one zone's outage leaves a majority); warn when zones are unknown or one
    holds a majority; fail when they all share one zone."""
    if not zones:
        return Judgement(
            "warn",
            f"unknown: no Node carries the {CONTROL_PLANE_LABEL} label{note}",
            f"label the control-plane Nodes ({CONTROL_PLANE_LABEL}) and their zones ({ZONE_LABEL})",
        )
    missing = sorted(n for n, z in zones.items() if not z)
    if missing:
        return Judgement(
            "warn",
            f"no {ZONE_LABEL} label on {', '.join(missing)}{note}",
            f"label every control-plane Node with its {ZONE_LABEL} and place them in 3 zones",
        )
    counts = Counter(z for z in zones.values() if z)
    spread = ", ".join(f"{z}: {c}" for z, c in sorted(counts.items()))
    majority = len(zones) // 2 + 1
    if len(counts) == 1 and len(zones) > 1:
        return Judgement(
            "fail",
            f"all {len(zones)} control-plane Nodes in zone {next(iter(counts))}{note}",
            "spread the control-plane nodes over 3 zones: one zone's outage takes them all now",
        )
    heavy = [z for z, c in counts.items() if c >= majority]
    if heavy:
        return Judgement(
            "warn",
            f"zone {heavy[0]} holds {counts[heavy[0]]} of {len(zones)} control-plane Nodes "
            f"({spread}){note}",
            f"move control-plane nodes so that no zone holds {majority} of them",
        )
    return Judgement("pass", f"{len(counts)} zones ({spread}){note}")


def judge_members(members: Mapping[str, bool], asked: str) -> Judgement:
    """Member name -> is a learner, from `member list` asked of `asked`."""
    voters = sorted(n for n, learner in members.items() if not learner)
    learners = sorted(n for n, learner in members.items() if learner)
    count = len(voters)
    evidence = f"{count} voting member(s) ({', '.join(voters)}), member list from {asked}"
    if learners:
        evidence += f"; learners: {', '.join(learners)}"
    if count == 1:
        return Judgement("fail", evidence, "run 3 or 5 members: one member has no redundancy")
    if count % 2 == 0:
        other = f" or {count - 1}" if count > 3 else ""
        return Judgement(
            "fail",
            evidence,
            f"run {count + 1}{other} members: {count} members tolerate no more failures than "
            f"{count - 1} and need a larger quorum",
        )
    if count > 7:
        return Judgement(
            "warn", evidence, "run 5 or 7 members: each one more slows every write (seed: 3-5)"
        )
    return Judgement("pass", evidence)
