"""kubedrill's alert rules load: `promtool check rules` on the rules file the drills evaluate
alerts with (alerts/control-plane.rules.yml).

What this proves: the file parses, every expression is valid PromQL and promtool's lint finds
no duplicate rules, so the drills' alert checks can run and a Prometheus given this file would
load it. What it does not prove: that the cluster's own Prometheus has loaded these rules, or
that they fire (each drill checks that, with promtool, on the series it recorded).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kubedrill.audit.finding import Judgement
from kubedrill.checks.alerts import DEFAULT_RULES, load_rules
from kubedrill.errors import KubedrillError
from kubedrill.transport.local import LocalTransport

PROVES = "proves the rules file parses and its PromQL compiles (not that your Prometheus loaded it)"


def judge_promtool(path: Path, exit_code: int, output: str, alerts: list[str]) -> Judgement:
    if exit_code != 0:
        tail = " ".join(output.strip().splitlines()[-2:])[:300]
        return Judgement(
            "fail",
            f"promtool check rules {path} exited {exit_code}: {tail}",
            "fix the rules file (promtool check rules shows where)",
        )
    return Judgement(
        "pass",
        f"promtool check rules {path.name}: {len(alerts)} alerting rules load; {PROVES}",
        "",
        tuple(f"rule {a}" for a in alerts),
    )


def check_alert_rules(path: Path = DEFAULT_RULES) -> Judgement:
    promtool = shutil.which("promtool")
    if promtool is None:
        return Judgement(
            "warn",
            f"promtool is not installed: {path.name} was not checked",
            "install promtool (Debian's prometheus package; make setup does)",
        )
    try:
        alerts = [r.name for r in load_rules(path)]
    except KubedrillError as exc:
        return Judgement("fail", exc.message, "fix the rules file")
    done = LocalTransport().run([promtool, "check", "rules", str(path)], timeout=60)
    return judge_promtool(path, done.exit_code, done.stdout + done.stderr, alerts)
