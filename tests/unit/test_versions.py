"""Kubernetes releases and their etcd: the pairing table and how the lab config applies it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.errors import ConfigError
from kubedrill.targets.lab import versions
from kubedrill.targets.lab.config import (
    EtcdSettings,
    KubernetesSettings,
    LabConfig,
    load_lab_config,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEDRILL_BIN_DIR", raising=False)


def test_default_is_the_newest_minor_and_previous_the_one_before() -> None:
    minors = [r.minor for r in versions.RELEASES]
    assert minors == sorted(minors) and len(set(minors)) == len(minors)
    assert versions.DEFAULT.minor == max(minors)
    assert versions.PREVIOUS.minor == versions.DEFAULT.minor - 1
    assert LabConfig().kubernetes.version == versions.DEFAULT.kubernetes


def test_etcd_follows_kubeadm_lines() -> None:
    # kubeadm 1.34-1.36 deploy etcd 3.6 (3.6.5-0, 3.6.6-0, 3.6.8-0); 1.37's map gives 3.7.0-0.
    assert versions.paired_etcd("v1.34.4") == "v3.6.16"
    assert versions.paired_etcd("v1.36.3") == "v3.6.16"
    assert versions.paired_etcd("v1.37.2").startswith("v3.7.")
    assert versions.paired_etcd("v1.36.1") == versions.paired_etcd("v1.36.3")  # by minor


@pytest.mark.parametrize("bad", ["1.37", "v2.0.0", "latest", ""])
def test_not_a_release_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a Kubernetes release"):
        versions.minor_of(bad)


def test_unpaired_minor_says_to_set_etcd() -> None:
    with pytest.raises(ConfigError) as err:
        versions.paired_etcd("v1.30.14")
    assert "lab.etcd.version" in err.value.hint
    assert versions.release_for(36).kubernetes == "v1.36.3"
    with pytest.raises(ConfigError):
        versions.release_for(99)


def test_config_brings_the_paired_etcd(tmp_path: Path) -> None:
    assert LabConfig().etcd.version == versions.DEFAULT.etcd
    old = LabConfig(kubernetes=KubernetesSettings(version="v1.34.4"))
    assert old.etcd.version == "v3.6.16"
    path = tmp_path / "lab.yaml"
    # No etcd section: etcd follows kubernetes.version, not the default config's etcd.
    path.write_text("lab:\n  kubernetes:\n    version: v1.36.3\n", encoding="utf-8")
    assert load_lab_config(path).etcd.version == "v3.6.16"
    # An etcd section without a version: the same.
    path.write_text(
        "lab:\n  etcd:\n    heartbeat_interval_ms: 100\n  kubernetes:\n    version: v1.34.4\n",
        encoding="utf-8",
    )
    assert load_lab_config(path).etcd.version == "v3.6.16"
    # An explicit etcd version wins.
    path.write_text(
        "lab:\n  etcd:\n    version: v3.6.15\n  kubernetes:\n    version: v1.37.2\n",
        encoding="utf-8",
    )
    assert load_lab_config(path).etcd.version == "v3.6.15"
    assert EtcdSettings().version == ""  # unset until a LabConfig pairs it


def test_unknown_minor_without_etcd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("lab:\n  kubernetes:\n    version: v1.30.14\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no etcd is paired"):
        load_lab_config(path)
    path.write_text(
        "lab:\n  etcd:\n    version: v3.5.24\n  kubernetes:\n    version: v1.30.14\n",
        encoding="utf-8",
    )
    assert load_lab_config(path).etcd.version == "v3.5.24"
