"""kind configs are checked before `kind create cluster` runs: the shipped ones load, broken
ones give an error that names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.errors import ConfigError
from kubedrill.targets.kind.config import load_kind_config

ROOT = Path(__file__).resolve().parents[2]
HEADER = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"


def test_shipped_ha_config_has_three_control_planes_and_two_workers() -> None:
    config = load_kind_config(ROOT / "kind-configs" / "ha.yaml")
    assert (config.control_planes, config.workers) == (3, 2)


def test_shipped_single_config_has_one_control_plane() -> None:
    assert load_kind_config(ROOT / "kind-configs" / "single.yaml").control_planes == 1


def test_shipped_configs_carry_the_seeds_etcd_flags() -> None:
    text = (ROOT / "kind-configs" / "ha.yaml").read_text()
    for flag in ('heartbeat-interval: "100"', 'election-timeout: "1000"',
                 'snapshot-count: "10000"', 'quota-backend-bytes: "8589934592"'):  # fmt: skip
        assert flag in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nodes: [role: worker\n", "not valid YAML"),
        ("- just a list\n", "must be a mapping"),
        ("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n", "kind is 'Pod'"),
        ("kind: Cluster\napiVersion: v1\n", "apiVersion is 'v1'"),
        (HEADER + "nodes:\n  - role: master\n", r"nodes\[0\].role is 'master'"),
        (HEADER + "nodes:\n  - role: worker\n", "no control-plane node"),
        (HEADER + "nodes: []\n", "non-empty list"),
        (HEADER + "nodez: []\n", "unknown field"),
        (HEADER + "kubeadmConfigPatches:\n  - 42\n", r"kubeadmConfigPatches\[0\]"),
    ],
)
def test_bad_configs_are_refused_with_the_field_named(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "kind.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_kind_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read kind config"):
        load_kind_config(tmp_path / "nope.yaml")
