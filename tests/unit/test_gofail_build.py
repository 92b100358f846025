"""The failpoint build's pure parts: which packages gofail enables, the cache key, the member's
GOFAIL_HTTP endpoint (its own address only)."""

from __future__ import annotations

from pathlib import Path

from kubedrill.targets.lab import gofail
from kubedrill.targets.lab.build import _write_module, etcd_build
from kubedrill.targets.lab.config import EtcdSettings
from kubedrill.targets.lab.etcd import etcd_env
from kubedrill.targets.lab.network import HostPlan


def test_failpoint_dirs_lists_packages_with_gofail_comments_outside_tests(tmp_path: Path) -> None:
    (tmp_path / "storage" / "wal").mkdir(parents=True)
    (tmp_path / "storage" / "wal" / "wal.go").write_text("// gofail: var walBeforeSync struct{}\n")
    (tmp_path / "etcdserver").mkdir()
    (tmp_path / "etcdserver" / "raft.go").write_text("\t// gofail: var raftBeforeSave struct{}\n")
    (tmp_path / "lease").mkdir()
    (tmp_path / "lease" / "lessor_test.go").write_text("// gofail: var testOnly struct{}\n")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.go").write_text("package plain\n")
    assert gofail.failpoint_dirs(tmp_path) == ["etcdserver", "storage/wal"]
    # After `gofail enable` a label comment may stay; a declaration must not.
    (tmp_path / "etcdserver" / "raft.go").write_text("// gofail: labelX:\n")
    assert gofail.failpoint_dirs(tmp_path, gofail.DECLARATION) == ["storage/wal"]


def test_writable_copy_of_a_read_only_tree(tmp_path: Path) -> None:
    source = tmp_path / "cache" / "mod"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "a.go").write_text("package pkg\n")
    for path in (source / "pkg" / "a.go", source / "pkg", source):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        gofail.writable_copy(source, tmp_path / "copy")
        (tmp_path / "copy" / "pkg" / "a.go").write_text("package pkg // rewritten\n")
        (tmp_path / "copy" / "pkg" / "new.go").write_text("package pkg\n")
    finally:
        for path in (source, source / "pkg"):
            path.chmod(0o755)


def test_failpoint_build_has_its_own_key_and_the_normal_build_stays_the_default() -> None:
    normal = etcd_build("v3.6.16")
    failpoints = gofail.failpoint_build("v3.6.16")
    assert normal.key == "etcd-v3.6.16" and normal.sources is None
    assert failpoints.key == "etcd-v3.6.16-failpoints"
    assert failpoints.requires[gofail.MODULE] == gofail.VERSION
    assert failpoints.binaries == normal.binaries
    assert gofail.etcd_build_for("v3.6.16", failpoints=False) == normal
    assert gofail.etcd_build_for("v3.6.16", failpoints=True).key == failpoints.key


def test_local_replaces_point_into_the_build_directory(tmp_path: Path) -> None:
    _write_module(tmp_path, etcd_build("v3.6.16"), {gofail.SERVER_MODULE: gofail.SERVER_COPY})
    assert (
        "replace go.etcd.io/etcd/server/v3 => ./etcd-server\n" in (tmp_path / "go.mod").read_text()
    )


def test_gofail_http_listens_on_the_members_own_address_only() -> None:
    host = HostPlan("etcd-2", "10.213.81.12", "kd-x-etcd-2", "veth")
    assert etcd_env(host, EtcdSettings()) == {}
    assert etcd_env(host, EtcdSettings(failpoints=True, failpoints_port=22999)) == {
        "GOFAIL_HTTP": "10.213.81.12:22999"
    }
