"""A drill: steady state, inject, observe, heal, verify -- with measured figures and budgets.

Plain Python, usable without pytest: the pytest plugin only builds a `Drill` and turns
`SteadyStateError` into a skip. With `dry_run` the whole body is walked and written down
(kubedrill.dry_run) instead of done.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from kubedrill import error_budget
from kubedrill.budgets import Budgets
from kubedrill.checks.alert_rules import AlertRulesCheck
from kubedrill.checks.alerts import AlertReport
from kubedrill.checks.base import Check, CheckContext, HasAttachments, Recorder
from kubedrill.checks.consistency import NAME as CONSISTENCY
from kubedrill.checks.consistency import ConsistencyCheck
from kubedrill.checks.etcd_data import AcknowledgedWritesCheck, HashKvCheck
from kubedrill.checks.leader_crosscheck import LeaderChangeCheck
from kubedrill.checks.server_record import Expected, ServerRecordCheck
from kubedrill.checks.verdict import Attachment, Verdict
from kubedrill.cluster import Cluster
from kubedrill.consistency.workload import ConsistencyWorkload, WorkloadRates, run_id
from kubedrill.dry_run import DryRunWalk, DryValue
from kubedrill.errors import KubedrillError
from kubedrill.faults.base import Fault, FaultPlan
from kubedrill.faults.runner import FaultSession
from kubedrill.ledger import Ledger
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import EtcdClient
from kubedrill.probes.kube import KubeProbes
from kubedrill.report import allure_report
from kubedrill.runner_cpu import RunnerCpu
from kubedrill.server_record.compare import Recorded
from kubedrill.timeline import Mark, Measurement, Timeline
from kubedrill.workload.api_reader import ApiReader
from kubedrill.workload.etcd_writer import EtcdWriter
from kubedrill.workload.history import Operation, longest_unavailability
from kubedrill.workload.metrics_recorder import MetricsRecorder

T = TypeVar("T")
R = TypeVar("R", bound=Recorder)


class SteadyStateError(KubedrillError):
    """The cluster was unhealthy before the fault: the drill is skipped, not failed."""


class FaultUnavailableError(SteadyStateError):
    """The target cannot carry the drill's fault (e.g. no packet delay there): skipped, with
    the reason, instead of failing half-way through an injection."""


# Budgets of the quick moments a failover is judged by (a new leader within about a second, a
# backend marked down): polled at the drill's fine interval. A Lease changes hands after its
# lease duration (15 s by default), and each poll is an API request: the drill's interval.
FINE_POLL_BUDGETS = frozenset({"leader_election", "detect"})


class DrillFailure(AssertionError):
    """A budget was breached or an expected event never happened. Carries the timeline."""


class Watch:
    """One event polled in a background thread from the moment the drill asked (see
    `Drill.watch`); bounded by its limit, so it stops by itself."""

    def __init__(
        self,
        event: str,
        probe: Callable[[], object],
        timeline: Timeline,
        limit: float,
        interval: float,
        walk: DryRunWalk | None = None,
        progress: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.event, self.probe, self.timeline = event, probe, timeline
        self.progress = progress
        self.walk = walk  # a dry run's: the wait is written down, not done
        self.limit, self.interval = limit, interval
        self.seen = threading.Event()
        self.value: object = None  # what the probe returned when the event was seen
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{event}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        def probe() -> object:
            try:
                return self.probe()
            finally:
                self.ready.set()  # one round done: this thread's connections are made

        value, ok = poll_until(probe, bool, timeout=self.limit, interval=self.interval)
        if ok:
            self.timeline.mark(self.event, watched=True)
            self.value = value
            self.seen.set()

    def wait(self) -> None:
        if self.walk is not None:
            self.walk.add("wait", f"{self.event} (watched since it was started)")
            return
        if not self.seen.is_set():
            self.progress(f"waiting for {self.event} (watched since it was started)")
        self._thread.join(self.limit + 5)
        if not self.seen.is_set():
            self.timeline.mark(f"{self.event}.timeout")
            raise DrillFailure(
                f"{self.event} did not happen within {self.limit:.1f} s\n{self.timeline.render()}"
            )


@dataclass(frozen=True)
class BudgetResult:
    measurement: Measurement
    budget_name: str
    budget_s: float

    @property
    def within(self) -> bool:
        return self.measurement.within(self.budget_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.measurement.name,
            "seconds": round(self.measurement.seconds, 3),
            "from": self.measurement.start_event,
            "to": self.measurement.end_event,
            "budget": self.budget_name,
            "budget_s": self.budget_s,
            "within": self.within,
        }


@dataclass(frozen=True)
class PlannedCheck:
    check: Check
    # An advisory check's invalid verdict is reported but does not fail the drill: it judges
    # one of the drill's own figures (the leader cross-check), not the cluster.
    advisory: bool = False


@dataclass
class Drill:
    name: str
    cluster: Cluster
    budgets: Budgets
    ledger: Ledger = field(default_factory=Ledger)
    dry_run: bool = False
    poll_interval: float = 0.1
    timeline: Timeline = field(default_factory=Timeline)
    results: list[BudgetResult] = field(default_factory=list)
    observations: dict[str, Any] = field(default_factory=dict)
    faults_planned: list[FaultPlan] = field(default_factory=list)
    _etcd: EtcdClient | None = None
    _kube: KubeProbes | None = None
    _writers: list[EtcdWriter] = field(default_factory=list)
    _readers: list[ApiReader] = field(default_factory=list)
    consistency: ConsistencyWorkload | None = None
    consistency_opt_out: str | None = None  # the reason a drill gave for skipping the checks
    metrics: MetricsRecorder | None = None
    recorders: list[Recorder] = field(default_factory=list)
    checks: list[PlannedCheck] = field(default_factory=list)  # run by finish(), in order
    verdicts: list[Verdict] = field(default_factory=list)  # every check's, in the order run
    finished: bool = False
    # Events timed against these budgets are polled every `fine_poll_interval`: their figure
    # is within one interval of the moment, and 100 ms is the resolution a team relies on.
    fine_poll_interval: float = 0.05
    _alert_check: AlertRulesCheck | None = None
    _members_before_attached: bool = False
    _expected_records: dict[str, Expected] = field(default_factory=dict)
    walk: DryRunWalk = field(default_factory=DryRunWalk)  # a dry run's steps, in order
    # Where the drill's phases go while it runs (the pytest plugin: live to the terminal).
    progress: Callable[[str], None] = lambda _m: None

    def __post_init__(self) -> None:
        self.session = FaultSession(
            self.cluster, self.timeline, self.ledger, self.dry_run, phase=allure_report.step
        )
        if self.dry_run:
            # The walk says it all (and is printed without -s); the session's own log would
            # repeat every fault on stderr.
            self.session.log = lambda _message: None
            self.timeline.listeners.append(self._walk_mark)
            return
        self.timeline.listeners.append(self._progress_mark)
        self.session.log = lambda message: self.progress(f"{self.name}: {message}")
        # The runner's own CPU, by thread category, over the run and while the fault is held.
        self.add_recorder(
            RunnerCpu(
                timeline=self.timeline,
                workload_requests=lambda: (
                    len(self.consistency.operations()) if self.consistency is not None else 0
                ),
            )
        )
        # Each budgeted figure next to the cluster's own record of its moment (after heal;
        # advisory: the budget is judged on the polled figure).
        self.add_check(
            ServerRecordCheck(
                self.cluster, lambda: [r.measurement for r in self.results], self._expected_records
            ),
            advisory=True,
        )

    def _progress_mark(self, mark: Mark) -> None:
        """Every mark, live (a drill sets a few dozen: its phases, and what it measured)."""
        detail = " ".join(f"{k}={v}" for k, v in mark.data.items())
        self.progress(f"{self.name}: +{mark.offset:.3f} s {mark.event} {detail}".rstrip())

    def _walk_mark(self, mark: Mark) -> None:
        """A mark the drill body sets itself (e.g. the game day's `t2.begin`), where it sets
        it: assertions name these."""
        if not mark.event.startswith("fault."):
            self.walk.add("mark", mark.event)

    # -- probes --------------------------------------------------------------------------------

    @property
    def etcd(self) -> EtcdClient:
        if self._etcd is None:
            self._etcd = EtcdClient(self.cluster.etcd, timeout=0.8)
        return self._etcd

    @property
    def kube(self) -> KubeProbes:
        """Kubernetes probes; a drill on a cluster without Kubernetes is skipped."""
        if self.cluster.kube is None:
            raise SteadyStateError(
                f"{self.cluster.name} has no Kubernetes control plane",
                "bring the lab up with --topology stacked (or external)",
            )
        if self._kube is None:
            self._kube = KubeProbes(
                self.cluster.kube,
                self.cluster.facts.workload_image,
                # A dry run reads (who holds a Lease) but writes nothing: it writes it down.
                instead_of_writing=(lambda what: self.walk.add("write", what))
                if self.dry_run
                else None,
            )
        return self._kube

    def api_reader(self, *, interval: float = 0.05, max_duration: float = 300.0) -> ApiReader:
        """Background API requests through the load balancer, every one recorded."""
        assert self.cluster.kube is not None
        reader = ApiReader(
            access=self.cluster.kube,
            timeline=self.timeline,
            interval=interval,
            max_duration=max_duration,
            name=f"api-reader-{len(self._readers) + 1}",
        )
        if self.dry_run:
            self.walk.add("background", f"API reader through the load balancer, every {interval} s")
            return reader  # never started: it has no history
        self._readers.append(reader)
        return reader.start()

    def operations(self) -> list[Operation]:
        """Every operation any of the drill's clients recorded: its own writers and API
        readers, and the consistency workload."""
        ops = [op for writer in self._writers for op in writer.history()]
        ops += self.api_reader_ops()
        if self.consistency is not None:
            ops += self.consistency.operations()
        return ops

    def api_reader_ops(self) -> list[Operation]:
        """Every operation of the drill's API readers so far."""
        return [op for reader in self._readers for op in reader.history()]

    def assert_api_available(self) -> None:
        """Report the API readers' figures; their longest run of failed requests must stay
        under the `detect` budget (the load balancer must route around a dead backend)."""
        if self.dry_run:
            self.walk.add(
                "assert",
                "API through the load balancer: no run of failed requests as long as "
                f"detect ({self.budgets['detect']:g} s)",
            )
            return
        ops = self.api_reader_ops()
        window = longest_unavailability(ops)
        longest = round(window.seconds, 3) if window else 0.0
        self.observe("api_requests", len(ops))
        self.observe("api_requests_failed", sum(not op.ok for op in ops))
        self.observe("api_longest_failed_run_s", longest)
        if not ops:
            raise DrillFailure("the API client made no request")
        if longest >= self.budgets["detect"]:
            raise DrillFailure(
                f"budget breached: the API through the load balancer failed for {longest} s in "
                f"a row, budget detect is {self.budgets['detect']} s\n{self.timeline.render()}"
            )

    def writer(
        self, *, interval: float = 0.05, max_duration: float = 300.0, attempt_timeout: float = 1.0
    ) -> EtcdWriter:
        """A background writer recording every put; stopped at the end of the drill. A long
        `attempt_timeout` measures a slow put's latency instead of giving up on it."""
        prefix = f"/kubedrill/{self.name}/{int(time.time() * 1000)}"
        writer = EtcdWriter(
            client=self.etcd,
            timeline=self.timeline,
            prefix=prefix,
            interval=interval,
            max_duration=max_duration,
            name=f"writer-{len(self._writers) + 1}",
            attempt_timeout=attempt_timeout,
        )
        if self.dry_run:
            self.walk.add("background", f"etcd writer under {prefix}, every {interval} s")
            return writer  # never started: it writes nothing
        self._writers.append(writer)
        return writer.start()

    # -- phases --------------------------------------------------------------------------------

    def steady_state(
        self, description: str, check: Callable[[], bool], *, timeout: float | None = None
    ) -> None:
        """Wait (up to the `settle` budget) for the cluster to be healthy; if it is not, skip
        with the reason."""
        timeout = self.budgets["settle"] if timeout is None else timeout
        if self.dry_run:
            self.walk.add(
                "steady state", description, f"must hold within {timeout:g} s, else skipped"
            )
            return
        with allure_report.step(f"steady state: {description}"):
            _, ok = poll_until(check, bool, timeout=timeout, interval=self.poll_interval * 2)
            if not ok:
                raise SteadyStateError(
                    f"cluster unhealthy before the fault: {description} did not hold within "
                    f"{timeout:.0f} s",
                    "fix the cluster (kubedrill lab status) and rerun",
                )
            self.timeline.mark("steady_state.ok", check=description)
            if not self._members_before_attached:
                self._members_before_attached = True
                allure_report.attach_text("etcd members before the fault", self.member_table())

    @contextlib.contextmanager
    def fault(self, fault: Fault, **guards: bool) -> Iterator[FaultPlan]:
        """Inject, yield for observation, and heal on every way out."""
        reason = fault.available(self.cluster)
        if reason is not None:
            raise FaultUnavailableError(f"{fault.name}: {reason}", "")
        plan = self.session.plan(fault)
        self.faults_planned.append(plan)
        allure_report.attach_text(f"fault plan: {plan.name}", plan.render())
        if self.dry_run:
            self.walk.add("inject", plan.description, *(s.render() for s in plan.inject))
        try:
            with self.session.inject(plan, **guards) as active, allure_report.step("observe"):
                yield active
        finally:
            if self.dry_run:
                self.walk.add("undo", plan.description, *(s.render() for s in plan.undo))

    @contextlib.contextmanager
    def verify(self, title: str = "verify") -> Iterator[None]:
        if self.dry_run:
            self.walk.add("verify", title)
        with allure_report.step(title):
            yield

    def choose(self, description: str, pick: Callable[[], T]) -> T | str:
        """A choice made from what the drill observed (e.g. the node running most of a
        Deployment's pods). A dry run observed nothing: it shows the description instead."""
        if self.dry_run:
            self.walk.add("choose", description)
            return f"<{description}>"
        return pick()

    def act(self, description: str, action: Callable[[], T], *, dry: T) -> T:
        """Do something to the cluster that is not a fault with undo commands (fill etcd's
        quota, run a runbook step) and return its result. A dry run does nothing: it writes
        the description down and returns `dry`, a stand-in of the same type."""
        if self.dry_run:
            self.walk.add("act", description)
            return dry
        with allure_report.step(description):
            return action()

    def runbook(self, steps: Iterable[tuple[str, str, Callable[[], object]]]) -> None:
        """Carry out a runbook: each (name, what, do) step acted (a dry run writes it down),
        marked `runbook.<name>` and timed (`runbook_<name>_s`); a step's result (its
        `detail`, or the text it returned) is observed as `runbook_<name>`. Marks
        `runbook.started` first, for budgets counted from it."""
        self.timeline.mark("runbook.started")
        for name, what, do in steps:
            started = time.monotonic()
            result = self.act(f"runbook: {what}", do, dry=None)
            detail = str(getattr(result, "detail", result) or "")
            self.timeline.mark(f"runbook.{name}", detail=detail)
            self.observe(f"runbook_{name}_s", round(time.monotonic() - started, 3))
            if detail:
                self.observe(f"runbook_{name}", detail)

    # -- observation ---------------------------------------------------------------------------

    def wait_for(
        self,
        event: str,
        probe: Callable[[], T | None],
        *,
        budget: str | None = None,
        timeout: float | None = None,
        record: Recorded | None = None,
        **data: Any,
    ) -> T:
        """Poll `probe` until it returns something truthy; mark `event` then and return it.

        Polling goes on past the budget (to twice it, at least 10 s more), so a breach is
        reported with the figure actually measured rather than just "timed out". `record`
        says where the cluster itself records the event (kubedrill.server_record.compare):
        a figure that ends at it is reported next to that record.
        """
        limit = self._limit(budget, timeout)
        interval = self._interval(budget)
        if self.dry_run:
            self.walk.add("wait", event, self._wait_terms(budget, limit, interval))
            return cast(T, DryValue(event))
        self.progress(
            f"{self.name}: waiting for {event} ({self._wait_terms(budget, limit, interval)})"
        )
        started = self.timeline.now()
        value, ok = poll_until(probe, bool, timeout=limit, interval=interval)
        waited = f"after {self.timeline.now() - started:.2f} s" + (
            f" (budget {budget} {self.budgets[budget]:g} s)" if budget else ""
        )
        self.progress(
            f"{self.name}: {event} {waited}" if ok else f"{self.name}: NO {event} {waited}"
        )
        if not ok:
            self.timeline.mark(f"{event}.timeout")
            raise DrillFailure(
                f"{event} did not happen within {limit:.1f} s\n{self.timeline.render()}"
            )
        assert value is not None
        self.timeline.mark(event, **data)
        if record is not None:
            self._expected_records[event] = Expected(record, lambda: value, interval)
        return value

    def watch(
        self,
        event: str,
        probe: Callable[[], object],
        *,
        budget: str | None = None,
        record: Recorded | None = None,
    ) -> Watch:
        """Start polling `probe` now, in the background, and mark `event` the first time it is
        truthy. For events that may happen while a fault is still being injected (a stopped
        kube-apiserver takes its whole grace period to exit, and the load balancer may mark
        it down long before): `wait_for` would start looking only after the inject returned.
        `Watch.wait()` then blocks until the event (or fails like `wait_for`)."""
        limit = self._limit(budget, None)
        interval = self._interval(budget)
        if self.dry_run:
            self.walk.add(
                "watch", f"{event}, from here on", self._wait_terms(budget, limit, interval)
            )
        watch = Watch(
            event,
            probe,
            self.timeline,
            limit,
            interval,
            self.walk if self.dry_run else None,
            progress=lambda message: self.progress(f"{self.name}: {message}"),
        )
        if record is not None:
            self._expected_records[event] = Expected(record, lambda: watch.value, interval)
        if not self.dry_run:
            watch.start()
            # Its first round before the drill goes on: a probe's first round in a new thread
            # opens its connections (TLS handshakes), which must not fall inside the fault.
            watch.ready.wait(timeout=5)
        return watch

    def _wait_terms(self, budget: str | None, limit: float, interval: float) -> str:
        judged = f"budget {budget} {self.budgets[budget]:g} s, " if budget else ""
        return f"{judged}polled every {interval:g} s, gives up after {limit:g} s"

    def _interval(self, budget: str | None) -> float:
        return self.fine_poll_interval if budget in FINE_POLL_BUDGETS else self.poll_interval

    def _limit(self, budget: str | None, timeout: float | None) -> float:
        if timeout is not None:
            return timeout
        if budget:
            return max(self.budgets[budget] * 2, self.budgets[budget] + 10)
        return self.budgets["recovery"]

    def within_budget(
        self, budget: str, start: str, end: str, name: str | None = None
    ) -> Measurement:
        """Record the interval start->end and fail the drill if it exceeds the budget."""
        if self.dry_run:
            self.walk.add(
                "assert",
                f"{name or budget}: {start} -> {end} within {budget} ({self.budgets[budget]:g} s)",
            )
            return Measurement(name or budget, start, end, 0.0)
        measurement = self.timeline.between(start, end, name or budget)
        result = BudgetResult(measurement, budget, self.budgets[budget])
        self.results.append(result)
        if not result.within:
            raise DrillFailure(
                f"budget breached: {measurement.name} took {measurement.seconds:.3f} s "
                f"({start} -> {end}), budget {budget} is {result.budget_s:.3f} s\n"
                f"{self.timeline.render()}"
            )
        return measurement

    def offset(self, event: str) -> float:
        """Offset of the first `event` mark; a drill that asks for a missing mark is broken.
        A dry run has no times: 0."""
        if self.dry_run:
            return 0.0
        mark = self.timeline.first(event)
        if mark is None:
            raise DrillFailure(f"no {event!r} mark\n{self.timeline.render()}")
        return mark.offset

    def verify_etcd_data(self) -> None:
        """Nothing lost, checked now (in the drill's verify step): every member has the same
        HashKV, and every write the drill's own writers saw acknowledged is stored with its
        value (the same checks the consistency workload runs, applied to these writers)."""
        if self.dry_run:
            self.walk.add("check", "every etcd member has the same HashKV; acknowledged writes")
            return
        self.check_now(
            HashKvCheck(self.etcd), *(AcknowledgedWritesCheck(self.etcd, w) for w in self._writers)
        )
        self.timeline.mark("data.verified")

    # -- recorders and checks ------------------------------------------------------------------

    def add_recorder(self, recorder: R, *, start: bool = True) -> R:
        """Run `recorder` through the drill: started now (unless it already is), stopped by
        `finish()` (or `close()`), its `summary()` in summary.json under `recorders`."""
        if start:
            recorder.start()
        self.recorders.append(recorder)
        return recorder

    def add_check(self, check: Check, *, advisory: bool = False) -> None:
        """Run `check` in `finish()`, after the ones added before it."""
        self.checks.append(PlannedCheck(check, advisory))

    def start_consistency(self, rates: WorkloadRates | None = None) -> None:
        """Start the consistency workload and plan its checks (on by default in every drill;
        see pytest_plugin)."""
        if self.dry_run:
            self.walk.add(
                "background",
                "consistency workload on etcd and the API; checked after the drill",
            )
            return
        if self.consistency is not None:
            return
        self.consistency = self.add_recorder(
            ConsistencyWorkload(
                cluster=self.cluster,
                timeline=self.timeline,
                etcd=self.etcd,
                run=run_id(self.name),
                rates=rates or WorkloadRates(),
            )
        )
        # Let every client get a few operations in before the drill goes on to its fault, so
        # even a one-second failover has history from before it (bounded: a sick cluster is
        # the steady-state check's business).
        clients = [*self.consistency.etcd_clients, *self.consistency.api_clients]
        poll_until(
            lambda: min((len(c.history()) for c in clients), default=3),
            lambda n: n >= 3,
            timeout=5,
            interval=0.1,
        )
        self.timeline.mark("workload.started")
        self.add_check(ConsistencyCheck(self.consistency))

    def start_metrics(
        self, interval: float | None = None, *, expect_alerts: Sequence[str] = ()
    ) -> None:
        """Scrape etcd (and with Kubernetes the control plane's) /metrics through the drill.
        Every 2 s with Kubernetes (an apiserver's /metrics is 2 MB), else every second. Plans
        the checks over the series: a measured leader change against etcd's own counters
        (advisory), and the alert rules (an alert in `expect_alerts` that did not fire fails
        the drill)."""
        every = interval or (2.0 if self.cluster.kube is not None else 1.0)
        if self.dry_run:
            expected = f"; expects {', '.join(expect_alerts)} to fire" if expect_alerts else ""
            self.walk.add(
                "background", f"metrics scraped every {every:g} s; alert rules after{expected}"
            )
            return
        if self.metrics is not None:
            return
        self.metrics = self.add_recorder(
            MetricsRecorder.for_cluster(self.cluster, self.timeline, every)
        )
        self.add_check(LeaderChangeCheck(self.metrics), advisory=True)
        self._alert_check = AlertRulesCheck(self.metrics, tuple(expect_alerts))
        self.add_check(self._alert_check)

    @property
    def alerts(self) -> AlertReport | None:
        return self._alert_check.report if self._alert_check is not None else None

    def finish(self, *, failed: bool = False) -> list[Verdict]:
        """Stop every recorder, then run every planned check in order and record its verdict
        (summary() and Allure). An invalid verdict of a non-advisory check fails the drill
        with DrillFailure, unless the drill `failed` already (its own failure is the one to
        report: it still gets its verdicts, it is not failed twice). A check that raises gets
        an `unknown` verdict; the first such error is raised after the others ran, unless the
        drill failed already. Runs once; a second call returns the verdicts."""
        if self.finished:
            return self.verdicts
        self.finished = True
        with allure_report.step("stop recorders"):
            for recorder in self.recorders:
                recorder.stop()
                if isinstance(recorder, HasAttachments):
                    for attachment in recorder.attachments():
                        _attach(attachment)
        ctx = CheckContext(self.name, self.timeline, self.observe, drill_failed=failed)
        breaking: list[Verdict] = []
        errors: list[Exception] = []
        for planned in self.checks:
            verdict, error = self._run_check(planned.check, ctx)
            if error is not None:
                errors.append(error)
            if verdict is not None and verdict.status == "invalid" and not planned.advisory:
                breaking.append(verdict)
        if failed:
            return self.verdicts
        if breaking:
            raise DrillFailure(self._failure_text(breaking))
        if errors:
            raise errors[0]
        return self.verdicts

    def check_now(self, *checks: Check) -> list[Verdict]:
        """Run `checks` now (in the drill body), record their verdicts like finish() does, and
        fail the drill at once on an invalid one."""
        if self.dry_run:
            self.walk.add("check", ", ".join(c.name for c in checks))
            return []
        ctx = CheckContext(self.name, self.timeline, self.observe)
        found: list[Verdict] = []
        for check in checks:
            verdict, error = self._run_check(check, ctx)
            if error is not None:
                raise error
            if verdict is not None:
                found.append(verdict)
        breaking = [v for v in found if v.status == "invalid"]
        if breaking:
            raise DrillFailure(self._failure_text(breaking))
        return found

    def _run_check(
        self, check: Check, ctx: CheckContext
    ) -> tuple[Verdict | None, Exception | None]:
        with allure_report.step(f"check: {check.name}"):
            started = time.perf_counter()
            try:
                verdict = check.run(ctx)
                error = None
            except Exception as exc:  # recorded, and raised by the caller when it may
                error = exc
                self.observe(f"{check.name}_error", f"{type(exc).__name__}: {exc}")
                verdict = Verdict(
                    check=check.name,
                    status="unknown",
                    detail=f"the check itself failed: {type(exc).__name__}: {exc}",
                    seconds=round(time.perf_counter() - started, 3),
                )
            if verdict is None:
                return None, None
            self.verdicts.append(verdict)
            allure_report.attach_json(f"verdict: {check.name}", verdict.to_dict())
            for attachment in verdict.attachments:
                _attach(attachment)
            return verdict, error

    def _failure_text(self, breaking: Sequence[Verdict]) -> str:
        lines = [f"{v.check}: {v.detail}" for v in breaking]
        lines += [a.body for v in breaking for a in v.attachments if a.kind == "text"]
        return "\n".join(lines) + f"\n{self.timeline.render()}"

    def member_table(self) -> str:
        """The etcd members as the cluster sees them now (and the LB's backends, with
        Kubernetes): for the report, before the fault and after the drill."""
        view = self.etcd.leader_view(complete=True)
        rows = [("member", "id", "role", "term", "raft index", "revision", "errors")]
        for node, status in sorted(view.statuses.items()):
            if status is None:
                rows.append((node, "-", "NO ANSWER", "-", "-", "-", "-"))
                continue
            role = "leader" if status.is_leader else "follower"
            rows.append((node, status.member_id, role, str(status.raft_term),
                         str(status.raft_index), str(status.revision),
                         ", ".join(status.errors) or "-"))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(0, f"leader by quorum: {view.leader or 'NONE'} (term {view.term})")
        if self._kube is not None or self.cluster.kube is not None:
            try:
                backends = self.kube.backends()
            except (KubedrillError, OSError) as exc:
                backends = {"?": f"unavailable: {exc}"}
            if backends:
                lines.append("load balancer backends: " + ", ".join(
                    f"{name} {state}" for name, state in sorted(backends.items())))  # fmt: skip
        return "\n".join(lines)

    def expect(self, holds: bool, what: str, found: object = None) -> None:
        """Fail the drill, with `found` and its timeline, unless `holds`; `what` says what
        must hold ("no write failed while a follower was down"). A dry run observed nothing
        to judge: it writes the expectation down instead."""
        if self.dry_run:
            self.walk.add("assert", what)
            return
        if not holds:
            seen = "" if found is None else f"; found: {found}"
            raise DrillFailure(f"expected: {what}{seen}\n{self.timeline.render()}")

    def observe(self, key: str, value: Any) -> None:
        """Record a figure that is reported but not asserted (e.g. what netem delay caused)."""
        self.observations[key] = value

    def hold(self, seconds: float, check: Callable[[], str | None]) -> None:
        """Keep checking for `seconds`; fail at once if `check` returns a complaint."""
        if self.dry_run:
            self.walk.add("hold", f"{seconds:g} s, failing at once on a complaint")
            return

        found, bad = poll_until(
            check, lambda c: c is not None, timeout=seconds, interval=self.poll_interval * 2
        )
        if bad:
            raise DrillFailure(f"{found}\n{self.timeline.render()}")

    # -- end -----------------------------------------------------------------------------------

    def close(self) -> None:
        for recorder in self.recorders:  # idempotent: finish() may have stopped them already
            recorder.stop()
        for writer in self._writers:
            writer.stop()
        for reader in self._readers:
            reader.stop()
        if self._etcd is not None:
            self._etcd.close()
        if self._kube is not None:
            self._kube.close()

    def summary(self) -> dict[str, Any]:
        return {
            "drill": self.name,
            "cluster": self.cluster.name,
            "target": self.cluster.target,
            "facts": self.cluster.facts.to_dict(),
            "faults": [p.description for p in self.faults_planned],
            "measurements": [r.to_dict() for r in self.results],
            "observations": self.observations,
            "timeline": self.timeline.to_dict(),
            "consistency": self.consistency_summary(),
            "alerts": self.alerts.to_dict() if self.alerts is not None else None,
            "checks": [v.to_dict() for v in self.verdicts],
            "recorders": {r.name: r.summary() for r in self.recorders},
            **({"error_budget": budget.to_dict()} if (budget := self.error_budget()) else {}),
            **({"dry_run": self.walk.to_list()} if self.dry_run else {}),
        }

    def error_budget(self) -> error_budget.ErrorBudget | None:
        """The drill's client-observed unavailability against the seed's HA levels; None
        when no client recorded anything (a dry run)."""
        ops = self.operations()
        return error_budget.for_operations(ops) if ops else None

    def consistency_summary(self) -> dict[str, Any]:
        if self.consistency_opt_out is not None:
            return {"skipped": self.consistency_opt_out}
        if self.consistency is None:
            return {"skipped": "no workload (dry run)" if self.dry_run else "not started"}
        checked = next((v for v in self.verdicts if v.check == CONSISTENCY), None)
        return {
            "verdicts": [v.to_dict() for v in checked.parts] if checked is not None else [],
            "workload": self.consistency.summary(),
        }


def _attach(attachment: Attachment) -> None:
    if attachment.kind == "json":
        allure_report.attach_json(attachment.name, attachment.body)
    elif attachment.kind == "html":
        allure_report.attach_html(attachment.name, str(attachment.body))
    elif attachment.kind == "svg":
        allure_report.attach_svg(attachment.name, str(attachment.body))
    else:
        allure_report.attach_text(attachment.name, str(attachment.body))
