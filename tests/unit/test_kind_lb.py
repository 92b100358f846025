"""The kind load balancer: its Go tests (config parsing, health transitions, round robin over
healthy hosts, an in-process proxy run) run from here so `make unit` covers them, and the
image recipe's pure parts (what makes the image rebuild, the static-binary check)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kubedrill.gotool import TOOLS_DIR
from kubedrill.targets.kind.image import lb
from kubedrill.targets.lab.build import go_environment

SOURCE = TOOLS_DIR / "kindlb"


@pytest.mark.skipif(shutil.which("go") is None, reason="the Go toolchain is not installed")
def test_kindlb_go_tests_pass() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # go may touch go.sum: never in the checkout
        work = Path(tmp) / "kindlb"
        shutil.copytree(SOURCE, work)
        done = subprocess.run(
            ["go", "test", "-count=1", "./..."], cwd=work, env=go_environment(),
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_inputs_hash_follows_the_proxy_and_busybox(tmp_path: Path) -> None:
    proxy, busybox = tmp_path / "envoy", tmp_path / "busybox"
    proxy.write_bytes(b"proxy v1")
    busybox.write_bytes(b"busybox")
    first = lb.inputs_hash(proxy, busybox)
    assert lb.inputs_hash(proxy, busybox) == first
    proxy.write_bytes(b"proxy v2")
    assert lb.inputs_hash(proxy, busybox) != first


def test_static_elf_check(tmp_path: Path) -> None:
    if Path("/bin/busybox").is_file():
        assert lb.is_static_elf(Path("/bin/busybox")) == ("static" in _file(Path("/bin/busybox")))
    assert not lb.is_static_elf(Path(sys.executable).resolve())  # CPython links libc
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not lb.is_static_elf(script)


def _file(path: Path) -> str:
    if shutil.which("file") is None:
        pytest.skip("no `file` command to cross-check")
    return subprocess.run(["file", "-L", str(path)], capture_output=True, text=True).stdout


def test_image_recipe_matches_what_kind_runs() -> None:
    assert lb.LB_IMAGE == "docker.io/envoyproxy/envoy:v1.36.2"
    assert {"sh", "mkdir", "cp", "chmod", "mv", "sleep"} <= set(lb.APPLETS)
    assert lb.BASH.splitlines() == ["#!/bin/sh", 'exec /bin/sh "$@"']
