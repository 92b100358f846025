"""kubedrill's pytest plugin: options, markers, fixtures and reports. Wiring only: it builds
the `Drill`, adds the recorders and checks the markers ask for, and calls `Drill.finish()`;
the logic lives in `kubedrill.drill`, `kubedrill.checks`, `kubedrill.faults` and the targets,
which scripts and the CLI use too."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from _pytest.outcomes import Exit  # pytest.exit.Exception, typed

from kubedrill import error_budget
from kubedrill.allowlist import Allowlist
from kubedrill.budgets import Budgets, parse_assignments
from kubedrill.cluster import Cluster
from kubedrill.consistency.workload import WorkloadRates
from kubedrill.drill import Drill, SteadyStateError
from kubedrill.dry_run import DryRunWalk
from kubedrill.errors import GuardError, KubedrillError
from kubedrill.faults.runner import install_sigterm_handler
from kubedrill.ledger import Ledger
from kubedrill.report import allure_report
from kubedrill.report.chart import timeline_svg
from kubedrill.report.live import LiveProgress
from kubedrill.report.results_meta import write_results_metadata
from kubedrill.targets.lab.config import TOPOLOGIES
from kubedrill.targets.select import TARGETS, TargetOptions, open_target, target_name

MARKERS = {
    "etcd": "drills that fault etcd members",
    "apiserver": "drills that fault kube-apiserver",
    "controller": "drills that fault kube-controller-manager",
    "scheduler": "drills that fault kube-scheduler",
    "node": "drills that fault a node (drain, isolate)",
    "partition": "drills that partition the network",
    "disruptive": "drills that take part of the cluster down",
    "disk": "drills that exhaust etcd's disk quota (need a small-quota lab: "
    "fixtures/labs/quota-etcd.yaml)",
    "lb": "drills that fail the active host of a keepalived LB pair (need a lab with a pair: "
    "fixtures/labs/lb-pair.yaml, lb-nginx.yaml, ha-stack.yaml; make drill-lb, drill-ha-stack)",
    "slow": "drills that take more than a minute",
    "maintenance": "planned maintenance: rolling restarts one host at a time with every failed "
    "request through the load balancer accounted for (make drill-maintenance, "
    "drill-ha-stack: labs of their own)",
    "disaster": "disaster-recovery drills (backup verified, a lost quorum restored from a "
    "snapshot with RTO and exact RPO, a member's lost disk replaced and the wrong way round "
    "caught)",
    "certs": "certificate drills: control-plane certs rotated one host at a time with no "
    "failed request, and a certificate that expires during the drill (lab target)",
    "wan": "multi-region drills over WAN links (need a regions lab: --topology regions): etcd's "
    "time flags at distance, a region going dark",
    "zone": "zone outage drills: every host of one zone down at once, by power or network "
    "(need a lab with zones: fixtures/labs/zones.yaml, ha-stack.yaml)",
    "edge": "edge partition drills: an edge site of workers cut off from the control plane "
    "(need a lab with an edge site: fixtures/labs/edge.yaml)",
    "budget(**limits)": "override budgets for this drill, e.g. budget(leader_election=5)",
    "no_consistency(reason)": "run this drill without the consistency workload and checks",
    "expect_alerts(*names)": "alert rules this drill's fault must make fire (checked with "
    "promtool over the metrics recorded during the drill)",
}

# A name, not a literal at the call: mypy 1.20 reads a string literal there as a TypeForm.
LINELIST: Literal["linelist"] = "linelist"
SUMMARY_KEY = pytest.StashKey[list[dict[str, Any]]]()
CLUSTER_KEY = pytest.StashKey[Cluster]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubedrill", "kubedrill failure drills")
    group.addoption(
        "--target",
        default="lab",
        choices=list(TARGETS),
        help="where drills run: lab (default), ssh (--inventory) or kind (--kind-cluster)",
    )
    group.addoption(
        "--inventory", type=Path, default=None, help="SSH inventory YAML (with --target ssh)"
    )
    group.addoption(
        "--accept-new-host-keys",
        action="store_true",
        help="--target ssh: record unknown host keys in known_hosts (changed keys are refused)",
    )
    group.addoption("--kind-cluster", default="kind", help="kind cluster name (with --target kind)")
    group.addoption(
        "--docker-host", default=None, help="Docker API of the kind nodes (default: DOCKER_HOST)"
    )
    group.addoption(
        "--lab-config", type=Path, default=None, help="lab config YAML (default: built-in defaults)"
    )
    group.addoption(
        "--topology",
        choices=list(TOPOLOGIES),
        default=None,
        help="lab topology (overrides the lab config): etcd, stacked, external or regions",
    )
    group.addoption(
        "--lab-keep",
        action="store_true",
        help="leave a lab that this run brought up running afterwards",
    )
    group.addoption(
        "--budget",
        action="append",
        default=[],
        metavar="NAME=DURATION",
        help="override a budget for this run, e.g. --budget leader_election=10s",
    )
    group.addoption(
        "--allow-target",
        action="append",
        default=[],
        metavar="PATTERN",
        help="allow faults on this target (cluster name pattern); the lab is always allowed",
    )
    group.addoption(
        "--no-progress",
        action="store_true",
        help="do not show each drill's phases and waits live (they are in the report anyway)",
    )
    group.addoption(
        "--dry-run",
        action="store_true",
        help="walk the whole drill and print what it would do (faults with their inject and "
        "undo commands, waits with budgets, assertions, writes); inject and write nothing",
    )
    group.addoption(
        "--workload-rate",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="scale the consistency workload's request rate (default 1.0: about 60 requests/s "
        "with Kubernetes, 30 without; 0.5 halves it)",
    )
    group.addoption(
        "--kubedrill-reports",
        type=Path,
        default=Path("reports"),
        help="where summary.json goes (default: reports/)",
    )
    parser.addini(
        "kubedrill_allowed_targets",
        type=LINELIST,
        default=[],
        help="cluster name patterns faults may be injected into (besides lab/*)",
    )
    parser.addini(
        "kubedrill_budgets",
        type=LINELIST,
        default=[],
        help="budget overrides NAME=DURATION, e.g. leader_election=15",
    )


def pytest_configure(config: pytest.Config) -> None:
    for marker, text in MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {text}")
    config.stash[SUMMARY_KEY] = []
    try:
        base_budgets(config)
    except KubedrillError as exc:
        raise pytest.UsageError(str(exc)) from exc
    check_mark_expression(config)
    rate = config.getoption("--workload-rate", 1.0)
    if not rate > 0:
        raise pytest.UsageError(
            f"--workload-rate must be a positive factor, got {rate} (1.0 is the default rate)"
        )
    _LIVE[:] = [LiveProgress(config)]
    # pytest runs no teardown on SIGTERM; turn it into KeyboardInterrupt so every fault's
    # `finally` heals, exactly as on ^C.
    install_sigterm_handler()


def check_mark_expression(config: pytest.Config) -> None:
    """`-m etdc` would silently select nothing; name the unknown marker instead."""
    expression = config.getoption("markexpr", "") or ""
    known = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)) - {"and", "or", "not"}
    unknown = sorted(words - known)
    if unknown:
        raise pytest.UsageError(
            f"unknown marker(s) in -m {expression!r}: {', '.join(unknown)}; "
            f"drill markers: {', '.join(sorted(m.split('(')[0] for m in MARKERS))}"
        )


_LIVE: list[LiveProgress] = []  # the session's, once configured


def _log(message: str) -> None:
    """Progress of the run (lab up, heals, target set-up), shown live past pytest's capture."""
    if _LIVE:
        _LIVE[0](message)
    else:
        sys.stderr.write(f"[kubedrill] {message}\n")


