"""The image kind runs as an HA cluster's external load balancer, built here.

kind v0.33 starts its load balancer from `docker.io/envoyproxy/envoy:v1.36.2` with
`bash -c 'mkdir -p /home/envoy && echo -en ... && while true; do envoy -c ...; done'` and later
writes `/home/envoy/{cds,lds}.yaml` by exec (`mkdir -p`, `cp /dev/stdin`, `sh -c 'chmod ... &&
mv ...'`). No registry is reachable here, so kubedrill builds an image under that exact name:
`FROM scratch`, Debian's static busybox for the shell tools kind execs, a two-line `bash` that
runs busybox's sh (busybox has no bash applet), and kubedrill's own proxy (tools/kindlb) as
`/usr/local/bin/envoy`, which follows those files as Envoy would.

kind's podman provider passes the name through `sanitizeImage`, which leaves a name whose first
part holds a dot unchanged, and checks `podman inspect --type=image` before pulling: the local
image is found and nothing is pulled. The image carries a label with a hash of its inputs, so a
changed proxy or busybox rebuilds it; an image of that name without the label is a real Envoy
(pulled by the user) and is used as it is.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from kubedrill.errors import MissingBinaryError
from kubedrill.gotool import TOOLS_DIR, GoTool, ensure_go_tool, quiet
from kubedrill.targets.lab.config import default_cache_dir

Progress = Callable[[str], None]
LB_IMAGE = "docker.io/envoyproxy/envoy:v1.36.2"  # kind v0.33's loadbalancer.Image
INPUTS_LABEL = "io.kubedrill.lb-inputs"
PROXY = GoTool("kindlb", TOOLS_DIR / "kindlb", "the kind load-balancer proxy")
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
# What kind runs in the container: its bootstrap command and nodeutils' file writes.
APPLETS = ("sh", "mkdir", "cp", "chmod", "mv", "sleep", "cat", "touch", "ls", "echo")
BASH = '#!/bin/sh\nexec /bin/sh "$@"\n'
CONTAINERFILE = f"""FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/bin
CMD ["envoy", "--version"]
LABEL {INPUTS_LABEL}=%(inputs)s
"""
PT_INTERP = 3


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF without an interpreter (a static executable), which
    is what runs in an image that has no libc."""
    with path.open("rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return False
        (phoff,) = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != PT_INTERP for i in range(phnum))


def _busybox() -> Path:
    if not BUSYBOX.is_file() or not is_static_elf(BUSYBOX):
        raise MissingBinaryError(
            f"the load-balancer image needs a static busybox at {BUSYBOX}",
            "install Debian's busybox-static (`make setup` does)",
        )
    return BUSYBOX


def inputs_hash(proxy: Path, busybox: Path) -> str:
    """A short hash of everything the image is made of."""
    digest = hashlib.sha256()
    for part in (CONTAINERFILE.encode(), BASH.encode(), " ".join(APPLETS).encode()):
        digest.update(hashlib.sha256(part).digest())
    for path in (proxy, busybox):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=600, check=False
    )
    if check and done.returncode != 0:
        raise MissingBinaryError(
            f"`podman {' '.join(args[:2])}` for the load-balancer image exited "
            f"{done.returncode}: {(done.stderr or done.stdout).strip()[-1500:]}",
            "check podman (`podman info`); `make setup` installs it",
        )
    return done


def _labels(name: str) -> tuple[str, dict[str, str]] | None:
    """(image id, labels) of the image called `name`, or None when podman has none."""
    done = _podman("image", "inspect", name, check=False)
    if done.returncode != 0:
        return None
    image = json.loads(done.stdout)[0]
    labels = image.get("Labels") or image.get("Config", {}).get("Labels") or {}
    return str(image["Id"]), {str(k): str(v) for k, v in labels.items()}


def _context(root: Path, proxy: Path, busybox: Path, inputs: str) -> None:
    rootfs = root / "rootfs"
    bin_dir, local_bin = rootfs / "bin", rootfs / "usr" / "local" / "bin"
    bin_dir.mkdir(parents=True)
    local_bin.mkdir(parents=True)
    (bin_dir / "busybox").write_bytes(busybox.read_bytes())
    for applet in APPLETS:
        (bin_dir / applet).symlink_to("busybox")
    (bin_dir / "bash").write_text(BASH)
    (local_bin / "envoy").write_bytes(proxy.read_bytes())
    for path in (bin_dir / "busybox", bin_dir / "bash", local_bin / "envoy"):
        path.chmod(0o755)
    (root / "Containerfile").write_text(CONTAINERFILE % {"inputs": inputs})


def lb_image(progress: Progress = quiet, *, cache_dir: Path | None = None) -> str:
    """The load-balancer image's name, built first if podman lacks it or it is out of date."""
    proxy = ensure_go_tool(PROXY, cache_dir or default_cache_dir(), progress)
    busybox = _busybox()
    inputs = inputs_hash(proxy, busybox)
    found = _labels(LB_IMAGE)
    if found is not None and INPUTS_LABEL not in found[1]:
        progress(f"load-balancer image {LB_IMAGE} is not kubedrill's (a real Envoy?): using it")
        return LB_IMAGE
    if found is not None and found[1][INPUTS_LABEL] == inputs:
        progress(f"load-balancer image {LB_IMAGE} is up to date ({inputs})")
        return LB_IMAGE
    progress(f"building load-balancer image {LB_IMAGE} (kubedrill's proxy, inputs {inputs})")
    with tempfile.TemporaryDirectory(prefix="kubedrill-lb-image-") as tmp:
        _context(Path(tmp), proxy, busybox, inputs)
        _podman("build", "--quiet", "--network", "none", "--layers=false", "-t", LB_IMAGE, tmp)
    if found is not None:  # the replaced build, now untagged; podman keeps it while in use
        _podman("image", "rm", found[0], check=False)
    return LB_IMAGE
