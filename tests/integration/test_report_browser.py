"""The HTML report end to end, as a person would see it: real Allure results written by pytest,
the real Allure 3 CLI, and Debian's chromium opening the single file.

No lab: this checks the report pipeline, so the drills here are tiny synthetic pytest cases
that label themselves and attach a timeline chart with kubedrill's own report helpers.
Chromium gets a host resolver that resolves nothing, so the page can reach no network at all.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from kubedrill.report.chart import timeline_svg
from kubedrill.report.html import ReportFiles, allure_bin, generate
from kubedrill.report.results_meta import write_results_metadata

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "browser"
DRILLS = ("test_kill_leader_synthetic", "test_budget_breach_synthetic", "test_unhealthy_synthetic")
FACTS = {"target": "lab", "topology": "stacked", "etcd_version": "v3.6.16",
         "kubernetes_version": "v1.34.2"}  # fmt: skip
BROWSER_TIMEOUT_S = 60

SYNTHETIC_DRILLS = """
from kubedrill.drill import DrillFailure, SteadyStateError
from kubedrill.report import allure_report
from kubedrill.report.chart import timeline_svg
from kubedrill.workload.history import Operation


def summary(name, seconds, budget):
    marks = [("steady_state.ok", 0.2), ("fault.injecting", 1.0), ("fault.injected", 1.05),
             ("leader.elected", 1.0 + seconds), ("fault.healing", 1.2 + seconds),
             ("fault.healed", 1.3 + seconds), ("member.rejoined", 2.0 + seconds)]
    return {
        "drill": name, "target": "lab", "faults": ["kill leader etcd on etcd-2"],
        "measurements": [{"name": "leader_election", "seconds": seconds,
                          "from": "fault.injecting", "to": "leader.elected",
                          "budget": "leader_election", "budget_s": budget,
                          "within": seconds <= budget}],
        "timeline": {"marks": [{"event": e, "offset_s": o, "fault": "kill etcd"}
                               for e, o in marks]},
    }


def ops(seconds):
    out, t = [], 0.0
    while t < 2.5 + seconds:
        down = 1.0 <= t < 1.0 + seconds
        out.append(Operation("writer-1", "put", "k", "v", t, t + 0.01, "fail" if down else "ok"))
        out.append(Operation("api-reader-1", "get", "k", "", t, t + 0.01,
                             "unknown" if down and t < 1.3 else "ok"))
        t += 0.05
    return out


def drill(name, seconds, budget):
    allure_report.label_drill(component="etcd", fault=name, parameters={"target": "lab"})
    chart = timeline_svg(summary(name, seconds, budget), ops(seconds))
    allure_report.attach_svg("timeline chart", chart)
    if seconds > budget:
        raise DrillFailure(f"budget breached: leader_election took {seconds:.3f} s "
                           f"(fault.injecting -> leader.elected), budget leader_election "
                           f"is {budget:.3f} s")


def test_kill_leader_synthetic():
    drill("test_kill_leader_synthetic", 1.2, 15.0)


def test_budget_breach_synthetic():
    drill("test_budget_breach_synthetic", 3.0, 1.0)


def test_unhealthy_synthetic():
    raise SteadyStateError("cluster unhealthy before the fault: synthetic check did not hold "
                           "within 1 s", "fix the cluster")
"""


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed: run `make setup` (system-deps)")
    return found


def chromium_argv(profile: Path, *extra: str) -> list[str]:
    return [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}", "--window-size=1400,1000", *extra,
    ]  # fmt: skip


def run_browser(argv: list[str]) -> str:
    """Run chromium to completion in its own process group; the whole group goes on timeout."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {BROWSER_TIMEOUT_S} s: {argv}")
    return out


