"""Series -> promtool test files (pure), and the shipped alert rules evaluated by the real
promtool on hand-made series: the steady state fires nothing, each failure fires its alert."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from kubedrill.checks import alerts
from kubedrill.checks.alert_rules import AlertRulesCheck
from kubedrill.checks.alerts import (
    DEFAULT_RULES,
    evaluate,
    load_rules,
    parse_alert_failures,
    parse_duration,
    parse_expr_failures,
)
from kubedrill.checks.base import CheckContext
from kubedrill.checks.leader_crosscheck import (
    LeaderChangeCheck,
    counter_increase,
    leader_change_crosscheck,
)
from kubedrill.checks.promtool_file import (
    STALE,
    Hold,
    build_grid,
    encode,
    series_selector,
    tokens_on_grid,
)
from kubedrill.errors import ConfigError, MissingBinaryError
from kubedrill.probes.metrics import (
    APISERVER_SERIES,
    ETCD_SERIES,
    filter_text,
    parse_samples,
    series_key,
)
from kubedrill.timeline import Timeline
from kubedrill.workload.metrics_recorder import MetricsRecorder, RecordedSeries

RULES = DEFAULT_RULES
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool")

# -- pure: expanding notation, grid, holds -----------------------------------------------------


def test_encode_runs_ramps_gaps_and_stale() -> None:
    assert encode([1.0, 1.0, 1.0]) == "1+0x2"
    assert encode([3.0, 4.0, 5.0, 6.0]) == "3+1x3"
    assert encode([6.0, 4.0, 2.0]) == "6-2x2"
    assert encode([None, None, 2.5]) == "_x2 2.5"
    assert encode([1.0, STALE, None, 1.0]) == "1 stale _ 1"
    assert encode([0.25, 0.5, 0.75, 2.0]) == "0.25+0.25x2 2"
    assert encode([0.1, 0.2, 0.30000000000000004]) == "0.1+0.1x2"  # promtool adds in float64


def test_encode_round_trips_through_promtool_semantics() -> None:
    tokens: list[float | str | None] = [5.0, 6.0, 7.0, 7.0, None, STALE, 0.1, 0.1]
    expanded: list[str] = []
    for part in encode(tokens).split():
        if part.startswith("_x"):
            expanded += ["_"] * int(part[2:])
        elif "x" in part:
            head, times = part.rsplit("x", 1)
            sign = "+" if "+" in head[1:] else "-"
            start, delta = head[0] + head[1:].split(sign)[0], head[1:].split(sign)[1]
            value, d = float(start), float(delta) * (1 if sign == "+" else -1)
            expanded += [str(value + d * i) for i in range(int(times) + 1)]
        else:
            expanded.append(part)
    want = ["5.0", "6.0", "7.0", "7.0", "_", "stale", "0.1", "0.1"]
    assert [e if e in ("_", "stale") else str(float(e)) for e in expanded] == want


def test_grid_inserts_holds_after_their_slot() -> None:
    grid = build_grid(10.0, 13.0, 1.0, [Hold(11.2, 2.0, "fault")])
    assert [(p.test_s, p.drill_s, p.held, p.held_s) for p in grid] == [
        (0.0, 10.0, None, 0.0),
        (1.0, 11.0, None, 0.0),
        (2.0, 11.0, "fault", 1.0),
        (3.0, 11.0, "fault", 2.0),
        (4.0, 12.0, None, 0.0),
        (5.0, 13.0, None, 0.0),
    ]


def test_tokens_hold_the_last_value_and_a_vanished_series_stays_absent() -> None:
    grid = build_grid(0.0, 4.0, 1.0, [Hold(1.0, 2.0), Hold(3.0, 2.0)])
    points = [(0.05, 1.0), (1.02, 2.0), (2.9, None)]
    # slots 0,1 -> values; hold of 1 repeats 2; slot 2 empty; slot 3 stale; hold of 3 absent
    assert tokens_on_grid(points, grid, 0.0, 1.0) == [1.0, 2.0, 2.0, 2.0, None, STALE] + [None] * 3


def test_a_held_counter_keeps_its_rate_and_later_samples_are_shifted() -> None:
    grid = build_grid(0.0, 4.0, 1.0, [Hold(2.0, 2.0)])
    points: list[tuple[float, float | None]] = [(0, 10.0), (1, 12.0), (2, 14.0), (3, 16.0)]
    tokens = tokens_on_grid(points, grid, 0.0, 1.0, counter=True)
    assert tokens == [10.0, 12.0, 14.0, 16.0, 18.0, 20.0, None]
    assert tokens_on_grid(points, grid, 0.0, 1.0)[3:5] == [14.0, 14.0]  # a gauge is held flat


def test_series_selector_escapes_label_values() -> None:
    labels = (("job", "etcd"), ("odd", 'a"b\\c'))
    assert series_selector("up", labels) == 'up{job="etcd",odd="a\\"b\\\\c"}'


# -- pure: parsing what components expose ------------------------------------------------------

APISERVER_TEXT = """# HELP apiserver_request_total Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",resource="pods",verb="GET"} 10
apiserver_request_total{code="200",resource="nodes",verb="LIST"} 5
apiserver_request_total{code="500",resource="pods",verb="GET"} 2
apiserver_request_duration_seconds_bucket{resource="pods",verb="GET",le="1"} 3
apiserver_request_duration_seconds_bucket{resource="nodes",verb="GET",le="1"} 4
apiserver_request_duration_seconds_bucket{resource="pods",verb="WATCH",le="1"} 9
apiserver_request_sli_duration_seconds_bucket{verb="GET",le="1"} 7
process_start_time_seconds 1.7e+09
go_goroutines 300
"""


def test_apiserver_samples_are_summed_by_the_kept_labels() -> None:
    samples = parse_samples(APISERVER_TEXT, APISERVER_SERIES)
    assert samples == {
        series_key("apiserver_request_total", {"code": "200"}): 15.0,
        series_key("apiserver_request_total", {"code": "500"}): 2.0,
        series_key("apiserver_request_duration_seconds_bucket", {"verb": "GET", "le": "1"}): 7.0,
        series_key("process_start_time_seconds", {}): 1.7e9,
    }


def test_filter_keeps_exact_names_only() -> None:
    text = "etcd_server_has_leader 1\netcd_server_has_leader_x 5\n# TYPE x gauge\n"
    assert filter_text(text, ETCD_SERIES) == "etcd_server_has_leader 1\n"


def test_durations_and_rules_file() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("1s500ms") == 1.5
    with pytest.raises(ConfigError):
        parse_duration("5 minutes")
    names = {r.name: r.for_s for r in load_rules(RULES)}
    assert names["EtcdInsufficientMembers"] == 300.0 and names["NodeNotReady"] == 600.0
    assert set(names) >= {"APIServerDown", "ControllerManagerDown", "SchedulerDown"}


def test_missing_rules_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read alert rules"):
        load_rules(tmp_path / "nope.yml")


def test_missing_promtool_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaryError, match="promtool is not installed") as err:
        evaluate(cluster(seconds=3), RULES)
    assert "prometheus package" in err.value.hint


PROMTOOL_OUTPUT = """  FAILED:
    alertname: Down, time: 1m6s,
        exp:[],
        got:[
            0:
              Labels:{alertname="Down", instance="a", job="etcd"}
              Annotations:{summary="down \\"a\\""}
            ]
    expr: "min_over_time(timestamp(ALERTS{alertstate=\\"firing\\"})[20s:1s])", time: 12s,
        exp: nil
        got: {alertname="Down", alertstate="firing", instance="a"} 5E+00, \
{alertname="Down", alertstate="firing", instance="b"} 1.2E+01
"""  # the backslash joins the two lines, as promtool prints them


def test_promtool_failure_output_is_parsed() -> None:
    alerts = parse_alert_failures(PROMTOOL_OUTPUT)
    assert alerts == {
        ("Down", 66.0): [
            ({"alertname": "Down", "instance": "a", "job": "etcd"}, {"summary": 'down "a"'})
        ]
    }
    exprs = parse_expr_failures(PROMTOOL_OUTPUT)
    assert exprs == {
        'min_over_time(timestamp(ALERTS{alertstate="firing"})[20s:1s])': [
            ({"alertname": "Down", "alertstate": "firing", "instance": "a"}, 5.0),
            ({"alertname": "Down", "alertstate": "firing", "instance": "b"}, 12.0),
        ]
    }


# -- leader change cross-check ------------------------------------------------------------------


def test_counter_increase_counts_resets_like_prometheus() -> None:
    points: list[tuple[float, float | None]] = [(0, 3.0), (1, 3.0), (2, None), (3, 1.0), (4, 2.0)]
    assert counter_increase(points, 0.5, 4.0) == (2.0, 3)
    assert counter_increase(points, 3.5, 4.0) == (1.0, 4)
    assert counter_increase(points, 0.5, 1.5) == (0.0, None)


# -- hand-made clusters, evaluated by the real promtool ----------------------------------------

ETCD = ("etcd-1", "etcd-2", "etcd-3")
CONTROL = ("control-1", "control-2", "control-3")
Down = Callable[[str, int], bool]


def never(_node: str, _t: int) -> bool:
    return False


def cluster(
    seconds: int = 40,
    *,
    etcd_down: Down = never,
    no_leader: Down = never,
    job_down: dict[str, Down] | None = None,
    not_ready: Down = never,
    commit_s: float = 0.002,
    api_latency_s: float = 0.01,
    fsync_s: Callable[[int], float] = lambda _t: 0.002,
) -> RecordedSeries:
    """A 3-member etcd and a 3-host control plane, scraped every second."""
    series = RecordedSeries(1.0)
    job_down = job_down or {}
    for t in range(seconds):
        offset = t + 0.01
        for i, node in enumerate(ETCD):
            target = {"job": "etcd", "instance": f"10.0.0.{i + 1}:2381", "node": node}
            down = etcd_down(node, t)
            series.add(series_key("up", target), offset, 0.0 if down else 1.0)
            leader = 0.0 if no_leader(node, t) else 1.0
            series.add(
                series_key("etcd_server_has_leader", target), offset, None if down else leader
            )
            for le, share in (("0.004", float(commit_s <= 0.004)), ("1", 1.0), ("+Inf", 1.0)):
                key = series_key(
                    "etcd_disk_backend_commit_duration_seconds_bucket", {**target, "le": le}
                )
                series.add(key, offset, None if down else 10.0 * t * share)
            # etcd's WAL fsync buckets (a subset of its 1 ms .. 8.192 s doublings): 20 fsyncs
            # a second, each as slow as fsync_s says at that second; a disk slower than 0.1 s
            # manages 0.5 a second.
            total = {le: 0.0 for le in WAL_BUCKETS}
            for second in range(t + 1):
                took = fsync_s(second)
                for le in WAL_BUCKETS:
                    total[le] += (20.0 if took < 0.1 else 0.5) * float(took <= float(le))
            for le in WAL_BUCKETS:
                key = series_key(
                    "etcd_disk_wal_fsync_duration_seconds_bucket", {**target, "le": le}
                )
                series.add(key, offset, None if down else total[le])
        for i, node in enumerate(CONTROL):
            for job, port in (
                ("apiserver", 6443),
                ("kube-controller-manager", 10257),
                ("kube-scheduler", 10259),
            ):
                target = {"job": job, "instance": f"10.0.1.{i + 1}:{port}", "node": node}
                down = job_down.get(job, never)(node, t)
                series.add(series_key("up", target), offset, 0.0 if down else 1.0)
                if job == "apiserver":
                    for le, share in (("1", float(api_latency_s <= 1)), ("5", 1.0), ("+Inf", 1.0)):
                        key = series_key(
                            "apiserver_request_duration_seconds_bucket",
                            {**target, "verb": "GET", "le": le},
                        )
                        series.add(key, offset, None if down else 20.0 * t * share)
        for node in CONTROL:
            for status in ("true", "false", "unknown"):
                labels = {
                    "job": "kube-state-metrics",
                    "instance": "kubedrill",
                    "node": node,
                    "condition": "Ready",
                    "status": status,
                }
                now = "unknown" if not_ready(node, t) else "true"
                value = 1.0 if status == now else 0.0
                series.add(series_key("kube_node_status_condition", labels), offset, value)
    return series


WAL_BUCKETS = ("0.004", "0.016", "0.064", "1.024", "2.048", "8.192", "+Inf")


def during(first: int, last: int, *nodes: str) -> Down:
    return lambda node, t: node in nodes and first <= t <= last


HOLDS = [Hold(9.0, 630.0, "steady state"), Hold(25.0, 630.0, "fault")]


@needs_promtool
def test_promtool_accepts_the_rules_file() -> None:
    proc = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 13 rules found" in proc.stdout


@needs_promtool
def test_healthy_steady_state_held_past_every_for_fires_nothing() -> None:
    report = evaluate(cluster(), RULES, holds=HOLDS)
    assert report.fired_names() == []
    assert report.confirmed


@needs_promtool
def test_two_of_three_etcd_members_down_fires_insufficient_members() -> None:
    series = cluster(
        etcd_down=during(20, 30, "etcd-2", "etcd-3"), no_leader=during(20, 30, "etcd-1")
    )
    report = evaluate(series, RULES, holds=HOLDS)
    assert report.fired_names() == ["EtcdInsufficientMembers", "EtcdNoLeader"]
    insufficient = report.outcomes["EtcdInsufficientMembers"].instances[0]
    assert insufficient.labels == {"job": "etcd", "severity": "critical"}
    assert insufficient.held == "fault" and insufficient.first_firing_s == pytest.approx(25.01)
    # pending from the first scrape that saw two members down, firing 5 minutes later
    assert insufficient.pending_since_s == pytest.approx(20.01)
    assert insufficient.held_s == pytest.approx(300.0 - 5.0)
    assert insufficient.annotations["description"].startswith("etcd cluster etcd has 1 members")
    no_leader = report.outcomes["EtcdNoLeader"].instances[0]
    assert no_leader.labels["node"] == "etcd-1"
    assert report.confirmed


@needs_promtool
def test_one_etcd_member_down_keeps_quorum_and_fires_nothing_but_the_seed_rule_did(
    tmp_path: Path,
) -> None:
    series = cluster(etcd_down=during(20, 30, "etcd-2"))
    assert evaluate(series, RULES, holds=HOLDS).fired_names() == []
    seed = tmp_path / "seed.rules.yml"
    seed.write_text(
        "groups:\n- name: seed\n  rules:\n  - alert: EtcdInsufficientMembers\n"
        "    expr: count(etcd_server_has_leader) < 3\n    for: 5m\n"
    )
    assert evaluate(series, seed, holds=HOLDS).fired_names() == ["EtcdInsufficientMembers"]


@needs_promtool
def test_every_etcd_member_down_fires_but_the_seed_rule_stays_silent(tmp_path: Path) -> None:
    series = cluster(etcd_down=during(20, 30, *ETCD))
    assert "EtcdInsufficientMembers" in evaluate(series, RULES, holds=HOLDS).fired_names()
    seed = tmp_path / "seed.rules.yml"
    seed.write_text(
        "groups:\n- name: seed\n  rules:\n  - alert: EtcdInsufficientMembers\n"
        "    expr: count(etcd_server_has_leader) < 3\n    for: 5m\n"
    )
    assert evaluate(series, seed, holds=HOLDS).fired_names() == []


@needs_promtool
def test_apiserver_down_long_enough_fires_for_that_instance_only() -> None:
    series = cluster(job_down={"apiserver": during(20, 39, "control-2")})
    report = evaluate(series, RULES, holds=HOLDS)
    assert report.fired_names() == ["APIServerDown"]
    (instance,) = report.outcomes["APIServerDown"].instances
    assert instance.labels["instance"] == "10.0.1.2:6443"


@needs_promtool
def test_apiserver_down_shorter_than_for_is_only_pending() -> None:
    series = cluster(job_down={"apiserver": during(20, 39, "control-2")})
    report = evaluate(series, RULES)  # no hold: 20 s down, `for: 5m`
    assert report.fired_names() == []
    assert report.outcomes["APIServerDown"].pending


@needs_promtool
def test_controller_manager_scheduler_and_node_alerts() -> None:
    series = cluster(
        job_down={
            "kube-controller-manager": during(20, 39, "control-1"),
            "kube-scheduler": during(20, 39, "control-3"),
        },
        not_ready=during(20, 39, "control-2"),
    )
    report = evaluate(series, RULES, holds=HOLDS)
    assert report.fired_names() == ["ControllerManagerDown", "NodeNotReady", "SchedulerDown"]
    assert report.outcomes["NodeNotReady"].instances[0].labels["node"] == "control-2"


@needs_promtool
def test_slow_commits_and_slow_requests_fire_their_latency_alerts() -> None:
    report = evaluate(cluster(commit_s=0.5, api_latency_s=3.0), RULES, holds=HOLDS)
    assert report.fired_names() == ["APIServerLatencyHigh", "EtcdHighCommitDurations"]
    # from the recorded data plus the steady-state hold: `for: 10m` is reached inside it
    assert report.outcomes["EtcdHighCommitDurations"].instances[0].held == "steady state"


def leader_change_series(*, has_leader: bool) -> RecordedSeries:
    """Every member's leader-change counter rises at t=5 (etcd-2 without a leader then)."""
    series = RecordedSeries(1.0)
    for t in range(10):
        for node in ETCD:
            target = {"job": "etcd", "instance": node, "node": node}
            changes = 1.0 if t < 5 else 2.0
            series.add(series_key("etcd_server_leader_changes_seen_total", target), t, changes)
            if has_leader:
                leader = 0.0 if (node == "etcd-2" and t == 5) else 1.0
                series.add(series_key("etcd_server_has_leader", target), t, leader)
            series.add(series_key("up", target), t, 1.0)
    return series


