"""A certificate that expires during the drill: one host's cert re-issued valid for a minute or
two (lab target: kubedrill holds the lab's CA). The undo re-issues it with the lab's validity,
through `kubedrill certs renew` (its module, run by itself), so `kubedrill heal` repairs it
after a SIGKILL too."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubedrill.faults.base import FaultPlan
from kubedrill.faults.shape import Selector
from kubedrill.faults.victims import (
    resolve_victims,
    unavailable_victims,
)
from kubedrill.targets.lab import certs
from kubedrill.transport.step import Step

if TYPE_CHECKING:
    from kubedrill.cluster import Cluster


# A Python start and an ECDSA signature: a second or two, more on a loaded machine.
STEP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ExpireCert:
    """Re-issue `kind` (a `certs.KINDS` name) on the victims valid for `valid_for_s` seconds
    from now: it expires while the drill watches."""

    kind: str
    victims: Selector = field(default_factory=lambda: Selector("one"))
    valid_for_s: float = 90.0

    @property
    def component(self) -> str:
        return certs.KINDS[self.kind][2]

    @property
    def name(self) -> str:
        return f"expire {self.kind} cert"

    def available(self, cluster: Cluster) -> str | None:
        from kubedrill.targets.lab.control import LabControl  # noqa: PLC0415 - lab-only fault

        if not isinstance(cluster.control, LabControl):
            return f"kubedrill does not hold the {cluster.target} target's CA to issue with"
        return unavailable_victims(cluster, self.component, self.victims)

    def plan(self, cluster: Cluster) -> FaultPlan:
        from kubedrill.targets.lab.control import LOCAL, LabControl  # noqa: PLC0415

        assert isinstance(cluster.control, LabControl)
        state_dir = cluster.control.state_dir
        chosen = resolve_victims(cluster, self.component, self.victims).names
        inject: list[Step] = []
        undo: list[Step] = []
        for name in chosen:
            certs.lab_cert(state_dir, name, self.kind)  # the file is there, before anything
            renew = (
                sys.executable, "-m", "kubedrill.certs_cli", "renew", "--state-dir",
                str(state_dir), "--host", name, "--kind", self.kind,
            )  # fmt: skip
            short = (*renew, "--valid-for", f"{self.valid_for_s:g}")
            inject.append(Step(LOCAL, short, timeout=STEP_TIMEOUT_S))
            undo.append(Step(LOCAL, renew, timeout=STEP_TIMEOUT_S))
        return FaultPlan(
            name=self.name,
            victims=chosen,
            description=f"{self.kind} certificate of {', '.join(chosen)} valid for only "
            f"{self.valid_for_s:g} s",
            inject=tuple(inject),
            undo=tuple(undo),
            claims=frozenset(f"{self.kind} certificate on {n}" for n in chosen),
            data={"kind": self.kind, "valid_for_s": f"{self.valid_for_s:g}"},
        )
