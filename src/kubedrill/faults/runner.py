"""Inject a fault under guards, record its undo first, and heal it on every way out."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from kubedrill.cluster import Cluster
from kubedrill.errors import FaultError, GuardError
from kubedrill.faults.base import Fault, FaultPlan
from kubedrill.faults.shape import loses_quorum
from kubedrill.faults.victims import component_nodes
from kubedrill.ledger import Ledger, UndoRecord, run_steps
from kubedrill.timeline import Timeline

_DEFERRED = {signal.SIGINT, signal.SIGTERM}


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_sigterm_handler() -> None:
    """Make SIGTERM behave like ^C (KeyboardInterrupt) so every `finally` heals. pytest and
    plain Python would otherwise die on SIGTERM without running any cleanup. SIGINT gets
    Python's handler back too: a process started in the background inherits SIGINT ignored,
    and an interrupt must always mean "heal, then stop"."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold ^C and SIGTERM while a fault is half-injected or half-healed; deliver them after.

    Handlers are swapped rather than the signal mask blocked: a blocked mask would be inherited
    by every process a step starts (a delayer, `timeout`), which then could not be stopped.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in _DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            os.kill(os.getpid(), received[0])


def check_claims(plan: FaultPlan, already: list[FaultPlan]) -> None:
    """Refuse a fault that needs state an active fault already owns (one root qdisc, one hold
    file): the first undo would silently end both. Everything else composes."""
    for other in already:
        shared = sorted(plan.claims & other.claims)
        if shared:
            raise GuardError(
                f"refusing '{plan.description}': '{other.description}' already holds "
                f"{', '.join(shared)}, and undoing either fault would undo both",
                "heal that fault first, or pick another victim",
            )


def check_guards(
    cluster: Cluster,
    plan: FaultPlan,
    already: list[FaultPlan],
    *,
    allow_quorum_loss: bool,
    allow_all_replicas: bool,
) -> None:
    check_claims(plan, already)
    down = set(plan.takes_down)
    for other in already:
        down |= other.takes_down
    by_component: dict[str, list[str]] = {}
    for node, component in down:
        by_component.setdefault(component, []).append(node)
    for component, nodes in by_component.items():
        members = component_nodes(cluster, component)
        if component == "etcd":
            if loses_quorum(members, nodes) and not allow_quorum_loss:
                raise GuardError(
                    f"refusing '{plan.description}': etcd would keep "
                    f"{len(members) - len(set(nodes))} of {len(members)} members and lose quorum",
                    "a drill that means to lose quorum declares it: drill.fault(..., "
                    "allow_quorum_loss=True) / --allow-quorum-loss",
                )
        elif set(members) <= set(nodes) and not allow_all_replicas:
            raise GuardError(
                f"refusing '{plan.description}': it takes down every {component} replica",
                "declare it with allow_all_replicas=True if that is the point of the drill",
            )


@dataclass
class FaultSession:
    """Per-drill fault bookkeeping: one fault at a time unless asked, ledger, timeline marks."""

    cluster: Cluster
    timeline: Timeline
    ledger: Ledger
    dry_run: bool = False
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr))
    # Wraps the inject and heal phases (the drill passes Allure steps here).
    phase: Callable[[str], AbstractContextManager[object]] = field(
        default=lambda _title: nullcontext()
    )
    active: list[FaultPlan] = field(default_factory=list)

    def plan(self, fault: Fault) -> FaultPlan:
        return fault.plan(self.cluster)

    @contextlib.contextmanager
    def inject(
        self,
        fault: Fault | FaultPlan,
        *,
        concurrent: bool = False,
        allow_quorum_loss: bool = False,
        allow_all_replicas: bool = False,
    ) -> Iterator[FaultPlan]:
        plan = fault if isinstance(fault, FaultPlan) else self.plan(fault)
        if self.active and not concurrent:
            raise GuardError(
                f"refusing '{plan.description}': '{self.active[-1].description}' is still active",
                "pass concurrent=True when a drill means to combine faults",
            )
        check_guards(
            self.cluster,
            plan,
            self.active,
            allow_quorum_loss=allow_quorum_loss,
            allow_all_replicas=allow_all_replicas,
        )
        if self.dry_run:
            self.log("[dry-run] " + plan.render().replace("\n", "\n[dry-run] "))
            self.timeline.mark("fault.planned", fault=plan.name, victims=",".join(plan.victims))
            yield plan
            return
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            install_sigterm_handler()  # a plain script would otherwise die without healing
        injected: UndoRecord | None = None
        try:
            # A ^C or SIGTERM that arrives while injecting is delivered when the block ends,
            # which is inside this try: the fault is then healed like on any other way out.
            with self.phase(f"inject: {plan.description}"), signals_deferred():
                injected = self._inject(plan)
            yield plan
        finally:
            if injected is not None:
                self._heal(plan, injected)

    def _inject(self, plan: FaultPlan) -> UndoRecord:
        record = self.ledger.record(self.cluster.name, plan)
        self.timeline.mark("fault.injecting", fault=plan.name)
        failures = run_steps(plan.inject, log=lambda m: self.log(f"inject {m}"))
        if failures:
            undo_failures = run_steps(plan.undo, stop_on_error=False)
            if not undo_failures:
                self.ledger.remove(record)
            raise FaultError(
                f"could not inject '{plan.description}': {failures[0]}",
                "nothing is left injected"
                if not undo_failures
                else "undo failed too; run `kubedrill heal`",
            )
        self.timeline.mark("fault.injected", fault=plan.name, victims=",".join(plan.victims))
        self.active.append(plan)
        return record

    def _heal(self, plan: FaultPlan, record: UndoRecord) -> None:
        with self.phase("heal"), signals_deferred():
            self.timeline.mark("fault.healing", fault=plan.name)
            report = self.ledger.heal(record, log=lambda m: self.log(f"heal {m}"))
            # By identity: concurrent faults heal in any order, and two plans may be equal.
            self.active[:] = [p for p in self.active if p is not plan]
            self.timeline.mark("fault.healed", fault=plan.name, ok=report.ok)
        # Do not mask the exception that ended the observation; the record stays for heal.
        if not report.ok and sys.exc_info()[0] is None:
            raise FaultError(
                f"heal of '{plan.description}' failed: {'; '.join(report.failures)}",
                "run `kubedrill heal` to retry the undo record",
            )