def test_leader_crosscheck_sees_the_counter_rise_inside_the_window() -> None:
    series = leader_change_series(has_leader=True)
    figures = leader_change_crosscheck(series, 4.2, 4.8)
    assert figures["agrees"] and figures["first_rise_s"] == 5
    assert figures["leader_changes_increase"] == {"etcd-1": 1.0, "etcd-2": 1.0, "etcd-3": 1.0}
    assert figures["has_leader_zero_at_s"] == {"etcd-2": [5]}
    assert not leader_change_crosscheck(series, 7.0, 8.0)["agrees"]


# -- promtool's positive run can disagree, and then nothing is confirmed -----------------------


def disagree_on_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative run's view, doctored: the positive run then expects an annotation the
    rules never render, as it would if parsing promtool's output went wrong."""
    real = alerts._negative

    def doctored(*args: Any, **kwargs: Any) -> Any:
        seen = real(*args, **kwargs)
        return {
            key: [(labels, {**notes, "summary": "not what the rule says"}) for labels, notes in got]
            for key, got in seen.items()
        }

    monkeypatch.setattr(alerts, "_negative", doctored)


def quorum_lost() -> RecordedSeries:
    return cluster(etcd_down=during(20, 30, "etcd-2", "etcd-3"), no_leader=during(20, 30, "etcd-1"))


