"""The audit's pure judgements: flags, thresholds, configs, expiry; no cluster needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.audit import etcd_flags, lb, topology
from kubedrill.audit.backup_check import MAX_AGE_S, Restored, judge_backup
from kubedrill.audit.clock import judge_offsets
from kubedrill.audit.finding import Finding, exit_code, worst
from kubedrill.audit.flags import go_duration, is_false, parse_flags
from kubedrill.audit.leader_election import LeaseWatch, judge_component
from kubedrill.data import TOOLS_DIR
from kubedrill.server_record.clock import Offset
from kubedrill.targets.lab.config import KubernetesSettings
from kubedrill.targets.lab.kube import KubePaths, haproxy_config
from kubedrill.targets.lab.network import HostPlan

ROOT = Path(__file__).resolve().parents[2]
SEED_FLAGS = {
    "heartbeat-interval": "100",
    "election-timeout": "1000",
    "quota-backend-bytes": "8589934592",
    "snapshot-count": "10000",
    "auto-compaction-retention": "1h",
}


# -- flags ----------------------------------------------------------------------------------------


def test_parse_flags_forms() -> None:
    argv = ["etcd", "--a=1", "--b", "2", "--c", "--d=x=y", "-e=3", "--a=4", "positional", "--f"]
    assert parse_flags(argv) == {"a": "4", "b": "2", "c": "true", "d": "x=y", "e": "3", "f": "true"}
    assert parse_flags(["kube-scheduler"]) == {}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600.0), ("30m", 1800.0), ("1h0m0s", 3600.0), ("1.5s", 1.5), ("250ms", 0.25)],
)
def test_go_duration(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1h30"])
def test_go_duration_rejects(text: str) -> None:
    assert go_duration(text) is None


def test_is_false() -> None:
    assert is_false("false") and is_false("0") and is_false("F")
    assert not is_false("true") and not is_false(None) and not is_false("<unset>")


# -- etcd flags -----------------------------------------------------------------------------------


def statuses(flags: dict[str, str], version: str | None = "3.6.16") -> dict[str, str]:
    return {v.flag: v.status for v in etcd_flags.judge_member(flags, version)}


def test_seed_values_pass() -> None:
    assert set(statuses(SEED_FLAGS).values()) == {"pass"}


def test_etcd_defaults_depend_on_version() -> None:
    found = statuses({}, "3.6.16")
    assert found["heartbeat-interval"] == "pass" and found["election-timeout"] == "pass"
    assert found["quota-backend-bytes"] == "warn"  # 2 GiB, under the seed's 4-8 GiB
    assert found["snapshot-count"] == "pass"  # 3.6's default is 10000
    assert found["auto-compaction-retention"] == "warn"  # off
    assert statuses({}, "3.5.21")["snapshot-count"] == "warn"  # 100000
    assert statuses({}, None)["snapshot-count"] == "warn"  # unknown: the older default


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("heartbeat-interval", "200", "pass"),
        ("heartbeat-interval", "300", "warn"),
        ("heartbeat-interval", "50", "warn"),
        ("heartbeat-interval", "600", "fail"),
        ("heartbeat-interval", "10", "fail"),
        ("heartbeat-interval", "abc", "fail"),
        ("election-timeout", "2000", "pass"),
        ("election-timeout", "3000", "warn"),
        ("election-timeout", "6000", "fail"),
        ("quota-backend-bytes", str(4 * 1024**3), "pass"),
        ("quota-backend-bytes", str(16 * 1024**3), "warn"),
        ("quota-backend-bytes", "0", "warn"),
        ("snapshot-count", "5000", "pass"),
        ("snapshot-count", "50000", "warn"),
        ("snapshot-count", "500000", "fail"),
        ("auto-compaction-retention", "30m", "pass"),
        ("auto-compaction-retention", "1", "pass"),  # periodic: a bare number is hours
        ("auto-compaction-retention", "2h", "warn"),
        ("auto-compaction-retention", "0", "warn"),
        ("auto-compaction-retention", "soon", "fail"),
    ],
)
def test_flag_bands(flag: str, value: str, expected: str) -> None:
    assert statuses({**SEED_FLAGS, flag: value})[flag] == expected


def test_election_against_heartbeat() -> None:
    # etcd refuses an election timeout under 5 heartbeats; it advises 10.
    assert statuses({**SEED_FLAGS, "heartbeat-interval": "250"})["election-timeout"] == "fail"
    assert statuses({**SEED_FLAGS, "heartbeat-interval": "150"})["election-timeout"] == "warn"


def test_revision_compaction_warns() -> None:
    flags = {**SEED_FLAGS, "auto-compaction-mode": "revision", "auto-compaction-retention": "1000"}
    assert statuses(flags)["auto-compaction-retention"] == "warn"


def test_members_judged_together() -> None:
    bad = {**SEED_FLAGS, "snapshot-count": "500000"}
    found = etcd_flags.judge_members(
        {"m1": SEED_FLAGS, "m2": bad, "m3": SEED_FLAGS},
        {"m1": "/proc/1/cmdline", "m2": "/proc/2/cmdline", "m3": "/proc/3/cmdline"},
    )
    assert found.status == "fail"
    assert "--snapshot-count=500000 on m2" in found.evidence
    assert found.fix.startswith("set --snapshot-count=10000 on every member")
    assert any(d.startswith("PASS --snapshot-count=10000 on m1, m3") for d in found.details)


def test_unreadable_members_warn() -> None:
    found = etcd_flags.judge_members({"m1": SEED_FLAGS}, {"m1": "x"}, unreadable=["m2"])
    assert found.status == "warn" and "unreadable on m2" in found.evidence
    assert etcd_flags.judge_members({}, {}, unreadable=["m1"]).status == "warn"


# -- topology -------------------------------------------------------------------------------------


def test_control_plane_count() -> None:
    assert topology.judge_control_planes(["a", "b", "c"], ["a", "b", "c"]).status == "pass"
    two = topology.judge_control_planes(["a", "b"], None)
    assert two.status == "fail" and "it has 2" in two.fix


def test_zones() -> None:
    assert topology.judge_zones({}).status == "warn"  # no Node labelled control-plane
    unlabelled = topology.judge_zones({"a": None, "b": "z1", "c": "z2"}, note=" (lab)")
    assert unlabelled.status == "warn" and "label on a (lab)" in unlabelled.evidence
    assert topology.judge_zones({"a": "z1", "b": "z1", "c": "z1"}).status == "fail"
    assert topology.judge_zones({"a": "z1", "b": "z1", "c": "z2"}).status == "warn"
    assert topology.judge_zones({"a": "z1", "b": "z2", "c": "z3"}).status == "pass"
    five = {"a": "z1", "b": "z1", "c": "z2", "d": "z2", "e": "z3"}
    assert topology.judge_zones(five).status == "pass"  # no zone holds 3 of 5


def test_member_counts() -> None:
    def judge(n: int, learners: int = 0) -> tuple[str, str]:
        members = {f"m{i}": False for i in range(n)} | {f"l{i}": True for i in range(learners)}
        found = topology.judge_members(members, "m0")
        return found.status, found.fix

    assert judge(3) == ("pass", "")
    assert judge(5)[0] == "pass" and judge(7)[0] == "pass"
    assert judge(1)[0] == "fail"
    assert judge(2) == ("fail", judge(2)[1]) and judge(2)[1].startswith("run 3 members")
    assert judge(4)[1].startswith("run 5 or 3 members")
    assert judge(9)[0] == "warn"
    assert judge(3, learners=1)[0] == "pass"  # a learner does not vote


# -- load balancer --------------------------------------------------------------------------------


def lab_haproxy(settings: KubernetesSettings) -> str:
    lb_host = HostPlan("lb", "10.0.0.10", "ns-lb", "v-lb")
    controls = [HostPlan(f"control-{i}", f"10.0.0.{i}", f"ns{i}", f"v{i}") for i in (1, 2, 3)]
    return haproxy_config(lb_host, controls, KubePaths(Path("/state")), settings)


def test_lab_haproxy_passes() -> None:
    [check] = lb.parse_haproxy(lab_haproxy(KubernetesSettings()))
    assert check == lb.HealthCheck("kube-apiserver", "http", "/readyz", 2.0, 3, 2, 3, 3)
    assert lb.judge_checks([check], "lb:haproxy.cfg").status == "pass"


def test_slow_checks_fail() -> None:
    [check] = lb.parse_haproxy(lab_haproxy(KubernetesSettings(lb_check_inter_ms=20000)))
    found = lb.judge_check(check)
    assert found.status == "fail" and "60 s" in found.fix


SEED_HAPROXY = """
defaults
    mode tcp
