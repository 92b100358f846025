"""The upgrade drill's pure parts: the plan (next pinned minor, kubeadm's component order, etcd
only when its version changes) and the binary-directory override the supervisor applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubedrill.cluster import Node
from kubedrill.errors import ConfigError
from kubedrill.maintenance import upgrade
from kubedrill.targets.lab import overrides, versions
from kubedrill.targets.lab.control import LOCAL


def test_plan_to_the_next_minor_with_etcd_first_when_it_changes() -> None:
    plan = upgrade.plan_from("v1.36.3")
    assert plan.target == versions.release_for(37)
    assert plan.etcd_changes == (plan.current.etcd != plan.target.etcd)
    assert plan.components[-3:] == (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    )
    assert (plan.components[0] == "etcd") == plan.etcd_changes
    assert "v1.36.3 -> v1.37.2" in plan.describe()
    same_etcd = upgrade.plan_from("v1.34.4")  # 1.34 and 1.35 share etcd 3.6
    assert not same_etcd.etcd_changes and "etcd" not in same_etcd.components
    assert "stays" in same_etcd.describe()


def test_no_plan_beyond_the_newest_or_for_a_non_release() -> None:
    with pytest.raises(ConfigError, match="no pinned release"):
        upgrade.plan_from(versions.DEFAULT.kubernetes)
    with pytest.raises(ConfigError):
        upgrade.plan_from("latest")


def test_bin_dir_override_switches_the_binary_and_keeps_flags(tmp_path: Path) -> None:
    key = "control-1__etcd"
    argv = ("/cache/etcd-v3.6.16/etcd", "--name=control-1", "--initial-cluster-state=new")
    overrides.write_flags(tmp_path, key, {"--initial-cluster-state": "existing"})
    switch = upgrade.LabBinarySwitch(tmp_path, {"etcd": Path("/cache/etcd-v3.7.3")})
    switch(Node("control-1", frozenset({"etcd"}), "10.0.0.2", LOCAL), "etcd")
    read = overrides.read_override(tmp_path, key)
    assert read.apply(argv) == (
        "/cache/etcd-v3.7.3/etcd",
        "--name=control-1",
        "--initial-cluster-state=existing",
    )
    # A later flag write keeps the binary directory, and the other way round.
    overrides.write_flags(tmp_path, key, {"--log-level": "debug"})
    assert overrides.read_override(tmp_path, key).bin_dir == "/cache/etcd-v3.7.3"
    assert "binaries from /cache/etcd-v3.7.3" in overrides.read_override(tmp_path, key).describe()
    assert overrides.with_bin_dir(argv, None) == argv


def test_bin_dir_must_be_absolute(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="absolute"):
        overrides.parse_override('{"flags": {}, "bin_dir": "relative"}', tmp_path / "x.json")
    assert upgrade.bin_dirs({"etcd": Path("/a/etcd")}) == {"etcd": Path("/a")}
