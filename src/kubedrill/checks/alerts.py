"""Which alert rules fired during a drill, and when: promtool evaluates the real rules file on
the series recorded during the drill.

Three promtool runs, each checking the one before:
1. discover: one PromQL test at the end asks for every `ALERTS` series, firing and pending,
   expecting none; promtool's failure output ("got: ...") lists each alert instance with the
   first and last time it fired and how many evaluations it fired in.
2. negative: an alert test per (alert, first firing time) expecting no alert; each must fail
   and promtool's "got:" gives the alerts' labels and rendered annotations at that time.
3. positive: the same tests expecting exactly what step 2 saw, plus "nothing yet" one step
   before each first firing and "nothing" at the end for every rule that did not fire then:
   promtool must pass. Only then is the report `confirmed`; when it fails, the report is still
   built (with what steps 1 and 2 saw) but `confirmed` is False and `unconfirmed` says why.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubedrill.checks.promtool_file import (
    GridPoint,
    Hold,
    build_grid,
    duration,
    input_series,
)
from kubedrill.data import ALERT_RULES
from kubedrill.errors import ConfigError, KubedrillError, MissingBinaryError
from kubedrill.timeline import Timeline
from kubedrill.workload.metrics_recorder import RecordedSeries

DEFAULT_RULES = ALERT_RULES


class PromtoolError(KubedrillError):
    """promtool failed in a way that is not a list of alerts (a broken rules file, say)."""


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise MissingBinaryError(
            "promtool is not installed: alert rules cannot be evaluated",
            "install Debian's prometheus package (make setup does), then rerun",
        )
    return found


@dataclass(frozen=True)
class AlertRule:
    name: str
    for_s: float
    # The longest range its expression reads (`rate(...[5m])`: 300 s): a held state decides
    # the rule only once that window holds nothing but the held state.
    window_s: float = 0.0


# A range selector or a subquery's range: [5m], [1m30s], [5m:1m].
_RANGE = re.compile(r"\[((?:\d+(?:\.\d+)?(?:ms|[smhdwy]))+)(?::[^\]]*)?\]")


def longest_window(expr: str) -> float:
    """The longest range selector (or subquery range) in a PromQL expression, in seconds."""
    return max((parse_duration(m) for m in _RANGE.findall(expr)), default=0.0)


def load_rules(path: Path) -> list[AlertRule]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"cannot read alert rules {path}: {exc.strerror}", "pass a rules file"
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"alert rules {path} are not YAML: {exc}", "fix the file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise ConfigError(f"alert rules {path} have no `groups` list", "see Prometheus' docs")
    rules = []
    for group in data["groups"]:
        for rule in group.get("rules", []) if isinstance(group, dict) else []:
            if isinstance(rule, dict) and "alert" in rule:
                rules.append(
                    AlertRule(
                        str(rule["alert"]),
                        parse_duration(str(rule.get("for", "0s"))),
                        longest_window(str(rule.get("expr", ""))),
                    )
                )
    return rules


def rule_jobs(path: Path = DEFAULT_RULES) -> dict[str, set[str]]:
    """Alert name -> the scrape jobs its expression reads (`job="..."` matchers)."""
    data = yaml.safe_load(path.read_text())
    jobs: dict[str, set[str]] = {}
    for group in data.get("groups", []):
        for rule in group.get("rules", []) if isinstance(group, dict) else []:
            if isinstance(rule, dict) and "alert" in rule:
                found = set(re.findall(r'job="([^"]+)"', str(rule.get("expr", ""))))
                jobs.setdefault(str(rule["alert"]), set()).update(found)
    return jobs


_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}


def parse_duration(text: str) -> float:
    """A Prometheus duration ('5m', '1m30s', '1500ms', '0s') in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ConfigError(f"not a Prometheus duration: {text!r}", "write it like 5m or 1m30s")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass(frozen=True)
class AlertInstance:
    alertname: str
    labels: Mapping[str, str]  # the alert's labels, without alertname
    first_firing_s: float  # offset on the drill's timeline
    last_firing_s: float
    firing_evaluations: int
    first_firing_test_s: float  # the time in the promtool test
    held: str | None = None  # fired while this hold repeated a recorded state
    held_s: float = 0.0  # how long the state had been held when it first fired
    pending_since_s: float | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass
class AlertOutcome:
    name: str
    for_s: float
    instances: list[AlertInstance] = field(default_factory=list)
    pending: list[dict[str, str]] = field(default_factory=list)  # pending, never fired

    @property
    def fired(self) -> bool:
        return bool(self.instances)

    @property
    def first_firing_s(self) -> float | None:
        return min((i.first_firing_s for i in self.instances), default=None)


