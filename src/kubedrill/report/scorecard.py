"""The scorecard: the page a game day's report opens on, read in a minute.

Every drill of the run on one row: its verdict, its measured figures against their budgets,
its checks (consistency, data, alert rules), the alerts that fired, the availability it spent,
and how its figures compare with earlier game days. Built from `summary.json` (this run) and
`scorecard-history.jsonl` (one line per earlier run, appended by `kubedrill report`); the
Allure report with every detail sits next to it (`allure/index.html`), linked from each row.

A game day run on more than one Kubernetes minor (the default and the previous one, see
deploy/gameday.sh) adds a side-by-side table on top: one row per drill, one column per minor,
each figure marked where it differs from the first column's by more than TREND_TOLERANCE.

One self-contained HTML file: inline CSS, no script, nothing fetched.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubedrill import error_budget
from kubedrill.errors import ConfigError

TREND_RUNS = 5  # earlier runs a figure is compared with
# A figure this much slower (or faster) than the median of earlier runs is flagged.
TREND_TOLERANCE = 0.2
LEVEL_SHOWN = 99.9  # the availability level the table's column is against


@dataclass(frozen=True)
class Figure:
    name: str
    seconds: float
    budget_s: float
    within: bool


@dataclass(frozen=True)
class Row:
    drill: str
    verdict: str
    figures: tuple[Figure, ...]
    checks: tuple[tuple[str, str], ...]  # (check, status)
    alerts_fired: tuple[str, ...]
    unavailable_s: float | None
    spent_pct: float | None  # of the month's budget at LEVEL_SHOWN
    earlier: Mapping[str, Sequence[float]] = field(default_factory=dict)  # figure -> values

    def trend(self, figure: Figure) -> tuple[str, str]:
        """("slower" | "faster" | "same" | "new", text) against the earlier runs' median."""
        values = list(self.earlier.get(figure.name, ()))
        if not values:
            return "new", "first run"
        median = statistics.median(values)
        text = f"median of {len(values)} earlier: {median:.3f} s"
        if median > 0 and figure.seconds > median * (1 + TREND_TOLERANCE):
            return "slower", text
        if median > 0 and figure.seconds < median * (1 - TREND_TOLERANCE):
            return "faster", text
        return "same", text


@dataclass(frozen=True)
class Scorecard:
    title: str
    cluster: str
    facts: Mapping[str, str]
    rows: tuple[Row, ...]
    unavailable_s: float | None
    levels: tuple[Mapping[str, Any], ...]
    earlier_runs: int

    @property
    def label(self) -> str:
        """What names the run in a side-by-side table: its Kubernetes version, else its cluster."""
        return str(self.facts.get("kubernetes_version") or self.cluster)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows:
            out[row.verdict] = out.get(row.verdict, 0) + 1
        return out

    @property
    def breaches(self) -> int:
        return sum(not f.within for row in self.rows for f in row.figures)

    @property
    def invalid_checks(self) -> int:
        return sum(status == "invalid" for row in self.rows for _, status in row.checks)


# -- history ---------------------------------------------------------------------------------


def history_entry(summary: Mapping[str, Any], *, at: str) -> dict[str, Any]:
    """What later runs compare with: each drill's verdict and figures."""
    whole = summary.get("error_budget") or {}
    return {
        "at": at,
        "cluster": _cluster(summary),
        "drills": {
            d["drill"]: {
                "verdict": d.get("verdict", "?"),
                "figures": {m["name"]: m["seconds"] for m in d.get("measurements", [])},
            }
            for d in summary.get("drills", [])
        },
        "unavailable_s": whole.get("unavailable_s"),
    }


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError as exc:
            raise ConfigError(
                f"scorecard history {path} line {number} is not JSON: {exc}",
                "remove that line (or the file, to start the trend afresh)",
            ) from exc
    return entries


