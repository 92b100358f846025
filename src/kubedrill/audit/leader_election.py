"""Leader election on for kube-controller-manager and kube-scheduler: their Leases in
kube-system exist, have a holder, and are being renewed (read twice, until renewTime moves, at
most one lease duration apart), and no control-plane node runs either with
`--leader-elect=false` (read from the real command lines where the target can read them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubedrill.audit.finding import Judgement
from kubedrill.audit.flags import is_false

COMPONENTS = ("kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class LeaseWatch:
    """What two reads of one Lease showed."""

    found: bool
    holder: str = ""
    duration_s: int = 0
    first_renew: str = ""
    last_renew: str = ""
    waited_s: float = 0.0

    @property
    def renewed(self) -> bool:
        return bool(self.first_renew) and self.last_renew != self.first_renew


def judge_component(
    component: str, lease: LeaseWatch, leader_elect: Mapping[str, str | None]
) -> Judgement:
    """`leader_elect`: node -> the --leader-elect value on its command line ("<unset>" when
    the flag is absent; the default is true), or None when the command line was unreadable."""
    off = sorted(n for n, v in leader_elect.items() if is_false(v))
    read = sorted(n for n, v in leader_elect.items() if v is not None)
    flags = (
        f"--leader-elect not false on {', '.join(read)}"
        if read and not off
        else "command lines not readable"
        if not read
        else ""
    )
    if off:
        return Judgement(
            "fail",
            f"{component} runs with --leader-elect=false on {', '.join(off)}",
            f"set --leader-elect=true on every {component}: without it each instance acts "
            "as the leader",
        )
    if not lease.found:
        return Judgement(
            "fail",
            f"no Lease kube-system/{component}; {flags}",
            f"run {component} with --leader-elect=true (Lease lock) on every control-plane node",
        )
    if not lease.holder:
        return Judgement(
            "fail",
            f"Lease kube-system/{component} has no holder; {flags}",
            f"check that {component} runs and can reach the apiserver",
        )
    if not lease.renewed:
        return Judgement(
            "fail",
            f"Lease kube-system/{component} held by {lease.holder} not renewed in "
            f"{lease.waited_s:.1f} s (renewTime {lease.first_renew or 'unset'}); {flags}",
            f"look at the leader's {component} log: it holds the Lease but does not renew it",
        )
    return Judgement(
        "pass",
        f"Lease held by {lease.holder}, renewed within {lease.waited_s:.1f} s "
        f"({lease.first_renew} -> {lease.last_renew}); {flags}",
    )
