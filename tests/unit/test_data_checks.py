"""The HashKV checker can fail: members that disagree are named, a silent one makes the check
inconclusive. (Lost and changed writes: tests/unit/test_consistency_checks.py.)"""

from __future__ import annotations

from typing import Any, cast

from kubedrill.probes.etcd import EtcdClient, EtcdError, MemberStatus
from kubedrill.probes.etcd_checks import hashkv_disagreement


class FakeEtcd:
    def __init__(
        self,
        hashes: dict[str, tuple[int, int]] | None = None,
        revisions: dict[str, int | None] | None = None,
    ) -> None:
        self.hashes = hashes or {}
        self.revisions = revisions or {}
        self.asked_revision: int | None = None

    def statuses(self) -> dict[str, MemberStatus | None]:
        return {
            n: None if r is None else MemberStatus(n, n, "a", 2, r, r)
            for n, r in self.revisions.items()
        }

    def hashkv(self, node: str, revision: int) -> tuple[int, int]:
        self.asked_revision = revision
        if node not in self.hashes:
            raise EtcdError(f"{node}: timeout")
        return self.hashes[node]


def as_client(fake: FakeEtcd) -> EtcdClient:
    return cast(EtcdClient, cast(Any, fake))


def test_members_that_agree() -> None:
    fake = FakeEtcd(hashes={"a": (7, 1), "b": (7, 1)}, revisions={"a": 10, "b": 12})
    assert hashkv_disagreement(as_client(fake)) is None
    assert fake.asked_revision == 10  # the lowest revision every member has applied


def test_members_that_disagree_are_named() -> None:
    fake = FakeEtcd(hashes={"a": (7, 1), "b": (8, 1)}, revisions={"a": 10, "b": 10})
    found = hashkv_disagreement(as_client(fake))
    assert found is not None and "a=hash 7" in found and "b=hash 8" in found


def test_a_silent_member_makes_the_check_inconclusive() -> None:
    fake = FakeEtcd(hashes={"a": (7, 1)}, revisions={"a": 10, "b": None})
    assert hashkv_disagreement(as_client(fake)) == "not every member answered"