def append_history(path: Path, entry: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


# -- building --------------------------------------------------------------------------------


def _cluster(summary: Mapping[str, Any]) -> str:
    drills = summary.get("drills") or []
    return str(drills[0].get("cluster", "?")) if drills else "?"


def build(
    summary: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]] = (),
    *,
    title: str = "kubedrill game day",
) -> Scorecard:
    """The scorecard of `summary` (summary.json), trends from `history` (earlier runs on the
    same cluster only: another cluster's figures say nothing about this one)."""
    drills = summary.get("drills") or []
    cluster = _cluster(summary)
    earlier = [h for h in history if h.get("cluster") == cluster][-TREND_RUNS:]
    rows = []
    for d in drills:
        figures = tuple(
            Figure(m["name"], float(m["seconds"]), float(m["budget_s"]), bool(m["within"]))
            for m in d.get("measurements", [])
        )
        past: dict[str, list[float]] = {}
        for entry in earlier:
            for name, seconds in (
                ((entry.get("drills") or {}).get(d["drill"]) or {}).get("figures", {}).items()
            ):
                past.setdefault(name, []).append(float(seconds))
        budget = d.get("error_budget")
        spent = None
        if budget:
            spent = next(
                (
                    lv["spent_pct"]
                    for lv in budget["levels"]
                    if lv["availability_pct"] == LEVEL_SHOWN
                ),
                None,
            )
        rows.append(
            Row(
                drill=str(d["drill"]),
                verdict=str(d.get("verdict", "?")),
                figures=figures,
                checks=tuple((str(c["check"]), str(c["status"])) for c in d.get("checks", [])),
                alerts_fired=tuple((d.get("alerts") or {}).get("fired") or ()),
                unavailable_s=float(budget["unavailable_s"]) if budget else None,
                spent_pct=spent,
                earlier=past,
            )
        )
    whole = error_budget.game_day(drills)
    return Scorecard(
        title=title,
        cluster=cluster,
        facts=dict(drills[0].get("facts") or {}) if drills else {},
        rows=tuple(rows),
        unavailable_s=whole.unavailable_s if whole else None,
        levels=tuple(whole.levels()) if whole else (),
        earlier_runs=len(earlier),
    )


# -- rendering -------------------------------------------------------------------------------