class DevTools:
    """Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON):
    the stdlib is enough to click in the page, no browser-automation package needed."""

    def __init__(self, argv: list[str]) -> None:
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # bash (dash takes single-digit fds only) puts the pipe ends on fds 3 and 4, where
        # chromium expects them.
        redirect = f'exec "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.proc = subprocess.Popen(
            ["bash", "-c", redirect, "bash", *argv, "--remote-debugging-pipe"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._out: IO[bytes] = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._in: IO[bytes] = os.fdopen(from_chrome_r, "rb", buffering=0)
        self._buffer = b""
        self._last_id = 0
        self.session = ""

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        self._out.write(json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = self._in.read(1 << 16)
                if not chunk:
                    raise AssertionError(f"chromium closed the DevTools pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def attach_to_page(self) -> None:
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.send(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )
        self.session = attached["sessionId"]

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"page never satisfied {expression!r} within {timeout} s")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.session = ""
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self._out.close()
            self._in.close()


@contextmanager
def devtools(argv: list[str]) -> Iterator[DevTools]:
    browser = DevTools(argv)
    try:
        browser.attach_to_page()
        yield browser
    finally:
        browser.close()


def embedded_files(html: str) -> dict[str, bytes]:
    """The single file carries every report file as d("name","base64") calls."""
    return {
        name: base64.b64decode(value)
        for name, value in re.findall(r'd\("([^"]+)","([^"]*)"\)', html)
    }


def make_results(work: Path) -> Path:
    (work / "test_synthetic.py").write_text(SYNTHETIC_DRILLS)
    results = work / "allure-results"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "test_synthetic.py", "--alluredir", str(results)],
        cwd=work, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one drill breaches its budget
    assert "1 failed, 1 passed, 1 skipped" in proc.stdout, proc.stdout
    # What pytest_sessionfinish writes after real drills (here no drill had a cluster).
    write_results_metadata(results, facts=FACTS, cluster="lab/lab")
    return results


def test_report_opens_in_a_browser_lists_the_drills_and_shows_their_charts() -> None:
    if not allure_bin().exists():
        pytest.fail("allure is not installed: run `make report-tool` (part of `make setup`)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubedrill-report-test-") as tmp:
        work = Path(tmp)
        files = ReportFiles(make_results(work), work / "html", work / "history.jsonl")
        generate(files)
        index = generate(files)  # a second run: the history now holds both
        assert len(files.history.read_text().splitlines()) == 2

        html = index.read_text(encoding="utf-8")
        assert "googletagmanager" not in html
        assert not re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="https?:', html)
        embedded = embedded_files(html)
        charts = [v.decode() for k, v in embedded.items() if k.endswith(".svg")]
        assert len(charts) == 2
        assert all('class="kubedrill-timeline"' in c for c in charts)
        assert any("BREACH" in c for c in charts)
        results = {
            json.loads(v)["name"]: json.loads(v)
            for k, v in embedded.items()
            if k.startswith("data/test-results/")
        }
        assert set(results) == set(DRILLS)
        breach = results["test_budget_breach_synthetic"]
        assert [c["name"] for c in breach["categories"]] == ["Budget breached"]
        skipped = results["test_unhealthy_synthetic"]
        assert [c["name"] for c in skipped["categories"]] == ["Cluster unhealthy before the fault"]
        environment = json.loads(embedded["widgets/allure_environment.json"])
        assert {"name": "etcd_version", "values": ["v3.6.16"]} in environment

        # The overview page, as loaded: every drill is listed.
        profile = work / "chromium"
        dom = run_browser(chromium_argv(profile, "--virtual-time-budget=5000", "--dump-dom",
                                        index.as_uri()))  # fmt: skip
        for name in DRILLS:
            assert name in dom, f"{name} not in the report's page"
        assert "control plane HA" in dom
        run_browser(chromium_argv(profile, "--virtual-time-budget=5000",
                                  f"--screenshot={SCREENSHOTS / 'report-overview.png'}",
                                  index.as_uri()))  # fmt: skip

        # The breached drill's page: open its timeline chart and check the browser drew it.
        url = f"{index.as_uri()}#/{breach['id']}"
        with devtools(chromium_argv(profile, url)) as page:
            header = '[data-testid="test-result-attachment-header"]'
            page.wait_for(f"!!document.querySelector('{header} button')")
            assert "timeline chart" in page.evaluate(
                f"document.querySelector('{header}').innerText"
            )
            page.evaluate(f"document.querySelector('{header} button').click()")
            image = '[data-testid="image-attachment-content"] img'
            size = page.wait_for(
                f"(() => {{ const i = document.querySelector('{image}');"
                " return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight]"
                " : null })()"
            )
            assert size[0] == 1000 and size[1] > 100, size  # the chart's own width
            drawn = page.evaluate(
                f"fetch(document.querySelector('{image}').src).then(r => r.text())"
            )
            assert 'class="kubedrill-timeline"' in drawn and "BREACH" in drawn
            page.evaluate(f"document.querySelector('{image}').scrollIntoView({{block: 'center'}})")
            time.sleep(0.3)
            page.screenshot(SCREENSHOTS / "drill-timeline-chart.png")


REAL_REPORT = os.environ.get("KUBEDRILL_REPORT")
REAL_SUMMARY = os.environ.get("KUBEDRILL_SUMMARY")
REAL_SCORECARD = os.environ.get("KUBEDRILL_SCORECARD")


@pytest.mark.skipif(
    not (REAL_SCORECARD and REAL_SUMMARY),
    reason="checks a real game day's scorecard: make report-check (after make gameday/drills "
    "and make report) sets KUBEDRILL_SCORECARD and KUBEDRILL_SUMMARY",
)
def test_real_game_day_scorecard_opens_first_with_every_drill() -> None:
    """The page the report opens on, in chromium: a row per drill of the run with its verdict
    and its figures against their budgets, and the link to Allure's details resolves to the
    report next to it. Its screenshot is kept with the CI artifacts."""
    assert REAL_SCORECARD and REAL_SUMMARY
    index = Path(REAL_SCORECARD).resolve()
    summary = json.loads(Path(REAL_SUMMARY).read_text())
    assert (index.parent / "allure" / "index.html").exists(), "the details report is missing"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="kubedrill-scorecard-check-") as tmp,
        devtools(chromium_argv(Path(tmp) / "chromium", index.as_uri())) as page,
    ):
        page.wait_for("!!document.querySelector('tr[data-drill]')")
        rows = page.evaluate(
            "[...document.querySelectorAll('tr[data-drill]')]"
            ".map(r => [r.dataset.drill, r.cells[1].innerText, r.cells[2].innerText])"
        )
        page.screenshot(SCREENSHOTS / "gameday-scorecard.png")
    shown = {name: (verdict, figures) for name, verdict, figures in rows}
    for d in summary["drills"]:
        assert d["drill"] in shown, f"{d['drill']} has no row on the scorecard"
        verdict, figures = shown[d["drill"]]
        assert verdict == d["verdict"], (d["drill"], verdict)
        for m in d["measurements"]:
            assert f"{m['name']} {m['seconds']:.3f} s" in figures, (d["drill"], figures)


