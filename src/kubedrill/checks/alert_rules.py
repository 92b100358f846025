"""The alert rules over what a drill's metrics recorder scraped: which fired, and whether the
ones the drill expects (`@pytest.mark.expect_alerts`) did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kubedrill.checks.alerts import AlertReport, evaluate_drill, rule_jobs
from kubedrill.checks.base import CheckContext
from kubedrill.checks.verdict import Attachment, Status, Verdict
from kubedrill.errors import KubedrillError
from kubedrill.workload.metrics_recorder import MetricsRecorder, RecordedSeries

NAME = "alert rules"


def scraped_jobs_of(alert: str, series: RecordedSeries) -> bool:
    """Whether every scrape job the alert's rule reads was scraped successfully at least once."""
    jobs = rule_jobs().get(alert, set())
    return all(
        any(value == 1 for points in series.select("up", job=job).values() for _, value in points)
        for job in jobs
    )


@dataclass
class AlertRulesCheck:
    metrics: MetricsRecorder
    expect: Sequence[str] = ()
    name: str = NAME
    report: AlertReport | None = field(default=None, init=False)  # for summary.json `alerts`

    def run(self, ctx: CheckContext) -> Verdict | None:
        if ctx.timeline.first("fault.injecting") is None:
            return None  # no fault: nothing the rules could be asked about
        series = self.metrics.series()
        expected = ", ".join(self.expect)
        # Without promtool's word the alerts the drill expects are not shown to fire: that
        # fails the drill (invalid). A drill that expects none loses only a figure (unknown).
        undecided: Status = "invalid" if self.expect else "unknown"
        try:
            report = evaluate_drill(series, ctx.timeline)
        except KubedrillError as exc:
            ctx.observe("alerts_error", str(exc))
            return self._verdict(undecided, f"alert rules not evaluated: {exc}", {})
        self.report = report
        fired = report.fired_names()
        ctx.observe("alerts_fired", fired or "none")
        figures = {"fired": fired, "expected": list(self.expect), "confirmed": report.confirmed}
        evidence = (Attachment("alert rules", "text", report.render()),)
        if not report.confirmed:
            # promtool's own alert tests disagree with what its PromQL view found: neither
            # "fired" nor "did not fire" can be trusted (see checks/alerts.py, step 3).
            return self._verdict(
                undecided,
                "promtool's positive run disagrees with the alerts found"
                + (f"; expected {expected} not shown to fire" if self.expect else ""),
                figures,
                evidence,
            )
        missing = [a for a in self.expect if a not in fired]
        unverifiable = [a for a in missing if not scraped_jobs_of(a, series)]
        if unverifiable:
            # e.g. kubeadm's etcd serves metrics on 127.0.0.1 only: no series, no verdict.
            ctx.observe(
                "alerts_not_verifiable",
                f"{', '.join(unverifiable)}: the target exposed none of the metrics they read",
            )
        missing = [a for a in missing if a not in unverifiable]
        if missing:
            detail = f"expected alert(s) did not fire: {', '.join(missing)}"
            return self._verdict("invalid", detail, figures, evidence)
        if unverifiable:
            detail = f"not verifiable (no metrics they read): {', '.join(unverifiable)}"
            return self._verdict("unknown", detail, figures, evidence)
        detail = f"fired: {', '.join(fired) or 'none'}" + (
            f" (expected {expected})" if self.expect else ""
        )
        return self._verdict("valid", detail, figures, evidence)

    def _verdict(
        self,
        status: Status,
        detail: str,
        figures: dict[str, object],
        attachments: tuple[Attachment, ...] = (),
    ) -> Verdict:
        seconds = round(self.report.seconds, 3) if self.report is not None else 0.0
        return Verdict(
            check=self.name,
            status=status,
            detail=detail,
            figures=dict(figures),
            seconds=seconds,
            attachments=attachments,
        )