CSS = """
body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 24px; color: #263238; }
h1 { font-size: 22px; margin: 0 0 4px; }
.sub { color: #607d8b; margin-bottom: 16px; }
.tiles { display: flex; gap: 12px; margin: 12px 0 20px; flex-wrap: wrap; }
.tile { border: 1px solid #cfd8dc; border-radius: 6px; padding: 10px 14px; min-width: 120px; }
.tile b { display: block; font-size: 20px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #eceff1; padding: 6px 8px; text-align: left; }
td { vertical-align: top; }
th { background: #f5f7f8; }
.passed { color: #2e7d32; font-weight: bold; }
.failed, .error, .BREACH, .invalid, .slower { color: #c62828; font-weight: bold; }
.skipped, .unknown { color: #8d6e63; }
.valid, .ok { color: #2e7d32; }
.faster { color: #2e7d32; }
.same, .new { color: #607d8b; }
.fig { white-space: nowrap; }
h2 { font-size: 17px; margin: 18px 0 6px; }
small { color: #607d8b; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


TREND_MARK = {"slower": "&#9650; slower", "faster": "&#9660; faster", "same": "&asymp;", "new": ""}


def _figure_line(row: Row, figure: Figure) -> str:
    """`rto 7.102 s / 300 s ok  ▲ slower  median of 4 earlier: 5.900 s`."""
    kind, text = row.trend(figure)
    verdict = "ok" if figure.within else "BREACH"
    trend = (
        f" <span class='{kind}'>{TREND_MARK[kind]}</span> <small>{_e(text)}</small>"
        if kind != "new"
        else " <small>first run</small>"
    )
    return (
        f"<span class='fig'>{_e(figure.name)} <b>{figure.seconds:.3f} s</b> / "
        f"{figure.budget_s:g} s <span class='{verdict}'>{verdict}</span>{trend}</span>"
    )


def compare(base: Figure, other: Figure) -> str:
    """ "slower" | "faster" | "same": `other` against `base` (the first column's)."""
    if base.seconds > 0 and other.seconds > base.seconds * (1 + TREND_TOLERANCE):
        return "slower"
    if base.seconds > 0 and other.seconds < base.seconds * (1 - TREND_TOLERANCE):
        return "faster"
    return "same"


def side_by_side(cards: Sequence[Scorecard]) -> str:
    """One row per drill (in the order first seen), one column per run: verdict and figures,
    a later column's figure marked slower/faster than the first column's."""
    order: list[str] = []
    for card in cards:
        order += [row.drill for row in card.rows if row.drill not in order]
    rows = [{row.drill: row for row in card.rows} for card in cards]
    head = "".join(
        f"<th data-version='{_e(c.label)}'>{_e(c.label)} <small>{c.counts.get('passed', 0)} "
        f"passed, {c.counts.get('failed', 0) + c.counts.get('error', 0)} failed</small></th>"
        for c in cards
    )
    parts = [
        "<h2>Side by side</h2>",
        "<table class='versions'><thead><tr><th>drill</th>" + head + "</tr></thead><tbody>",
    ]
    for drill in order:
        base = rows[0].get(drill)
        base_figures = {f.name: f for f in base.figures} if base else {}
        cells = []
        for index, by_drill in enumerate(rows):
            row = by_drill.get(drill)
            if row is None:
                cells.append("<td><small>not run</small></td>")
                continue
            lines = [f"<span class='{_e(row.verdict)}'>{_e(row.verdict)}</span>"]
            for figure in row.figures:
                verdict = "ok" if figure.within else "BREACH"
                mark = ""
                against = base_figures.get(figure.name)
                if index > 0 and against is not None:
                    kind = compare(against, figure)
                    if kind != "same":
                        mark = f" <span class='{kind}'>{TREND_MARK[kind]}</span>"
                lines.append(
                    f"<span class='fig'>{_e(figure.name)} <b>{figure.seconds:.3f} s</b> "
                    f"<span class='{verdict}'>{verdict}</span>{mark}</span>"
                )
            cells.append(f"<td>{'<br>'.join(lines)}</td>")
        parts.append(f"<tr data-drill='{_e(drill)}'><td>{_e(drill)}</td>{''.join(cells)}</tr>")
    parts.append("</tbody></table><h2>Details: " + _e(cards[0].label) + "</h2>")
    return "\n".join(parts)


def render(
    card: Scorecard,
    *,
    allure_href: str = "allure/index.html",
    versus: Sequence[Scorecard] = (),
) -> str:
    counts = card.counts
    ran = counts.get("passed", 0) + counts.get("failed", 0)
    tiles = [
        ("drills passed", f"{counts.get('passed', 0)} / {ran}" if ran else "0"),
        ("failed", str(counts.get("failed", 0) + counts.get("error", 0))),
        ("skipped", str(counts.get("skipped", 0))),
        ("budget breaches", str(card.breaches)),
        ("checks invalid", str(card.invalid_checks)),
    ]
    if card.unavailable_s is not None:
        tiles.append(("client-observed unavailability", f"{card.unavailable_s:.1f} s"))
        for level in card.levels:
            if level["availability_pct"] in (99.9, 99.99):
                tiles.append(
                    (f"of a month's budget at {level['availability_pct']:g} %",
                     f"{level['spent_pct']:.3g} %")
                )  # fmt: skip
    facts = ", ".join(
        f"{k} {v}"
        for k, v in card.facts.items()
        if k in ("target", "topology", "members") or k.endswith("_version")
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(card.title)}: scorecard</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(card.title)}: scorecard</h1>",
        f"<div class='sub'>{_e(card.cluster)} &middot; {_e(facts)} &middot; trend against "
        f"{card.earlier_runs} earlier run(s) &middot; "
        f"<a href='{_e(allure_href)}'>full report (every drill's timeline, logs, evidence)"
        "</a></div>",
        "<div class='tiles'>",
        *(f"<div class='tile'><b>{_e(v)}</b>{_e(k)}</div>" for k, v in tiles),
        "</div>",
        side_by_side([card, *versus]) if versus else "",
        "<table><thead><tr><th>drill</th><th>verdict</th>"
        "<th>figures against budgets, and against earlier runs</th><th>checks</th>"
        "<th>alerts fired</th>"
        f"<th>availability spent ({LEVEL_SHOWN:g} %, month)</th></tr></thead><tbody>",
    ]
    for row in card.rows:
        figures = "<br>".join(_figure_line(row, f) for f in row.figures)
        bad = [(name, status) for name, status in row.checks if status != "valid"]
        checks = "<br>".join(
            [f"<span class='valid'>{len(row.checks) - len(bad)} valid</span>"]
            + [f"<span class='{_e(status)}'>{_e(status)}</span> {_e(name)}" for name, status in bad]
        )
        spent = (
            f"{row.spent_pct:.3g} % <small>({row.unavailable_s:.1f} s)</small>"
            if row.spent_pct is not None and row.unavailable_s is not None
            else "<small>-</small>"
        )
        parts.append(
            f"<tr data-drill='{_e(row.drill)}'><td>{_e(row.drill)}</td>"
            f"<td class='{_e(row.verdict)}'>{_e(row.verdict)}</td>"
            f"<td>{figures or '<small>none measured</small>'}</td>"
            f"<td>{checks if row.checks else '<small>none</small>'}</td>"
            f"<td>{_e(', '.join(row.alerts_fired)) or '<small>none</small>'}</td>"
            f"<td>{spent}</td></tr>"
        )
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts)


def write(
    summary_path: Path,
    output: Path,
    history_path: Path,
    *,
    title: str = "kubedrill game day",
    now: dt.datetime | None = None,
    versus: Sequence[Path] = (),
) -> Path:
    """Write `output`/index.html for the run in `summary_path` and append the run to the
    history (after reading it: a run is never compared with itself). `versus`: summaries of
    the same drills on other Kubernetes minors, shown side by side (not added to the history:
    the trend is this run's cluster's)."""
    summary = _read_summary(summary_path)
    others = [build(_read_summary(path), title=title) for path in versus]
    history = read_history(history_path)
    card = build(summary, history, title=title)
    output.mkdir(parents=True, exist_ok=True)
    index = output / "index.html"
    index.write_text(render(card, versus=others), encoding="utf-8")
    at = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    append_history(history_path, history_entry(summary, at=at))
    return index


def _read_summary(path: Path) -> Mapping[str, Any]:
    try:
        summary: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the run's summary {path}: {exc}",
            "run the drills first (make gameday), or give --summary",
        ) from exc
    return summary
