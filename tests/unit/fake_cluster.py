"""A cluster stand-in for tests of the drill's own logic (no probe, no fault ever runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from kubedrill.cluster import Cluster


@dataclass
class FakeFacts:
    def to_dict(self) -> dict[str, str]:
        return {"target": "fake"}


@dataclass
class FakeCluster:
    name: str = "fake"
    target: str = "fake"
    kube: None = None
    facts: FakeFacts = field(default_factory=FakeFacts)


def fake_cluster() -> Cluster:
    return cast(Cluster, FakeCluster())