@needs_promtool
def test_a_disagreeing_positive_run_leaves_the_report_unconfirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disagree_on_annotations(monkeypatch)
    report = evaluate(quorum_lost(), RULES, holds=HOLDS)
    assert report.confirmed is False
    assert "not what the rule says" in report.unconfirmed
    assert report.to_dict()["confirmed"] is False
    assert "NOT CONFIRMED" in report.render()
    # what discovery found is still reported, for a person to look at
    assert "EtcdInsufficientMembers" in report.fired_names()


@dataclass
class FakeMetrics:
    recorded: RecordedSeries

    def series(self) -> RecordedSeries:
        return self.recorded


def drill_context(injecting: float = 20.0, healing: float = 30.0) -> CheckContext:
    now = [0.0]
    timeline = Timeline(clock=lambda: now[0], wall=lambda: 1e9)
    for offset, event in ((injecting, "fault.injecting"), (healing, "fault.healing")):
        now[0] = offset
        timeline.mark(event)
    return CheckContext("drill", timeline, lambda _k, _v: None)


def alert_check(expect: tuple[str, ...] = ()) -> AlertRulesCheck:
    metrics = FakeMetrics(quorum_lost())
    return AlertRulesCheck(cast(MetricsRecorder, metrics), expect)


@needs_promtool
def test_alert_check_valid_when_the_expected_alert_fired() -> None:
    verdict = alert_check(("EtcdInsufficientMembers",)).run(drill_context())
    assert verdict is not None and verdict.status == "valid", verdict
    assert verdict.figures["confirmed"] is True
    assert [a.name for a in verdict.attachments] == ["alert rules"]