def base_budgets(config: pytest.Config) -> Budgets:
    budgets = Budgets.defaults()
    budgets = budgets.overridden(
        parse_assignments(config.getini("kubedrill_budgets"), source="kubedrill_budgets")
    )
    return budgets.overridden(parse_assignments(config.getoption("--budget"), source="--budget"))


def target_options(config: pytest.Config) -> TargetOptions:
    return TargetOptions(
        target=config.getoption("--target"),
        lab_config=config.getoption("--lab-config"),
        topology=config.getoption("--topology"),
        lab_keep=config.getoption("--lab-keep"),
        dry_run=config.getoption("--dry-run"),
        inventory=config.getoption("--inventory"),
        accept_new_host_keys=config.getoption("--accept-new-host-keys"),
        kind_cluster=config.getoption("--kind-cluster"),
        docker_host=config.getoption("--docker-host"),
    )


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The target cluster; the lab is brought up if it is not running (and down afterwards)."""
    ledger = Ledger()
    try:
        for report in ledger.heal_all(log=lambda m: _log(f"heal {m}")):
            state = "healed" if report.ok else "COULD NOT heal"
            _log(f"{state} a leftover fault: {report.record.description}")
        # What is left was injected by runs still alive (orphans were healed just above).
        running_elsewhere = ledger.outstanding()
    except KubedrillError as exc:
        raise pytest.UsageError(str(exc)) from exc
    allowlist = Allowlist.of(
        [
            *pytestconfig.getini("kubedrill_allowed_targets"),
            *pytestconfig.getoption("--allow-target"),
        ]
    )
    options = target_options(pytestconfig)
    try:
        # Before connecting anywhere: a target nobody allowed is never touched.
        allowlist.check(target_name(options))
        with open_target(options, progress=_log) as found:
            allowlist.check(found.name)
            busy = [r for r in running_elsewhere if r.cluster == found.name]
            if busy:
                # One fault at a time per cluster, across runs too: two game days on one
                # cluster would measure each other's faults.
                raise GuardError(
                    f"another kubedrill run (pid {busy[0].owner_pid}) has a fault injected into "
                    f"{found.name} right now ({busy[0].description}); nothing was injected",
                    "wait for that run to end; if it is stuck, stop it and run `kubedrill heal`",
                )
            yield found
    except KubedrillError as exc:
        raise KubedrillExit(one_line(exc), returncode=3) from None


class KubedrillExit(Exit):
    """What `pytest.exit` raises, named so pytest prints `kubedrill: error: ... -> hint`
    rather than `_pytest.outcomes.Exit: ...` (it prints an exception's module and name,
    leaving out only builtins')."""


KubedrillExit.__module__ = "builtins"
KubedrillExit.__name__ = KubedrillExit.__qualname__ = "kubedrill"


def one_line(exc: KubedrillError) -> str:
    """`error: <what went wrong> -> <what to do>` on one line (pytest frames it with `!`)."""
    return f"error: {exc.message}" + (f" -> {exc.hint}" if exc.hint else "")


@pytest.fixture
def drill(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Drill]:
    """A drill on the target: budgets resolved, timeline started, reports attached at the end."""
    budgets = base_budgets(request.config)
    marker = request.node.get_closest_marker("budget")
    if marker is not None:
        try:
            budgets = budgets.overridden(marker.kwargs)
        except KubedrillError as exc:
            pytest.fail(f"bad @pytest.mark.budget: {exc}", pytrace=False)
    d = Drill(
        request.node.name,
        cluster,
        budgets,
        dry_run=request.config.getoption("--dry-run"),
        progress=_log,
    )
    allure_report.label_drill(
        component=next(
            (
                m.name
                for m in request.node.iter_markers()
                if m.name in ("etcd", "apiserver", "controller", "scheduler", "node")
            ),
            "cluster",
        ),
        fault=request.node.name,
        parameters={
            "target": cluster.target,
            **cluster.facts.to_dict(),
            **{f"budget.{k}": f"{v:g}s" for k, v in budgets.limits.items()},
        },
    )
    opt_out = request.node.get_closest_marker("no_consistency")
    if opt_out is not None:
        d.consistency_opt_out = str(opt_out.kwargs.get("reason") or (opt_out.args or ["-"])[0])
    else:
        factor = request.config.getoption("--workload-rate")
        d.start_consistency(WorkloadRates().scaled(factor))
    expect = request.node.get_closest_marker("expect_alerts")
    d.start_metrics(expect_alerts=expect.args if expect is not None else ())
    try:
        yield d
    finally:
        d.close()
        summary = d.summary()
        summary["nodeid"] = request.node.nodeid
        rep = getattr(request.node, "kubedrill_call_report", None)
        summary["verdict"] = rep.outcome if rep is not None else "error"
        request.config.stash[SUMMARY_KEY].append(summary)


def attach_evidence(d: Drill) -> None:
    """Timeline, figures and the victims' logs, attached to the drill's own Allure result."""
    if not d.dry_run and d.faults_planned:
        try:
            allure_report.attach_text("etcd members after the drill", d.member_table())
        except Exception as exc:  # evidence must never hide the drill's own outcome
            allure_report.attach_text("etcd members after the drill", f"unavailable: {exc}")
    if d.dry_run:
        allure_report.attach_text("dry run: what the drill would do", d.walk.render())
    allure_report.attach_json("timeline", d.timeline.to_dict())
    try:
        allure_report.attach_svg("timeline chart", timeline_svg(d.summary(), d.operations()))
    except Exception as exc:  # a chart bug must not hide the drill's own outcome
        allure_report.attach_text("timeline chart failed", f"{type(exc).__name__}: {exc}")
    allure_report.attach_json("measurements", [r.to_dict() for r in d.results])
    budget = d.error_budget()
    if budget is not None:
        allure_report.attach_json("availability spent (error budget)", budget.to_dict())
    if d.observations:
        allure_report.attach_json("observations", d.observations)
    if d.consistency is not None or d.consistency_opt_out is not None:
        allure_report.attach_json("consistency verdicts", d.consistency_summary())
    if d.recorders:
        allure_report.attach_json("recorders", {r.name: r.summary() for r in d.recorders})
    for plan in d.faults_planned:
        component = plan.data.get("component", "etcd")
        hosts = {n.name for n in d.cluster.nodes}
        for victim in plan.victims:
            if victim not in hosts:  # e.g. a drained kwok Node: no process, no log
                continue
            node = d.cluster.node(victim)
            text = d.cluster.control.logs(node, component, since_wall=d.timeline.wall_start)
            if text:
                allure_report.attach_text(f"log {victim} {component}", text)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After the drill body (the cluster healed): `Drill.finish()` (recorders stopped, checks
    run), then the evidence. An invalid verdict fails a drill that passed; a drill that failed
    still gets its verdicts in the report. A skipped or interrupted drill gets no checks."""
    d = _drill_of(item)
    try:
        result = yield
    except (SteadyStateError, KeyboardInterrupt, SystemExit):
        if d is not None:
            attach_evidence(d)
        raise
    except BaseException:
        if d is not None:
            try:
                d.finish(failed=True)
            except Exception as exc:  # the drill's own failure is the one to report
                d.observe("finish_error", f"{type(exc).__name__}: {exc}")
            attach_evidence(d)
        raise
    if d is not None:
        try:
            d.finish()
        finally:
            attach_evidence(d)
    return result


def _drill_of(item: pytest.Item) -> Drill | None:
    d = getattr(item, "funcargs", {}).get("drill")
    return d if isinstance(d, Drill) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(SteadyStateError):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    if report.when == "call" or (report.when == "setup" and not report.passed):
        item.kubedrill_call_report = report  # type: ignore[attr-defined]
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    summaries = session.config.stash.get(SUMMARY_KEY, [])
    whole = error_budget.game_day(summaries)
    alluredir = getattr(session.config.option, "allure_report_dir", None)
    if alluredir:  # environment, executor and categories for the Allure report
        first = summaries[0] if summaries else None
        facts = dict(first["facts"]) if first else None
        if facts is not None and whole is not None:
            facts["availability spent (this run)"] = whole.line()
        write_results_metadata(
            Path(alluredir), facts=facts, cluster=first["cluster"] if first else ""
        )
    if not summaries:
        return
    out_dir: Path = session.config.getoption("--kubedrill-reports")
    out_dir.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"drills": summaries}
    if whole is not None:
        document["error_budget"] = whole.to_dict()
    (out_dir / "summary.json").write_text(json.dumps(document, indent=2))


def runner_cpu_line(summary: dict[str, Any]) -> str:
    """`measuring 3.1 %, workload 9.8 % (41 req/s) of a core over 1.2 s`, or ''."""
    held = ((summary.get("recorders") or {}).get("runner_cpu") or {}).get("fault_held") or {}
    pct = held.get("percent_of_core") or {}
    if "measuring" not in pct:
        return ""
    rate = held.get("workload_requests_per_s")
    return (
        f"measuring {pct['measuring']:.1f} %, workload {pct.get('workload', 0.0):.1f} %"
        + (f" ({rate:g} req/s)" if rate is not None else "")
        + f" of a core over {held.get('seconds', 0):.1f} s"
    )


def _write_figures(tr: Any, s: dict[str, Any]) -> None:
    """One drill's lines of the figures table."""
    tr.write_line(f"{s['verdict'].upper():8s} {s['drill']}")
    for m in s["measurements"]:
        flag = "ok" if m["within"] else "BREACH"
        tr.write_line(
            f"           {m['name']:28s} {m['seconds']:8.3f} s  (budget {m['budget_s']:g} s) {flag}"
        )
    cpu = runner_cpu_line(s)
    if cpu:
        tr.write_line(f"           {'runner CPU, fault held':28s} {cpu}")
    if s.get("error_budget"):
        budget = error_budget.ErrorBudget(
            s["error_budget"]["through"], s["error_budget"]["unavailable_s"]
        )
        tr.write_line(f"           {'availability spent':28s} {budget.line()}")
    for key, value in s["observations"].items():
        if key in ("metrics_scrape_cost", "server_records"):
            continue  # in summary.json (server records: the verdict line below)
        if key == "leader_change_vs_metrics":
            tr.write_line(
                f"           {'leader change in metrics':28s} "
                f"{'agrees' if value.get('agrees') else 'DISAGREES'} (counter first rose at "
                f"{value.get('first_rise_s')} s, runner window {value.get('window_s')})"
            )
            continue
        if key == "unavailability":
            for client, figures in value.items():
                tr.write_line(
                    f"           {'unavailable ' + client:28s} "
                    f"{figures['longest_unavailable_s']:8.3f} s longest; of "
                    f"{figures['operations']} ops {figures['failed']} failed, "
                    f"{figures['unknown']} unknown"
                )
            continue
        tr.write_line(f"           {key:28s} {value}")
    consistency = s.get("consistency", {})
    if "skipped" in consistency:
        tr.write_line(f"           consistency checks skipped: {consistency['skipped']}")
    for v in consistency.get("verdicts", []):
        tr.write_line(f"           {v['status'].upper():8s} {v['check']}: {v['detail']}")
    for v in s.get("checks", []):
        if v.get("parts"):  # the consistency check: its parts are the lines just above
            continue
        tr.write_line(f"           {v['status'].upper():8s} {v['check']}: {v['detail']}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    summaries = config.stash.get(SUMMARY_KEY, [])
    if not summaries:
        return
    tr = terminalreporter
    walks = [s for s in summaries if "dry_run" in s]
    if walks:
        # Printed here, not on stderr: a dry run is read without -s.
        tr.section("kubedrill dry run: what each drill would do (nothing was injected)")
        for s in walks:
            tr.write_line(f"{s.get('verdict', '?').upper():<8} {s['drill']}")
            tr.write_line(DryRunWalk.from_list(s["dry_run"]).render(indent="  "))
    figures = [s for s in summaries if "dry_run" not in s]
    if figures:
        tr.section("kubedrill figures")
    for s in figures:
        _write_figures(tr, s)
    whole = error_budget.game_day(figures)
    if whole is not None and len(figures) > 1:
        tr.write_line(
            f"{'GAME DAY':8s} availability spent, all {len(figures)} drills: {whole.line()}"
        )
    tr.write_line(f"summary: {config.getoption('--kubedrill-reports') / 'summary.json'}")
