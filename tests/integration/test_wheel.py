"""An installed wheel works without a checkout: the files kubedrill needs at run time (the alert
rules, the Go sources of its helpers) are package data, found through importlib.resources."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_its_data_and_finds_it_from_site_packages(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("kubedrill-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "kubedrill/data/alerts/control-plane.rules.yml",
        "kubedrill/data/tools/lincheck/main.go",
        "kubedrill/data/tools/lincheck/go.sum",
        "kubedrill/data/tools/kindlb/main.go",
        "kubedrill/py.typed",
    ):
        assert needed in names, f"{needed} is not in {wheel.name}"
    # Unpacked as pip installs it, and first on the path: the checkout must play no part.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import kubedrill, pathlib\n"
        "from kubedrill.checks.alerts import DEFAULT_RULES, load_rules\n"
        "from kubedrill.consistency.lincheck_build import SOURCE_DIR\n"
        "from kubedrill.gotool import GoTool, source_files\n"
        "print(pathlib.Path(kubedrill.__file__).parent)\n"
        "print(DEFAULT_RULES)\n"
        "print(len(load_rules(DEFAULT_RULES)))\n"
        "print(len(source_files(GoTool('lincheck', SOURCE_DIR, 'lincheck'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split("\n")
    assert Path(out[0]) == site / "kubedrill"
    assert Path(out[1]) == site / "kubedrill" / "data" / "alerts" / "control-plane.rules.yml"
    assert int(out[2]) > 0
    assert int(out[3]) >= 4  # go.mod, go.sum, main.go, model.go