@needs_promtool
def test_alert_check_invalid_when_an_expected_alert_did_not_fire() -> None:
    verdict = alert_check(("APIServerDown",)).run(drill_context())
    assert verdict is not None and verdict.status == "invalid", verdict
    assert "did not fire: APIServerDown" in verdict.detail


@needs_promtool
def test_alert_check_unconfirmed_is_unknown_or_invalid_with_an_expectation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disagree_on_annotations(monkeypatch)
    quiet = alert_check().run(drill_context())
    assert quiet is not None and quiet.status == "unknown", quiet
    assert quiet.figures["confirmed"] is False
    expecting = alert_check(("EtcdInsufficientMembers",)).run(drill_context())
    assert expecting is not None and expecting.status == "invalid", expecting
    assert "not shown to fire" in expecting.detail


def test_alert_check_has_nothing_to_judge_without_a_fault() -> None:
    ctx = CheckContext("drill", Timeline(), lambda _k, _v: None)
    assert alert_check(("EtcdInsufficientMembers",)).run(ctx) is None


def test_leader_change_check_judges_the_measured_window() -> None:
    series = leader_change_series(has_leader=False)

    def judged(injecting: float, elected: float | None, recorded: RecordedSeries) -> Any:
        now = [0.0]
        timeline = Timeline(clock=lambda: now[0], wall=lambda: 1e9)
        for offset, event in ((injecting, "fault.injecting"), (elected, "leader.elected")):
            if offset is not None:
                now[0] = offset
                timeline.mark(event)
        seen: dict[str, Any] = {}
        check = LeaderChangeCheck(cast(MetricsRecorder, FakeMetrics(recorded)))
        verdict = check.run(CheckContext("d", timeline, seen.__setitem__))
        return verdict, seen

    verdict, seen = judged(4.2, 4.8, series)
    assert verdict.status == "valid" and seen["leader_change_vs_metrics"]["agrees"]
    verdict, _ = judged(7.0, 8.0, series)  # the counter did not rise in this window
    assert verdict.status == "invalid", verdict
    verdict, _ = judged(4.2, 4.8, RecordedSeries(1.0))  # nothing scraped: no verdict either way
    assert verdict.status == "unknown", verdict
    assert judged(4.2, None, series)[0] is None  # no leader change measured: nothing to judge