backend kubernetes-backend
    mode tcp
    balance roundrobin
    option tcp-check
    tcp-check connect port 6443 ssl
    server control-1 control-1:6443 check fall 3 rise 2 inter 2000
    server control-2 control-2:6443 check fall 3 rise 2 inter 2000
    server control-3 control-3:6443 check fall 3 rise 2 inter 2000
"""


def test_seed_tls_hello_check_warns() -> None:
    [check] = lb.parse_haproxy(SEED_HAPROXY)
    assert (check.kind, check.inter_s, check.fall, check.checked) == ("tcp", 2.0, 3, 3)
    assert lb.judge_check(check).status == "warn"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("backend b\n    server a 1.1.1.1:6443\n    server b 1.1.1.2:6443\n", "fail"),
        ("backend b\n    server a 1.1.1.1:6443 check\n    server b 1.1.1.2:6443\n", "fail"),
        (
            "defaults\n    default-server inter 1s fall 2 rise 1\n"
            "backend b\n    option httpchk GET /healthz\n    server a 1.1.1.1:6443 check\n",
            "warn",
        ),
        (
            "backend b\n    option httpchk\n    http-check send meth GET uri /readyz\n"
            "    server a 1.1.1.1:6443 check inter 100ms\n",
            "warn",  # every 0.1 s
        ),
        (
            "listen api\n    bind :6443\n    option httpchk GET /readyz\n"
            "    server a 1.1.1.1:6443 check inter 3s fall 4 rise 2  # comment\n",
            "pass",
        ),
        ("frontend f\n    bind :6443\n", "fail"),  # no backend with servers
    ],
)
def test_haproxy_judgements(config: str, expected: str) -> None:
    assert lb.judge_checks(lb.parse_haproxy(config), "cfg").status == expected


def test_haproxy_time() -> None:
    assert lb.haproxy_time("2000") == 2.0
    assert lb.haproxy_time("2s") == 2.0 and lb.haproxy_time("500ms") == 0.5
    assert lb.haproxy_time("1m") == 60.0 and lb.haproxy_time("x") is None


def test_kind_envoy_checks_healthz() -> None:
    """kind's load balancer config (the shape kindlb's test data copies): /healthz, 2 s, 2."""
    text = (TOOLS_DIR / "kindlb" / "testdata" / "cds.yaml").read_text()
    [check] = lb.parse_envoy_cds(text)
    assert (check.kind, check.path, check.inter_s, check.fall, check.rise, check.servers) == (
        "http",
        "/healthz",
        2.0,
        2,
        1,
        3,
    )
    found = lb.judge_check(check)
    assert found.status == "warn" and "/readyz instead of /healthz" in found.fix


def test_envoy_without_checks_fails() -> None:
    text = "resources:\n- name: api\n  load_assignment: {endpoints: [{lb_endpoints: [{}, {}]}]}\n"
    [check] = lb.parse_envoy_cds(text)
    assert check.kind == "none" and lb.judge_check(check).status == "fail"
    assert lb.parse_envoy_cds(": not yaml [") == []


# -- backup, leader election, clock ----------------------------------------------------------------


def test_backup_judgement() -> None:
    path = Path("/backups/snap.db")
    ok = Restored(100, 50, 4096, 100, 40)
    assert judge_backup(path, 3600, ok, "").status == "pass"
    old = judge_backup(path, MAX_AGE_S + 1, ok, "")
    assert old.status == "warn" and "older than 24 h" in old.evidence
    lost = judge_backup(path, 60, Restored(100, 50, 4096, 90, 40), "")
    assert lost.status == "fail"
    broken = judge_backup(path, 60, None, "etcdutl snapshot status failed (exit 1)")
    assert broken.status == "fail" and "etcdutl" in broken.evidence


RENEWED = LeaseWatch(True, "cp-1_abc", 15, "t1", "t2", 2.0)


def test_leader_election() -> None:
    on = {"cp-1": "true", "cp-2": "<unset>", "cp-3": None}
    assert judge_component("kube-scheduler", RENEWED, on).status == "pass"
    off = judge_component("kube-scheduler", RENEWED, {**on, "cp-2": "false"})
    assert off.status == "fail" and "cp-2" in off.evidence
    assert judge_component("kube-scheduler", LeaseWatch(False), on).status == "fail"
    assert judge_component("kube-scheduler", LeaseWatch(True, ""), on).status == "fail"
    stuck = LeaseWatch(True, "cp-1_abc", 15, "t1", "t1", 17.0)
    found = judge_component("kube-scheduler", stuck, on)
    assert found.status == "fail" and "not renewed in 17.0 s" in found.evidence


def test_clock_offsets() -> None:
    assert judge_offsets({}).status == "skip"
    assert judge_offsets({"a": Offset(0.002, 0.001), "b": Offset(-0.01, 0.002)}).status == "pass"
    assert judge_offsets({"a": Offset(0.15, 0.001)}).status == "warn"
    assert judge_offsets({"a": Offset(0.05, 0.08)}).status == "warn"  # may be over 100 ms
    assert judge_offsets({"a": Offset(-2.0, 0.01)}).status == "fail"
    assert judge_offsets({"a": Offset(1.05, 0.1)}).status == "warn"  # not surely over 1 s
    assert judge_offsets({"a": None, "b": Offset(0.0, 0.0)}).status == "warn"


def test_worst_and_exit_code() -> None:
    assert worst(["pass", "skip", "warn"]) == "warn" and worst([]) == "skip"
    assert worst(["warn", "fail", "pass"]) == "fail"
    found = [Finding("a", "A", "pass", "e"), Finding("b", "B", "warn", "e", "fix")]
    assert exit_code(found) == 0
    assert exit_code([*found, Finding("c", "C", "fail", "e", "fix")]) == 1
