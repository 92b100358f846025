"""The offline HTML report: Allure 3's awesome report as one self-contained file.

Allure 3 is a Node.js program (no Java). It is installed pinned, with `npm install --prefix`,
into the kubedrill cache (`make report-tool`, part of `make setup`), never globally. Trends come
from a history file (JSON lines, one entry per report) kept outside the results directory, so
cleaning the results of one run keeps the history of all earlier ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubedrill.errors import ConfigError, KubedrillError, MissingBinaryError
from kubedrill.report.results_meta import CATEGORIES
from kubedrill.targets.lab.config import default_cache_dir

ALLURE_VERSION = "3.18.0"
REPORT_NAME = "kubedrill game day"
# Drills grouped by component: epic "control plane HA" > feature (etcd, apiserver, ...).
GROUP_BY = "epic,feature"
INSTALL_TIMEOUT_S = 600
GENERATE_TIMEOUT_S = 600

# The awesome template always adds a Google Analytics tag; an offline report sends nothing
# anywhere, so it is cut out of the generated file.
_ANALYTICS = re.compile(
    r"<script async src=\"https://www\.googletagmanager\.com/[^\"]*\"></script>\s*"
    r"<script>\s*window\.dataLayer[\s\S]*?</script>"
)


@dataclass(frozen=True)
class ReportFiles:
    results: Path = Path("reports/allure-results")
    output: Path = Path("reports/html")
    history: Path = Path("reports/history.jsonl")

    @property
    def index(self) -> Path:
        return self.output / "index.html"


def allure_prefix(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / f"allure-{ALLURE_VERSION}"


def allure_bin(cache_dir: Path | None = None) -> Path:
    return allure_prefix(cache_dir) / "node_modules" / ".bin" / "allure"


def _need(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise MissingBinaryError(
            f"{program} not found: Allure 3 needs Node.js 20+ with npm",
            "install Node.js and npm (the project's machines have them), then `make report-tool`",
        )
    return found


def install_allure(
    cache_dir: Path | None = None, progress: Callable[[str], None] = lambda _m: None
) -> Path:
    """Install the pinned Allure into the cache unless it is there already; its CLI's path."""
    cli = allure_bin(cache_dir)
    if cli.exists():
        return cli
    npm = _need("npm")
    _need("node")
    prefix = allure_prefix(cache_dir)
    progress(f"installing allure {ALLURE_VERSION} into {prefix}")
    partial = prefix.with_name(prefix.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    argv = [
        npm,
        "install",
        "--prefix",
        str(partial),
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        f"allure@{ALLURE_VERSION}",
    ]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise KubedrillError(
            f"npm install allure@{ALLURE_VERSION} failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-1500:]}",
            "check that npm can reach its registry, then rerun `make report-tool`",
        )
    # Renamed into place only when complete, so a killed install is never taken as done.
    shutil.rmtree(prefix, ignore_errors=True)
    partial.rename(prefix)
    return cli


def check_results(results: Path) -> int:
    """The number of test results in `results`; a clear error when there are none."""
    if not results.is_dir():
        raise ConfigError(
            f"no Allure results directory at {results}",
            "run the drills first (make gameday, or pytest drills/ --alluredir "
            f"{results}), or point --results at the directory",
        )
    count = sum(1 for _ in results.glob("*-result.json"))
    if count == 0:
        raise ConfigError(
            f"{results} holds no test results (*-result.json)",
            "run the drills first (make gameday); `make clean` empties it",
        )
    return count


def generate(
    files: ReportFiles,
    *,
    name: str = REPORT_NAME,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> Path:
    """Build `files.index` from `files.results`, appending this run to `files.history`."""
    count = check_results(files.results)
    _need("node")
    cli = allure_bin(cache_dir)
    if not cli.exists():
        raise MissingBinaryError(
            f"allure {ALLURE_VERSION} is not installed (no {cli})",
            "run `make report-tool` (part of `make setup`) or `kubedrill report --install-only`",
        )
    files.output.mkdir(parents=True, exist_ok=True)
    files.history.parent.mkdir(parents=True, exist_ok=True)
    progress(f"allure {ALLURE_VERSION}: {count} results from {files.results}")
    with tempfile.TemporaryDirectory(prefix="kubedrill-allure-") as work:
        # An explicit config, and a working directory with nothing else in it, so that no
        # allurerc lying around is picked up. Allure 3 reads categories from its config.
        config = Path(work) / "allurerc.json"
        config.write_text(json.dumps({"name": name, "categories": CATEGORIES}))
        argv = [
            str(cli), "awesome", str(files.results.resolve()),
            "--single-file",
            "--output", str(files.output.resolve()),
            "--report-name", name,
            "--history-path", str(files.history.resolve()),
            "--config", str(config),
            "--group-by", GROUP_BY,
        ]  # fmt: skip
        env = os.environ | {"NO_COLOR": "1", "ALLURE_NO_ANALYTICS": "true"}
        proc = subprocess.run(
            argv,
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=GENERATE_TIMEOUT_S,
            check=False,
        )
    if proc.returncode != 0 or not files.index.exists():
        raise KubedrillError(
            f"allure awesome failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-1500:]}",
            f"check the results in {files.results}",
        )
    strip_analytics(files.index)
    return files.index


def strip_analytics(index: Path) -> None:
    html = index.read_text(encoding="utf-8")
    index.write_text(_ANALYTICS.sub("", html), encoding="utf-8")