def test_the_longest_range_window_of_an_expression() -> None:
    assert alerts.longest_window("up == 0") == 0.0
    assert alerts.longest_window("rate(x[5m]) > rate(y[1m30s])") == 300.0
    assert alerts.longest_window("max_over_time(rate(x[1m])[10m:30s])") == 600.0
    rules = {r.name: r for r in alerts.load_rules(RULES)}
    assert rules["EtcdWALFsyncVerySlow"].window_s == 300.0
    assert rules["EtcdNoLeader"].window_s == 0.0


def test_a_drills_holds_fill_the_longest_window_then_the_longest_for() -> None:
    timeline = Timeline()
    timeline.mark("fault.injecting")
    timeline.mark("fault.healing")
    rules = [alerts.AlertRule("a", 600.0, 300.0), alerts.AlertRule("b", 300.0, 0.0)]
    holds = alerts.holds_for_drill(timeline, rules, 1.0, margin=30.0)
    assert [h.seconds for h in holds] == [930.0, 930.0]
    assert [h.label for h in holds] == ["steady state", "fault"]


@needs_promtool
@pytest.mark.parametrize(
    ("fsync_s", "fired"),
    [
        (0.002, []),
        (0.03, ["EtcdWALFsyncSlow"]),
        (1.5, ["EtcdWALFsyncSlow", "EtcdWALFsyncVerySlow"]),
    ],
)
def test_wal_fsync_alerts_warn_above_10ms_and_page_above_1s(
    fsync_s: float, fired: list[str]
) -> None:
    report = evaluate(cluster(fsync_s=lambda _t: fsync_s), RULES, holds=HOLDS)
    assert report.confirmed
    assert report.fired_names() == fired