@pytest.mark.skipif(
    not (REAL_REPORT and REAL_SUMMARY),
    reason="checks a real game day's report: make report-check (after make gameday/drills and "
    "make report) sets KUBEDRILL_REPORT and KUBEDRILL_SUMMARY",
)
def test_real_game_day_report_lists_every_drill_with_its_timeline_chart() -> None:
    """The report `make gameday && make report` produced, opened in chromium: every drill of
    the run is on the page, each drill that ran has its timeline chart embedded, and the browser
    draws one when its attachment is opened."""
    assert REAL_REPORT and REAL_SUMMARY
    index, summary = Path(REAL_REPORT).resolve(), json.loads(Path(REAL_SUMMARY).read_text())
    ran = [d["drill"] for d in summary["drills"] if d["verdict"] in ("passed", "failed")]
    assert ran, "the summary lists no drill that ran"
    html = index.read_text(encoding="utf-8")
    embedded = embedded_files(html)
    results = [json.loads(v) for k, v in embedded.items() if k.startswith("data/test-results/")]
    names = {r["name"] for r in results}
    assert set(ran) <= names, set(ran) - names
    charts = [v.decode() for k, v in embedded.items() if k.endswith(".svg")]
    assert sum('class="kubedrill-timeline"' in c for c in charts) >= len(ran)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubedrill-report-check-") as tmp:
        profile = Path(tmp) / "chromium"
        # A real run's tree starts collapsed (epic > feature > drill): open every section the
        # way a reader would, then every drill must be listed.
        expand_all = (
            "(async () => { for (let i = 0; i < 6; i++) {"
            " const closed = [...document.querySelectorAll("
            "'[data-testid=\"tree-section-title\"]')].filter(e => !e.dataset.kdOpened);"
            " if (!closed.length) break;"
            " closed.forEach(e => { e.dataset.kdOpened = '1'; e.click(); });"
            " await new Promise(r => setTimeout(r, 300)); }"
            " return document.body.innerText; })()"
        )
        with devtools(chromium_argv(profile, index.as_uri())) as page:
            page.wait_for("!!document.querySelector('[data-testid=\"tree-section-title\"]')")
            text = page.evaluate(expand_all)
            for name in ran:
                assert name in text, f"{name} is not on the report's page"
            page.screenshot(SCREENSHOTS / "gameday-overview.png")
        shown = next(r for r in results if r["name"] == ran[0])
        with devtools(chromium_argv(profile, f"{index.as_uri()}#/{shown['id']}")) as page:
            header = '[data-testid="test-result-attachment-header"]'
            find = (
                f"[...document.querySelectorAll('{header}')]"
                ".find(h => h.innerText.includes('timeline chart'))"
            )
            page.wait_for(f"!!({find})")
            page.evaluate(f"{find}.querySelector('button').click()")
            image = '[data-testid="image-attachment-content"] img'
            size = page.wait_for(
                f"(() => {{ const i = document.querySelector('{image}');"
                " return i && i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight]"
                " : null })()"
            )
            assert size[0] == 1000 and size[1] > 100, size
            page.evaluate(f"document.querySelector('{image}').scrollIntoView({{block: 'center'}})")
            time.sleep(0.3)
            page.screenshot(SCREENSHOTS / "gameday-drill-chart.png")


