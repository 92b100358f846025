"""kubedrill's pytest plugin: options, markers, fixtures and reports. Thin on purpose: the
logic lives in `kubedrill.drill`, `kubedrill.faults` and the targets, which the CLI uses too."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from kubedrill.allowlist import Allowlist
from kubedrill.budgets import Budgets, parse_assignments
from kubedrill.cluster import Cluster
from kubedrill.drill import Drill, SteadyStateError
from kubedrill.errors import KubedrillError
from kubedrill.faults.runner import install_sigterm_handler
from kubedrill.ledger import Ledger
from kubedrill.report import allure_report
from kubedrill.targets.lab import lab
from kubedrill.targets.lab.config import load_lab_config

MARKERS = {
    "etcd": "drills that fault etcd members",
    "apiserver": "drills that fault kube-apiserver",
    "controller": "drills that fault kube-controller-manager",
    "scheduler": "drills that fault kube-scheduler",
    "node": "drills that fault a node (drain, isolate)",
    "partition": "drills that partition the network",
    "disruptive": "drills that take part of the cluster down",
    "slow": "drills that take more than a minute",
    "budget(**limits)": "override budgets for this drill, e.g. budget(leader_election=5)",
}

# A name, not a literal at the call: mypy 1.20 reads a string literal there as a TypeForm.
LINELIST: Literal["linelist"] = "linelist"
SUMMARY_KEY = pytest.StashKey[list[dict[str, Any]]]()
CLUSTER_KEY = pytest.StashKey[Cluster]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubedrill", "kubedrill failure drills")
    group.addoption(
        "--target", default="lab", choices=["lab"], help="where drills run: lab (default)"
    )
    group.addoption(
        "--lab-config", type=Path, default=None, help="lab config YAML (default: built-in defaults)"
    )
    group.addoption(
        "--topology",
        choices=["etcd", "stacked", "external"],
        default=None,
        help="lab topology (overrides the lab config): etcd, stacked or external",
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
        "--dry-run", action="store_true", help="print every fault and its undo; inject nothing"
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


def _log(message: str) -> None:
    sys.stderr.write(f"[kubedrill] {message}\n")


def base_budgets(config: pytest.Config) -> Budgets:
    budgets = Budgets.defaults()
    budgets = budgets.overridden(
        parse_assignments(config.getini("kubedrill_budgets"), source="kubedrill_budgets")
    )
    return budgets.overridden(parse_assignments(config.getoption("--budget"), source="--budget"))


@contextlib.contextmanager
def lab_cluster(config: pytest.Config) -> Iterator[Cluster]:
    """The lab, brought up if it is not running and then taken down again at the end."""
    lab_config = load_lab_config(
        config.getoption("--lab-config"), topology=config.getoption("--topology")
    )
    brought_up = lab.supervisor_pid(lab_config.state_dir) is None
    if config.getoption("--dry-run") and brought_up:
        raise pytest.UsageError("--dry-run needs a running lab: kubedrill lab up")
    cluster = lab.up(lab_config, progress=_log)
    try:
        yield cluster
    finally:
        if brought_up and not config.getoption("--lab-keep"):
            lab.down(lab_config, progress=lambda _m: None)


@pytest.fixture(scope="session")
def cluster(pytestconfig: pytest.Config) -> Iterator[Cluster]:
    """The target cluster; the lab is brought up if it is not running (and down afterwards)."""
    ledger = Ledger()
    try:
        for report in ledger.heal_all(log=lambda m: _log(f"heal {m}")):
            state = "healed" if report.ok else "COULD NOT heal"
            _log(f"{state} a leftover fault: {report.record.description}")
        leftovers = ledger.outstanding()
    except KubedrillError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if leftovers:
        raise pytest.UsageError(
            f"{len(leftovers)} fault(s) from another run are still injected "
            f"({leftovers[0].description}); run `kubedrill heal`"
        )
    allowlist = Allowlist.of(
        [
            *pytestconfig.getini("kubedrill_allowed_targets"),
            *pytestconfig.getoption("--allow-target"),
        ]
    )
    try:
        with lab_cluster(pytestconfig) as found:
            allowlist.check(found.name)
            yield found
    except KubedrillError as exc:
        pytest.exit(f"kubedrill: {exc}", returncode=3)


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
    d = Drill(request.node.name, cluster, budgets, dry_run=request.config.getoption("--dry-run"))
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
            **cluster.facts,
            **{f"budget.{k}": f"{v:g}s" for k, v in budgets.limits.items()},
        },
    )
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
    allure_report.attach_json("timeline", d.timeline.to_dict())
    allure_report.attach_json("measurements", [r.to_dict() for r in d.results])
    if d.observations:
        allure_report.attach_json("observations", d.observations)
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
    try:
        return (yield)
    finally:
        d = getattr(item, "funcargs", {}).get("drill")
        if isinstance(d, Drill):
            attach_evidence(d)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(SteadyStateError):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {call.excinfo.value}")
    if report.when == "call":
        item.kubedrill_call_report = report  # type: ignore[attr-defined]
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    summaries = session.config.stash.get(SUMMARY_KEY, [])
    if not summaries:
        return
    out_dir: Path = session.config.getoption("--kubedrill-reports")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps({"drills": summaries}, indent=2))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    summaries = config.stash.get(SUMMARY_KEY, [])
    if not summaries:
        return
    tr = terminalreporter
    tr.section("kubedrill figures")
    for s in summaries:
        tr.write_line(f"{s['verdict'].upper():8s} {s['drill']}")
        for m in s["measurements"]:
            flag = "ok" if m["within"] else "BREACH"
            tr.write_line(
                f"           {m['name']:28s} {m['seconds']:8.3f} s  "
                f"(budget {m['budget_s']:g} s) {flag}"
            )
        for key, value in s["observations"].items():
            tr.write_line(f"           {key:28s} {value}")
    tr.write_line(f"summary: {config.getoption('--kubedrill-reports') / 'summary.json'}")