@needs_promtool
def test_a_slow_disk_only_in_the_fault_fires_the_critical_alert_in_a_long_enough_hold() -> None:
    """Fast fsyncs (20/s) until t=25, then 1.5 s ones (0.5/s): the fault's hold must outlast
    the rate window (5 min of the steady state's fast fsyncs) and then the 10 min `for:`."""
    series = cluster(fsync_s=lambda t: 1.5 if t >= 25 else 0.002)
    rules = alerts.load_rules(RULES)
    long_enough = max(r.window_s + r.for_s for r in rules) + 30.0
    fault = Hold(38.0, long_enough, "fault")
    report = evaluate(series, RULES, holds=[Hold(9.0, long_enough, "steady state"), fault])
    assert report.fired_names() == ["EtcdWALFsyncSlow", "EtcdWALFsyncVerySlow"]
    assert report.outcomes["EtcdWALFsyncVerySlow"].instances[0].held == "fault"
    # Held only for the longest `for:` (the old hold), the 5 min window still holds the
    # steady state's fast fsyncs for half of it: the critical alert never fires.
    short = evaluate(series, RULES, holds=[Hold(9.0, 630.0, "steady state"), Hold(38.0, 630.0)])
    assert "EtcdWALFsyncVerySlow" not in short.fired_names()
