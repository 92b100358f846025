"""A compare-and-set register in etcd: clients read it and swap it, every operation recorded.

This is the history the linearizability checker gets: reads that must see the latest value,
and transactions that must apply only when the compare holds. Several clients share one key,
so their operations overlap in time, which is what makes the check meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubedrill.probes.etcd import EtcdClient, EtcdError, b64, unb64
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.history import Operation


def is_timeout(error: str) -> bool:
    """A timed-out request may have been applied; a refused one was not."""
    return "Timeout" in error


@dataclass(kw_only=True)
class EtcdRegister(BackgroundClient):
    """Alternates a linearizable read of `key` with a CAS from the value read to a new one.

    An attempt that fails without a timeout (connection refused, no leader answer) is retried
    on the next member; after a timeout the operation is recorded `unknown` and not retried,
    because a retry could apply it a second time.
    """

    client: EtcdClient
    key: str
    attempt_timeout: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._last_read: str | None = None

    def _members(self, seq: int) -> list[str]:
        nodes = self.client.nodes
        start = (seq + hash(self.name)) % len(nodes)
        return nodes[start:] + nodes[:start]

    def operation(self, seq: int) -> Operation:
        if self._last_read is None:
            return self._read(seq)
        expected, self._last_read = self._last_read, None
        return self._cas(seq, expected)

    def _call(self, seq: int, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
        """(answer, outcome, error) of the first member that answers. After a timeout the
        outcome is `unknown` and no other member is tried; `fail` when every member refused."""
        errors: list[str] = []  # every attempt's: the checker reads why each one failed
        for node in self._members(seq):
            try:
                return self.client.call(node, path, body, timeout=self.attempt_timeout), "ok", ""
            except EtcdError as exc:
                errors.append(str(exc))
                if is_timeout(errors[-1]):
                    return {}, "unknown", "; ".join(errors)
        return {}, "fail", "; ".join(errors)

    def _read(self, seq: int) -> Operation:
        invoke = self.timeline.now()
        data, outcome, error = self._call(seq, "/v3/kv/range", {"key": b64(self.key)})
        kvs = data.get("kvs") or []
        value = unb64(kvs[0].get("value", "")) if kvs else ""
        if outcome == "ok":
            self._last_read = value
        return Operation(
            self.name, "get", self.key, value, invoke, self.timeline.now(), outcome,
            revision_of(data), error,
        )  # fmt: skip

    def _cas(self, seq: int, expected: str) -> Operation:
        new = f"{self.name}-{seq}"
        body = {
            "compare": [
                {"key": b64(self.key), "result": "EQUAL", "target": "VALUE", "value": b64(expected)}
            ],
            "success": [{"request_put": {"key": b64(self.key), "value": b64(new)}}],
            "failure": [],
        }
        invoke = self.timeline.now()
        data, outcome, error = self._call(seq, "/v3/kv/txn", body)
        # proto3 JSON leaves out false booleans: no "succeeded" means the compare failed. A cas
        # without an answer may have applied.
        applied = bool(data.get("succeeded", False)) if outcome == "ok" else True
        return Operation(
            self.name, "cas", self.key, new, invoke, self.timeline.now(), outcome,
            revision_of(data), error, expected=expected, applied=applied,
        )  # fmt: skip


def revision_of(answer: dict[str, Any]) -> int:
    return int(answer.get("header", {}).get("revision", 0))