def test_chart_labels_stay_readable_where_marks_crowd(tmp_path: Path) -> None:
    """A game day's first second holds a dozen marks: drawn by chromium, no two mark labels
    overlap, and each has its halo, so the ticks of other marks do not run through it."""
    events = [
        "workload.started", "steady_state.ok", "t1.begin", "fault.injecting", "fault.injected",
        "api.readers.started", "node.cordoned", "pods.evicted", "t1.drained", "fault.injecting",
        "fault.injected", "leader.elected", "writes.accepted", "t2.begin", "fault.healing",
    ]  # fmt: skip
    marks = [{"event": e, "offset_s": 0.04 * i} for i, e in enumerate(events)]
    marks.append({"event": "consistency.checked", "offset_s": 12.0})
    chart = tmp_path / "chart.svg"
    chart.write_text(timeline_svg({"drill": "test_gameday", "timeline": {"marks": marks}}))
    with devtools(chromium_argv(tmp_path / "chromium", chart.as_uri())) as page:
        page.wait_for("!!document.querySelector('.mark-label')")
        labels = page.evaluate(
            "[...document.querySelectorAll('.mark-label')].map(t => { const b = t.getBBox();"
            " return [t.textContent, b.x, b.y, b.width, b.height,"
            " t.getAttribute('paint-order')] })"
        )
    # Past 12 rows a label is left out (its tick and tooltip stay): never drawn over another.
    assert len(labels) >= 12, labels
    for i, a in enumerate(labels):
        assert a[5] == "stroke", f"{a[0]} has no halo"
        for b in labels[i + 1 :]:
            apart = a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1] or a[2] + a[4] <= b[2]
            assert apart or b[2] + b[4] <= a[2], f"{a[0]!r} overlaps {b[0]!r}"
