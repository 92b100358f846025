"""The upgrade drill's binary switch on a real lab: each etcd member of a v3.6.16 lab, stopped
in turn, comes back from the v3.7.3 build the override names, and once all have, the cluster
version is 3.7 (a real rolling etcd upgrade, without Kubernetes: about 20 s)."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

import pytest

from kubedrill.maintenance.upgrade import LabBinarySwitch
from kubedrill.polling import poll_until
from kubedrill.targets.lab import layout
from kubedrill.targets.lab.build import cached_dir, etcd_build, is_complete
from kubedrill.targets.lab.config import load_lab_config

from .conftest import running_lab

NEW = "v3.7.3"


def test_members_switch_binary_and_the_cluster_version_moves(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(
        "lab:\n  name: binswap\n  topology: etcd\n  subnet: 10.213.95.0/24\n"
        "  etcd:\n    version: v3.6.16\n"
    )
    config = load_lab_config(path)
    new_dir = cached_dir(config.cache_dir, etcd_build(NEW))
    if not is_complete(new_dir, ["etcd"]):
        pytest.skip(f"etcd {NEW} is not built: kubedrill build")
    with running_lab(config) as cluster:
        switch = LabBinarySwitch(config.state_dir, {"etcd": new_dir})
        for node in cluster.with_role("etcd"):
            old = layout.read_pid(config.state_dir, node.name, "etcd")
            assert old is not None
            switch(node, "etcd")
            os.kill(old, signal.SIGTERM)  # the supervisor starts it again, from new_dir

            def argv0(name: str = node.name, old: int | None = old) -> str:
                pid = layout.read_pid(config.state_dir, name, "etcd")
                if pid is None or pid == old:
                    return ""
                try:
                    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                except OSError:
                    return ""

            _, switched = poll_until(argv0, lambda a: a == str(new_dir / "etcd"), timeout=30)
            assert switched, f"{node.name} did not come back from {new_dir}"
        url = f"http://{cluster.nodes[0].address}:{config.etcd.metrics_port}/metrics"

        def cluster_version() -> str:
            try:
                text = urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError:
                return ""
            return next(
                (ln for ln in text.splitlines() if ln.startswith("etcd_cluster_version{")
                 and ln.endswith(" 1")), "",
            )  # fmt: skip

        version, moved = poll_until(cluster_version, lambda v: '"3.7"' in v, timeout=30)
        assert moved, f"cluster version did not move to 3.7: {version!r}"
