"""The consistency checks are wired into every drill and can fail one: a drill during which an
acknowledged write disappears (deleted behind the workload's back, as a broken failover would
lose it) fails with the verdict; a drill that opts out says why in the summary."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from kubedrill.cluster import Cluster
from tests.integration.conftest import run_pytest
from tests.integration.test_drill_runner import report_args

DRILLS = textwrap.dedent(
    """
    import pytest

    from kubedrill.polling import poll_until
    from kubedrill.probes import etcd_checks
    from kubedrill.probes.etcd import b64


    def test_write_lost(drill):
        drill.steady_state("etcd healthy", lambda: etcd_checks.all_healthy(drill.etcd))
        workload = drill.consistency
        acked, ok = poll_until(
            lambda: [op for op in workload.etcd_ops() if op.client == "etcd-kv" and op.ok],
            bool,
            timeout=20,
        )
        assert ok, "the workload wrote nothing"
        drill.etcd.call(drill.etcd.nodes[0], "/v3/kv/deleterange", {"key": b64(acked[0].key)})


    @pytest.mark.no_consistency(reason="measures only")
    def test_opted_out(drill):
        assert drill.consistency is None
    """
)


def test_a_lost_write_fails_the_drill(
    test_lab: Cluster, lab_config_file: Path, tmp_path: Path
) -> None:
    drills = tmp_path / "test_synthetic_drills.py"
    drills.write_text(DRILLS)
    result = run_pytest(str(drills), *report_args(tmp_path, lab_config_file))
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    assert "consistency: violated" in out
    assert "1 failed, 1 passed" in out, out[-2000:]
    summary = {s["drill"]: s for s in json.loads((tmp_path / "summary.json").read_text())["drills"]}
    lost = summary["test_write_lost"]
    assert lost["verdict"] == "failed"
    statuses = {v["check"]: v["status"] for v in lost["consistency"]["verdicts"]}
    assert statuses["etcd: acknowledged writes stored"] == "invalid"
    assert statuses["etcd: register and keys linearizable"] == "valid"
    assert summary["test_opted_out"]["consistency"] == {"skipped": "measures only"}