@dataclass
class AlertReport:
    rules_file: str
    step_s: float
    eval_interval_s: float
    holds: list[Hold]
    outcomes: dict[str, AlertOutcome]
    confirmed: bool
    promtool_version: str
    seconds: float  # promtool's wall time, all runs
    test_file: str | None = None  # the discovery test, kept when a workdir was given
    unconfirmed: str = ""  # why the positive run disagreed (promtool's output), when it did

    def fired(self, name: str) -> bool:
        return self.outcomes[name].fired

    def fired_names(self) -> list[str]:
        return sorted(n for n, o in self.outcomes.items() if o.fired)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules_file": self.rules_file,
            "step_s": self.step_s,
            "eval_interval_s": self.eval_interval_s,
            "holds": [asdict(h) for h in self.holds],
            "confirmed": self.confirmed,
            "unconfirmed": self.unconfirmed,
            "promtool": self.promtool_version,
            "promtool_seconds": round(self.seconds, 3),
            "fired": self.fired_names(),
            "alerts": {
                name: {
                    "fired": o.fired,
                    "for_s": o.for_s,
                    "first_firing_s": _round(o.first_firing_s),
                    "instances": [_instance_dict(i) for i in o.instances],
                    "pending_only": o.pending,
                }
                for name, o in self.outcomes.items()
            },
        }

    def render(self) -> str:
        lines = [f"alert rules {self.rules_file} (promtool, confirmed={self.confirmed}):"]
        if not self.confirmed:
            lines.append(f"  NOT CONFIRMED by promtool's positive run:\n{self.unconfirmed}")
        for name, o in self.outcomes.items():
            if not o.fired:
                state = "pending only" if o.pending else "did not fire"
                lines.append(f"  {name:26s} {state}")
            for i in o.instances:
                where = f" after {i.held} held {i.held_s:.0f} s" if i.held else ""
                lines.append(
                    f"  {name:26s} FIRED at {i.first_firing_s:8.2f} s{where}  "
                    + " ".join(f"{k}={v}" for k, v in sorted(i.labels.items()))
                )
        return "\n".join(lines)


def _instance_dict(instance: AlertInstance) -> dict[str, Any]:
    data = asdict(instance)
    data["labels"] = dict(instance.labels)
    data["annotations"] = dict(instance.annotations)
    for key in ("first_firing_s", "last_firing_s", "first_firing_test_s", "held_s"):
        data[key] = round(data[key], 3)
    data["pending_since_s"] = _round(instance.pending_since_s)
    return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def holds_for_drill(
    timeline: Timeline, rules: Sequence[AlertRule], step: float, margin: float = 30.0
) -> list[Hold]:
    """Hold the steady state just before the first fault, and the fault's state just before
    it is healed, each long enough for every rule to decide on the held state alone: its
    range window filled with it, then its `for:` (plus a margin). A rate-based rule whose
    window still held the state before would otherwise be judged on a mixture: a WAL fsync
    p99 over `[5m]` reaches a held 2 s only once the fast steady-state fsyncs left it."""
    seconds = max((r.window_s + r.for_s for r in rules), default=0.0) + margin
    holds = []
    injecting = timeline.first("fault.injecting")
    if injecting is not None:
        holds.append(Hold(max(0.0, injecting.offset - step), seconds, "steady state"))
    healing = timeline.last("fault.healing")
    if healing is not None:
        holds.append(Hold(max(0.0, healing.offset - step), seconds, "fault"))
    return holds


# A drill's rules are evaluated every 10 s: finer than any production Prometheus (its default
# is a minute), and promtool's time is about proportional to the number of evaluations over
# the two 15-minute holds (every 4 s took 5-13 s a drill here, a third of a short drill's time).
DRILL_EVAL_INTERVAL_S = 10.0


def evaluate_drill(
    series: RecordedSeries, timeline: Timeline, rules_path: Path = DEFAULT_RULES
) -> AlertReport:
    """`evaluate` with the holds a drill needs: its steady state and its fault's state, each
    held past the longest `for:`, evaluated every DRILL_EVAL_INTERVAL_S."""
    holds = holds_for_drill(timeline, load_rules(rules_path), series.interval)
    return evaluate(series, rules_path, holds=holds, eval_interval=DRILL_EVAL_INTERVAL_S)


# -- promtool runs -----------------------------------------------------------------------------


