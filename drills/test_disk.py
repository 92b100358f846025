"""Disk drills (issue #13): etcd's backend quota exhausted, and the recovery runbook."""

from __future__ import annotations

import pytest

from kubedrill.disaster import quota
from kubedrill.drill import Drill
from kubedrill.probes import etcd_checks as check
from kubedrill.probes.etcd import EtcdClient

pytestmark = [pytest.mark.disk, pytest.mark.disruptive]

ETCD_HEALTHY = "every etcd member answers and a quorum agrees on one leader"
PREFIX = "/kubedrill/quota/"


@pytest.mark.expect_alerts("EtcdBackendQuotaLowSpace")
def test_quota_exhaustion(drill: Drill, etcd: EtcdClient) -> None:
    """Fill etcd with large overwrites until the NOSPACE alarm: writes are refused, reads are
    still served, the alarm is listed and the alert fires. Then the runbook (compact to the
    current revision, defragment every member, disarm) makes writes accepted again within the
    recovery budget, counted from the alarm.

    Runs on a small-quota lab (fixtures/labs/quota-etcd.yaml, `make drill-disk`); skipped with
    the reason where the quota is bigger than the drill fills. The consistency workload runs
    through it: its writes are refused while the alarm is raised (`fail`; refused for space
    everywhere, so never applied) and every check must still hold."""
    drill.steady_state(ETCD_HEALTHY, lambda: check.all_healthy(etcd))
    exhaust = quota.ExhaustQuota(prefix=PREFIX)
    runbook = quota.Runbook(etcd)
    # The runbook is carried out while the fault is held: it is what the drill times. The
    # fault's undo (`kubedrill etcd recover-nospace`) then only deletes the drill's keys; had
    # the drill failed or been killed before, the same undo (or `kubedrill heal`) runs it.
    with drill.fault(exhaust):
        plan = quota.fill_plan(exhaust.quota)
        drill.observe("quota_mib", exhaust.quota / quota.MiB)
        filled = drill.act(
            f"fill: overwrite {plan.keys} keys with {plan.value_bytes // 1024} KiB values "
            f"until NOSPACE (at most {plan.max_bytes // quota.MiB} MiB, {plan.deadline_s:g} s)",
            lambda: quota.fill_until_nospace(etcd, PREFIX + "fill/", plan),
            dry=quota.FillResult(1, 0, 0.0, "nospace"),
        )
        drill.timeline.mark("fill.stopped", by=filled.stopped_by, puts=filled.puts)
        drill.observe("fill_seconds", round(filled.seconds, 3))
        drill.observe("fill_mib_written", round(filled.bytes_written / quota.MiB, 1))
        drill.expect(filled.full, "the fill ended on NOSPACE, within its bounds", filled)
        raised = drill.wait_for("alarm.raised", lambda: quota.nospace_alarms(etcd), timeout=10)
        drill.observe("alarms", str(raised))
        refused = drill.act(
            "a small put", lambda: quota.write_refused(etcd, PREFIX + "probe"), dry=None
        )
        drill.expect(bool(refused), "a write is refused: database space exceeded")
        drill.observe("write_refused_with", refused)
        last_key = f"{PREFIX}fill/{(filled.puts - 1) % plan.keys}"
        last = drill.act("a linearizable read", lambda: etcd.get(last_key), dry=None)
        drill.expect(
            (last or "").startswith(f"fill-{filled.puts - 1:08d}-"),
            "a linearizable read is still served, with the last value written",
            (last or "")[:24],
        )
        # Held read-only for a while: the workload and the alert rules see the state.
        drill.hold(3.0, lambda: None if quota.nospace_raised(etcd) else "alarm cleared")
        with drill.verify("runbook: compact, defragment, disarm"):
            drill.runbook(runbook.plan())
            drill.wait_for(
                "writes.accepted",
                lambda: quota.write_accepted(etcd, PREFIX + "probe"),
                budget="recovery",
            )
            drill.within_budget("recovery", "alarm.raised", "writes.accepted")
            drill.within_budget(
                "recovery", "runbook.started", "writes.accepted", name="runbook_to_writes"
            )
            left = drill.act("alarm list", lambda: quota.nospace_alarms(etcd), dry=None)
            drill.expect(left is None, "no NOSPACE alarm is left", left)
    with drill.verify():
        drill.wait_for("cluster.healthy", lambda: check.all_healthy(etcd), budget="recovery")
        drill.verify_etcd_data()
