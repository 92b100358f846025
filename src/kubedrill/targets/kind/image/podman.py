"""The few podman operations the image build needs, in one place.

`Podman()` is the machine's own image store, where the node image must end up (kind starts nodes
from it). `Podman(root=...)` is a private store under the cache: the component images are built
and saved there, so names like registry.k8s.io/kube-apiserver never appear in (or overwrite
anything in) the machine's store.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubedrill.targets.kind.image.run import ImageBuildError, output, run


@dataclass(frozen=True)
class Podman:
    root: Path | None = None  # a private store's graph root
    runroot: Path | None = None  # and its run root (podman wants it under 50 characters)

    def argv(self, *args: str) -> list[str]:
        if shutil.which("podman") is None:
            raise ImageBuildError("podman is not installed", "make setup (installs podman)")
        store: list[str] = []
        if self.root is not None and self.runroot is not None:
            store = ["--root", str(self.root), "--runroot", str(self.runroot)]
        return ["podman", *store, *args]

    def image_exists(self, name: str) -> bool:
        return run(self.argv("image", "exists", name), check=False).returncode == 0

    def inspect_image(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(output(self.argv("image", "inspect", name)))
        return data[0]

    def import_tar(self, tar: Path, name: str, changes: list[str]) -> None:
        flags = [part for change in changes for part in ("--change", change)]
        run(self.argv("import", *flags, str(tar), name), nice=True)

    def build(self, context: Path, name: str) -> None:
        run(self.argv("build", "--quiet", "--network", "none", "--layers=false",
                      "-t", name, str(context)), nice=True)  # fmt: skip

    def tag(self, source: str, target: str) -> None:
        run(self.argv("tag", source, target))

    def save(self, names: list[str], archive: Path) -> None:
        run(self.argv("save", "--quiet", "-m", "--format", "docker-archive",
                      "-o", str(archive), *names), nice=True)  # fmt: skip

    def remove_images(self, names: list[str]) -> None:
        if names:
            run(self.argv("rmi", "--ignore", *names), check=False)

    def run_detached(self, name: str, image: str, args: list[str]) -> str:
        return output(
            self.argv("run", "-d", "--name", name, *args, image),
            hint="podman needs kubedrill's limits drop-in on this machine (make container-engine)",
        )

    def exec(self, container: str, command: list[str]) -> str:
        return run(self.argv("exec", container, *command), nice=True).stdout

    def commit(self, container: str, name: str, changes: list[str]) -> None:
        flags = [part for change in changes for part in ("--change", change)]
        run(self.argv("commit", "--quiet", *flags, container, name), nice=True)

    def remove_container(self, name: str) -> None:
        run(self.argv("rm", "--force", "--time", "0", "--ignore", "--volumes", name), check=False)

    def images(self, reference: str) -> list[str]:
        """Every `repository:tag` matching `reference` (e.g. localhost/kubedrill/node)."""
        listed = output(self.argv("images", "--format", "{{.Repository}}:{{.Tag}}", reference))
        return [line for line in listed.splitlines() if line and not line.endswith(":<none>")]
