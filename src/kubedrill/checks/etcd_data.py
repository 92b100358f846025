"""Nothing lost in etcd: every member holds the same data (HashKV at one revision), and every
write a drill's own writer saw acknowledged is stored with its value."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubedrill.checks.base import CheckContext
from kubedrill.checks.verdict import Verdict
from kubedrill.consistency import checks
from kubedrill.polling import poll_until
from kubedrill.probes import etcd_checks
from kubedrill.probes.etcd import EtcdClient, EtcdError
from kubedrill.workload.etcd_writer import EtcdWriter

HASHKV = "etcd: members agree (HashKV at one revision)"


def hashkv_verdict(etcd: EtcdClient) -> Verdict:
    """Asked again for up to 15 s: a member that just rejoined may still be applying."""
    started = time.perf_counter()
    disagreement, agreed = poll_until(
        lambda: etcd_checks.hashkv_disagreement(etcd),
        lambda d: d is None,
        timeout=15,
        interval=0.5,
    )
    seconds = time.perf_counter() - started
    if agreed:
        return checks.verdict(HASHKV, "valid", "every member reports the same HashKV", {}, seconds)
    if disagreement and "answer" in disagreement:  # a member did not answer: undecided
        return checks.verdict(HASHKV, "unknown", disagreement, {}, seconds)
    return checks.verdict(HASHKV, "invalid", str(disagreement), {}, seconds)


@dataclass
class HashKvCheck:
    etcd: EtcdClient
    name: str = HASHKV

    def run(self, ctx: CheckContext) -> Verdict:
        verdict = hashkv_verdict(self.etcd)
        ctx.observe("etcd_hashkv", "all members agree" if verdict.valid else verdict.detail)
        return verdict


@dataclass
class AcknowledgedWritesCheck:
    """The drill's own writer (`Drill.writer()`): the same check the consistency workload
    runs on its keys, applied to this writer's prefix."""

    etcd: EtcdClient
    writer: EtcdWriter

    @property
    def name(self) -> str:
        return f"etcd: {self.writer.name} acknowledged writes stored"

    def run(self, ctx: CheckContext) -> Verdict:
        try:
            stored = self.etcd.range_prefix(self.writer.prefix + "/")
        except EtcdError as exc:
            return checks.verdict(self.name, "unknown", f"could not read the writes: {exc}")
        verdict = checks.acknowledged_writes_present(self.name, self.writer.history(), stored)
        ctx.observe(f"{self.writer.name}_acknowledged_writes", verdict.figures["acknowledged"])
        return verdict
