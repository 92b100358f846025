"""The audit's findings as a terminal table, a JSON file and Allure results (one test per
item: pass -> passed, fail -> failed, warn -> broken in the "Audit warning" category, skip ->
skipped)."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import Attachment, Label, Parameter, StatusDetails, TestResult

from kubedrill.audit.finding import Finding, Status, exit_code
from kubedrill.report.results_meta import write_results_metadata

WIDTH = 100
ALLURE_STATUS: Mapping[Status, str] = {
    "pass": "passed",
    "fail": "failed",
    "warn": "broken",
    "skip": "skipped",
}


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    counts: Counter[str] = Counter(f.status for f in findings)
    return {s: counts[s] for s in ("pass", "warn", "fail", "skip")}


def render(findings: Sequence[Finding], cluster: str, *, details: bool = False) -> str:
    lines = [
        f"kubedrill audit of {cluster} against the seed's production checklist",
        f"{'item':18s} {'status':6s} evidence / fix",
    ]
    indent = " " * 26
    for f in findings:
        lines += textwrap.wrap(
            f.evidence, WIDTH, initial_indent=f"{f.item:18s} {f.status.upper():6s} ",
            subsequent_indent=indent, break_on_hyphens=False,
        )  # fmt: skip
        if f.fix:
            lines += textwrap.wrap(
                f"fix: {f.fix}", WIDTH, initial_indent=indent, subsequent_indent=indent + "     ",
                break_on_hyphens=False,
            )  # fmt: skip
        if details:
            lines += [f"{indent}  {d}" for d in f.details]
    counts = summary(findings)
    lines.append(
        f"{counts['pass']} pass, {counts['warn']} warn, {counts['fail']} fail"
        + (f", {counts['skip']} not applicable" if counts["skip"] else "")
        + f" -> exit {exit_code(findings)}"
    )
    return "\n".join(lines)


def to_json(
    findings: Sequence[Finding], cluster: str, facts: Mapping[str, str], started: dt.datetime
) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "facts": dict(facts),
        "started": started.isoformat(timespec="seconds"),
        "summary": summary(findings),
        "exit_code": exit_code(findings),
        "findings": [f.to_dict() for f in findings],
    }


def write_allure(
    findings: Sequence[Finding],
    results: Path,
    *,
    cluster: str,
    facts: Mapping[str, str],
    started_ms: int,
) -> None:
    """One Allure test per item (plus executor, categories and environment files)."""
    write_results_metadata(results, facts=facts, cluster=cluster)
    logger = AllureFileLogger(str(results))  # type: ignore[no-untyped-call]
    clock = started_ms
    for f in findings:
        stop = clock + max(1, int(f.seconds * 1000))
        attachments = []
        if f.details:
            source = f"{uuid.uuid4()}-attachment.txt"
            logger.report_attached_data("\n".join(f.details), source)  # type: ignore[no-untyped-call]
            attachments.append(Attachment(name="evidence", source=source, type="text/plain"))
        prefix = {"warn": "audit warning: ", "fail": "audit failed: "}.get(f.status, "")
        message = f"{prefix}{f.evidence}" + (f"\nfix: {f.fix}" if f.fix else "")
        logger.report_result(  # type: ignore[no-untyped-call]
            TestResult(
                uuid=str(uuid.uuid4()),
                historyId=f"kubedrill-audit-{cluster}-{f.item}",
                testCaseId=f"kubedrill-audit-{f.item}",
                fullName=f"kubedrill.audit.{f.item}",
                name=f"audit: {f.title}",
                status=ALLURE_STATUS[f.status],
                statusDetails=StatusDetails(message=message),
                description=f.evidence,
                start=clock,
                stop=stop,
                labels=[
                    Label(name="epic", value="readiness audit"),
                    Label(name="feature", value=f.item),
                    Label(name="suite", value="kubedrill audit"),
                ],
                parameters=[Parameter(name="cluster", value=cluster)],
                attachments=attachments,
            )
        )
        clock = stop


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
