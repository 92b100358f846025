"""Check a kind cluster config before handing it to `kind create cluster`: a typo found here is
a clear error in a second instead of a half-made cluster minutes later."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubedrill.errors import ConfigError
from kubedrill.yaml_file import load_yaml_file

KIND = "Cluster"
API_VERSION = "kind.x-k8s.io/v1alpha4"
NODE_ROLES = ("control-plane", "worker")
TOP_LEVEL = (
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
)


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
    unknown = sorted(set(doc) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(
            f"kind config {where}: unknown field(s) {', '.join(map(str, unknown))}",
            f"known fields: {', '.join(TOP_LEVEL)}",
        )
    roles = _roles(doc.get("nodes"), where)
    _check_patches(doc.get("kubeadmConfigPatches", []), where)
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"kind config {where}: name must be a string")
    return KindConfig(path, name, roles)


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


def _roles(nodes: object, where: str) -> tuple[str, ...]:
    if nodes is None:  # kind's default: one control-plane node
        return ("control-plane",)
    if not isinstance(nodes, list) or not nodes:
        raise ConfigError(f"kind config {where}: nodes must be a non-empty list")
    roles: list[str] = []
    for index, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            raise ConfigError(f"kind config {where}: nodes[{index}] must be a mapping")
        role = node.get("role", "control-plane")
        if role not in NODE_ROLES:
            raise ConfigError(
                f"kind config {where}: nodes[{index}].role is {role!r}, an unknown node role",
                f"use one of {', '.join(NODE_ROLES)}",
            )
        roles.append(str(role))
    if "control-plane" not in roles:
        raise ConfigError(
            f"kind config {where}: no control-plane node", "add a node with role: control-plane"
        )
    return tuple(roles)


def _check_patches(patches: object, where: str) -> None:
    if not isinstance(patches, list):
        raise ConfigError(f"kind config {where}: kubeadmConfigPatches must be a list of strings")
    for index, patch in enumerate(patches):
        try:
            parsed = yaml.safe_load(patch) if isinstance(patch, str) else None
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
