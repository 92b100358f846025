"""The scheduled game day examples only use what exists: make targets in the Makefile, kubedrill
commands and options the CLI parses, pytest options the plugin adds. (The CronJob itself is
validated by a real apiserver in tests/integration/test_kube_lab.py.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from kubedrill.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/gameday.yml"
SCRIPT = ROOT / "deploy/gameday.sh"


def workflow_commands() -> list[str]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["gameday"]["steps"]
    return shell_lines("\n".join(step.get("run", "") for step in steps))


def shell_lines(text: str) -> list[str]:
    """Lines of a shell script with backslash continuations joined."""
    return [ln for ln in text.replace("\\\n", " ").splitlines() if ln.strip()]


def invocations(lines: list[str], program: str) -> list[list[str]]:
    """Every `program ...` call in shell lines, as argv after the program name."""
    found = []
    for line in lines:
        for part in re.split(r"&&|\|\||;", line):
            words = shlex.split(part.replace('"$KIND_CLUSTER"', "kubedrill"), comments=True)
            words = [w.replace("${cluster}", "c").replace("${out}", "/r") for w in words]
            # The script's array of `--versus SUMMARY` pairs, one per further minor.
            words = [
                x
                for w in words
                for x in (["--versus", "/r/s.json"] if w == "${versus[@]}" else [w])
            ]
            while words and (words[0] == "sudo" or words[0].startswith("--preserve-env")):
                words = words[1:]  # the command comes after sudo and its options
            if words and words[0].split("/")[-1] == program:
                found.append(words[1:])
    return found


def test_workflow_is_scheduled_weekly_and_keeps_one_game_day_at_a_time() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    on = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    assert len(cron.split()) == 5
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_make_targets_used_by_the_workflow_exist() -> None:
    targets = set(re.findall(r"^([a-zA-Z_-]+):", (ROOT / "Makefile").read_text(), re.M))
    used = {t for argv in invocations(workflow_commands(), "make") for t in argv}
    assert used, "the workflow runs no make target"
    assert used <= targets, used - targets


@pytest.mark.parametrize("source", ["workflow", "cronjob script"])
def test_kubedrill_commands_parse(source: str) -> None:
    lines = workflow_commands() if source == "workflow" else shell_lines(SCRIPT.read_text())
    calls = invocations(lines, "kubedrill")
    assert calls
    parser = build_parser()
    for argv in calls:
        args = parser.parse_args(argv)  # exits (SystemExit) on an unknown option
        assert args.func is not None


@pytest.mark.parametrize("source", ["workflow", "cronjob script"])
def test_pytest_options_exist(source: str) -> None:
    lines = workflow_commands() if source == "workflow" else shell_lines(SCRIPT.read_text())
    plugin = (ROOT / "src/kubedrill/pytest_plugin.py").read_text()
    known = set(re.findall(r'"(--[a-z-]+)"', plugin))
    known |= {"--alluredir", "--junitxml", "-p", "-v", "-m"}
    used = {w for argv in invocations(lines, "pytest") for w in argv if w.startswith("-")}
    assert {"--target", "--kind-cluster", "--allow-target"} <= used
    assert used <= known, used - known


def test_cronjob_script_runs_two_minors_side_by_side() -> None:
    text = SCRIPT.read_text()
    lines = shell_lines(text)
    assert "kubedrill lab versions --gameday" in text
    (lab_run,) = [argv for argv in invocations(lines, "pytest") if "--lab-config" in argv]
    assert "--target" not in lab_run  # the lab is the default target
    reports = [argv for argv in invocations(lines, "kubedrill") if argv[:1] == ["report"]]
    assert any("--versus" in argv for argv in reports)
    assert all("--summary" in argv for argv in reports)


def test_lab_versions_gameday_names_default_then_previous(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kubedrill.cli import main
    from kubedrill.targets.lab import versions

    assert main(["lab", "versions", "--gameday"]) == 0
    assert capsys.readouterr().out.split() == [
        versions.DEFAULT.kubernetes,
        versions.PREVIOUS.kubernetes,
    ]
    assert main(["lab", "versions"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == len(versions.RELEASES) and table[0].endswith("default")
