"""Files kubedrill needs at run time, shipped inside the package so that an installed wheel has
them too: the alert rules (alerts/), and the source of its own small Go programs (tools/: the
linearizability checker and the kind load-balancer proxy), which are built on first use.

Found through importlib.resources, never relative to a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def data_path(*parts: str) -> Path:
    """A file or directory under kubedrill/data. Packages are installed unzipped (pip always
    installs wheels unpacked), so the resource is a real path that promtool and go can read."""
    return Path(str(files(__name__).joinpath(*parts)))


ALERT_RULES = data_path("alerts", "control-plane.rules.yml")
TOOLS_DIR = data_path("tools")