def _run(test: dict[str, Any], workdir: Path, name: str) -> tuple[int, str]:
    path = workdir / name
    path.write_text(yaml.safe_dump(test, sort_keys=False, width=1_000_000))
    proc = subprocess.run(
        [promtool(), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
_SAMPLE = re.compile(r'\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\}\s+(\S+?)(?=,\s\{|\s*$)')


def parse_labels(text: str) -> dict[str, str]:
    return {k: json.loads(f'"{v}"') for k, v in _LABEL.findall(text)}


def parse_expr_failures(output: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """expr -> the samples promtool got, from its failure output."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    blocks = re.split(r"^\s*expr: ", output, flags=re.MULTILINE)[1:]
    for block in blocks:
        expr = json.loads(block.split(", time:", 1)[0])
        got = re.search(r"^\s*got: (.*)$", block, flags=re.MULTILINE)
        samples = _SAMPLE.findall(got.group(1)) if got else []
        found[expr] = [(parse_labels(lbl), float(value)) for lbl, value in samples]
    return found


def parse_alert_failures(
    output: str,
) -> dict[tuple[str, float], list[tuple[dict[str, str], dict[str, str]]]]:
    """(alertname, test time) -> [(labels, annotations)] that promtool got."""
    found: dict[tuple[str, float], list[tuple[dict[str, str], dict[str, str]]]] = {}
    pattern = r"^\s*alertname: (\S+), time: (\S+?),"
    heads = list(re.finditer(pattern, output, flags=re.MULTILINE))
    for n, head in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(output)
        body = output[head.end() : end]
        got = body.split("got:", 1)[1] if "got:" in body else ""
        labels = re.findall(r"Labels:\{(.*)\},?\s*$", got, flags=re.MULTILINE)
        notes = re.findall(r"Annotations:\{(.*)\},?\s*$", got, flags=re.MULTILINE)
        found[(head.group(1), parse_duration(head.group(2)))] = [
            (parse_labels(lbl), parse_labels(note))
            for lbl, note in zip(labels, notes, strict=False)
        ]
    return found


def _version() -> str:
    proc = subprocess.run([promtool(), "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).split("\n", 1)[0].strip()


@dataclass
class _Found:
    labels: dict[str, str]
    first: float = 0.0
    last: float = 0.0
    count: int = 0
    pending: float | None = None


def evaluate(
    series: RecordedSeries,
    rules_path: Path = DEFAULT_RULES,
    *,
    holds: Sequence[Hold] = (),
    step: float | None = None,
    eval_interval: float = 5.0,
    workdir: Path | None = None,
) -> AlertReport:
    """Evaluate `rules_path` with promtool on `series`, with optional holds (see
    kubedrill.checks.promtool_file). Raises PromtoolError when promtool rejects the rules."""
    started = time.monotonic()
    rules = load_rules(rules_path)
    step = step or series.interval
    # Rules are evaluated every `every` seconds (Prometheus' own default is a minute; 5 s
    # keeps promtool quick over 10-minute holds and is finer than production).
    every = max(step, round(eval_interval / step) * step)
    grid = build_grid(series.start, series.end, step, holds)
    base = {
        "rule_files": [str(rules_path.resolve())],
        "evaluation_interval": duration(every),
    }
    group = {
        "interval": duration(step),
        "input_series": input_series(series, grid, series.start, step),
    }
    outcomes = {r.name: AlertOutcome(r.name, r.for_s) for r in rules}
    with tempfile.TemporaryDirectory(prefix="kubedrill-promtool-") as tmp:
        work = workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        found = _discover(base, group, grid, every, work)
        times = _first_times(found)
        seen = _negative(base, group, times, work)
        unconfirmed = _positive(base, group, times, seen, found, grid, every, work, outcomes)
    for (alertname, _), item in sorted(found.items(), key=lambda kv: kv[1].first):
        outcome = outcomes.setdefault(alertname, AlertOutcome(alertname, 0.0))
        if item.count == 0:
            outcome.pending.append(item.labels)
            continue
        point = grid[min(len(grid) - 1, round(item.first / step))]
        last = grid[min(len(grid) - 1, round(item.last / step))]
        notes = next(
            (n for lbl, n in seen.get((alertname, item.first), []) if _same(lbl, item.labels)),
            {},
        )
        outcome.instances.append(
            AlertInstance(
                alertname,
                item.labels,
                point.drill_s,
                last.drill_s,
                item.count,
                point.test_s,
                point.held,
                point.held_s,
                None if item.pending is None else grid[round(item.pending / step)].drill_s,
                notes,
            )
        )
    return AlertReport(
        str(rules_path),
        step,
        every,
        list(holds),
        outcomes,
        not unconfirmed,
        _version(),
        time.monotonic() - started,
        str(work / "discover.yml") if workdir else None,
        unconfirmed,
    )


def _same(got: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return {k: v for k, v in got.items() if k != "alertname"} == dict(labels)


def _last_eval(grid: Sequence[GridPoint], every: float) -> float:
    end = grid[-1].test_s if grid else 0.0
    return (end // every) * every


def _queries(end: float, step: float) -> dict[str, str]:
    window = f"[{duration(end + step)}:{duration(step)}]"
    return {
        "first": f'min_over_time(timestamp(ALERTS{{alertstate="firing"}}){window})',
        "last": f'max_over_time(timestamp(ALERTS{{alertstate="firing"}}){window})',
        "count": f'count_over_time(ALERTS{{alertstate="firing"}}[{duration(end + step)}])',
        "pending": f'min_over_time(timestamp(ALERTS{{alertstate="pending"}}){window})',
    }


def _discover(
    base: dict[str, Any],
    group: dict[str, Any],
    grid: Sequence[GridPoint],
    step: float,
    work: Path,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], _Found]:
    end = _last_eval(grid, step)
    queries = _queries(end, step)
    tests = [{"expr": q, "eval_time": duration(end), "exp_samples": []} for q in queries.values()]
    code, output = _run(
        {**base, "tests": [{**group, "promql_expr_test": tests}]}, work, "discover.yml"
    )
    if code == 0:
        return {}
    got = parse_expr_failures(output)
    if not got:
        raise PromtoolError(
            f"promtool failed:\n{output[-3000:]}", "check the rules file with promtool check rules"
        )
    found: dict[tuple[str, tuple[tuple[str, str], ...]], _Found] = {}
    for kind, expr in queries.items():
        for labels, value in got.get(expr, []):
            alert = {k: v for k, v in labels.items() if k not in ("alertstate", "__name__")}
            name = alert.pop("alertname")
            item = found.setdefault((name, tuple(sorted(alert.items()))), _Found(alert))
            if kind == "first":
                item.first = value
            elif kind == "last":
                item.last = value
            elif kind == "count":
                item.count = int(value)
            else:
                item.pending = value
    return found


def _first_times(
    found: Mapping[tuple[str, tuple[tuple[str, str], ...]], _Found],
) -> list[tuple[str, float]]:
    return sorted({(name, item.first) for (name, _), item in found.items() if item.count})


def _negative(
    base: dict[str, Any], group: dict[str, Any], times: Sequence[tuple[str, float]], work: Path
) -> dict[tuple[str, float], list[tuple[dict[str, str], dict[str, str]]]]:
    if not times:
        return {}
    tests = [{"eval_time": duration(t), "alertname": n, "exp_alerts": []} for n, t in times]
    code, output = _run(
        {**base, "tests": [{**group, "alert_rule_test": tests}]}, work, "negative.yml"
    )
    seen = parse_alert_failures(output)
    if code == 0 or set(seen) != set(times):
        raise PromtoolError(
            "promtool's alert tests disagree with its PromQL view of ALERTS: expected failures "
            f"at {times}, got {sorted(seen)}",
            f"the test files are in {work}",
        )
    return seen


def _positive(
    base: dict[str, Any],
    group: dict[str, Any],
    times: Sequence[tuple[str, float]],
    seen: Mapping[tuple[str, float], list[tuple[dict[str, str], dict[str, str]]]],
    found: Mapping[tuple[str, tuple[tuple[str, str], ...]], _Found],
    grid: Sequence[GridPoint],
    step: float,
    work: Path,
    rules: Iterable[str],
) -> str:
    """Empty when promtool's own alert tests agree with what discovery and the negative run
    found; otherwise why not (promtool's output)."""
    tests: list[dict[str, Any]] = []
    for name, t in times:
        expected = [
            {
                "exp_labels": {k: v for k, v in labels.items() if k != "alertname"},
                "exp_annotations": notes,
            }
            for labels, notes in seen[(name, t)]
        ]
        tests.append({"eval_time": duration(t), "alertname": name, "exp_alerts": expected})
        before = t - step
        quiet = all(
            not (item.count and item.first <= before <= item.last)
            for (other, _), item in found.items()
            if other == name
        )
        if before >= 0 and quiet:
            tests.append({"eval_time": duration(before), "alertname": name, "exp_alerts": []})
    # Nothing at all fires at the very end unless the discovery run said so.
    # Every rule is asked, including those that never fired: with nothing found, this is the
    # only run that checks "nothing fired" through promtool's alert tests and not its PromQL.
    end = _last_eval(grid, step)
    firing_at_end = {n for (n, _), item in found.items() if item.count and item.last >= end}
    for name in sorted(set(rules) - firing_at_end):
        tests.append({"eval_time": duration(end), "alertname": name, "exp_alerts": []})
    if not tests:
        return ""
    code, output = _run(
        {**base, "tests": [{**group, "alert_rule_test": tests}]}, work, "positive.yml"
    )
    if code != 0:
        return output[-3000:].strip() or f"promtool exited {code}"
    return ""
