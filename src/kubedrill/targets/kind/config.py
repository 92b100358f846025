"""Check a kind cluster config before handing it to `kind create cluster`: a typo found here is
a clear error in a second instead of a half-made cluster minutes later."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from kubedrill.errors import ConfigError
from kubedrill.validation import validate_document
from kubedrill.yaml_file import load_yaml_file

KIND = "Cluster"
API_VERSION = "kind.x-k8s.io/v1alpha4"
NODE_ROLES = ("control-plane", "worker")
_HINT = "see kind-configs/ha.yaml for a working example"


class KindNodeFile(BaseModel):
    """One entry of `nodes:`. kubedrill reads only the role; kind checks the rest itself."""

    model_config = ConfigDict(extra="allow")
    role: Literal["control-plane", "worker"] = "control-plane"


class KindClusterFile(BaseModel):
    """The top level of kind's v1alpha4 Cluster config, as far as kubedrill checks it."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    apiVersion: str
    name: str | None = None
    nodes: list[KindNodeFile] | None = Field(default=None, min_length=1)
    networking: dict[str, Any] | None = None
    featureGates: dict[str, Any] | None = None
    runtimeConfig: dict[str, Any] | None = None
    kubeadmConfigPatches: list[str] = []
    kubeadmConfigPatchesJSON6902: list[Any] = []
    containerdConfigPatches: list[str] = []
    containerdConfigPatchesJSON6902: list[Any] = []


TOP_LEVEL = tuple(KindClusterFile.model_fields)


@dataclass(frozen=True)
class KindConfig:
    path: Path
    name: str | None
    roles: tuple[str, ...]  # one per node, in order

    @property
    def control_planes(self) -> int:
        return self.roles.count("control-plane")

    @property
    def workers(self) -> int:
        return self.roles.count("worker")


def load_kind_config(path: Path) -> KindConfig:
    where = str(path)
    doc: Any = load_yaml_file(
        path, "kind config", "pass an existing file, e.g. --config kind-configs/ha.yaml"
    )
    if not isinstance(doc, Mapping):
        raise ConfigError(
            f"kind config {where} must be a mapping (kind: Cluster, apiVersion: ..., nodes: [...])"
        )
    _check_identity(doc, where)
    checked = validate_document(
        KindClusterFile, doc, root="", hint=_HINT, label=f"kind config {where}: "
    )
    roles = tuple(n.role for n in checked.nodes) if checked.nodes else ("control-plane",)
    if "control-plane" not in roles:
        raise ConfigError(
            f"kind config {where}: no control-plane node", "add a node with role: control-plane"
        )
    _check_patches(checked.kubeadmConfigPatches, where)
    return KindConfig(path, checked.name, roles)


def _check_identity(doc: Mapping[str, Any], where: str) -> None:
    if doc.get("kind") != KIND:
        raise ConfigError(
            f"kind config {where}: kind is {doc.get('kind')!r}, expected {KIND!r}",
            f"start the file with `kind: {KIND}` and `apiVersion: {API_VERSION}`",
        )
    if doc.get("apiVersion") != API_VERSION:
        raise ConfigError(
            f"kind config {where}: apiVersion is {doc.get('apiVersion')!r}, expected "
            f"{API_VERSION!r}",
            "kubedrill's kind target supports kind's v1alpha4 config",
        )


def _check_patches(patches: list[str], where: str) -> None:
    for index, patch in enumerate(patches):
        try:
            parsed = yaml.safe_load(patch)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"kind config {where}: kubeadmConfigPatches[{index}] is not valid YAML: {exc}"
            ) from exc
        if not isinstance(parsed, Mapping) or "kind" not in parsed:
            raise ConfigError(
                f"kind config {where}: kubeadmConfigPatches[{index}] must be a YAML document "
                "string with a `kind:` (e.g. ClusterConfiguration)",
                "write it as a literal block: `- |` followed by the indented document",
            )
