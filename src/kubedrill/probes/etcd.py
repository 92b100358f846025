"""Talk to etcd members through their gRPC-JSON gateway (HTTPS, client cert).

The gateway is part of every etcd server, so probes need no gRPC stack and see exactly what a
client sees. Each member gets its own HTTP session (requests sessions are not shared across
threads) and every call has a short timeout: an isolated or paused member must not stall a poll.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from kubedrill.cluster import EtcdAccess
from kubedrill.faults.shape import quorum


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode(errors="replace")


@dataclass(frozen=True)
class MemberStatus:
    node: str
    member_id: str
    leader_id: str
    raft_term: int
    raft_index: int
    revision: int
    errors: tuple[str, ...] = ()

    @property
    def is_leader(self) -> bool:
        return self.leader_id == self.member_id and self.leader_id not in ("", "0")


@dataclass(frozen=True)
class LeaderView:
    """The leader as the cluster sees it: the id that a quorum of all members reports."""

    leader: str | None  # node name
    term: int
    statuses: Mapping[str, MemberStatus | None]

    @property
    def reachable(self) -> int:
        return sum(1 for s in self.statuses.values() if s is not None)


class EtcdError(Exception):
    """An etcd request failed (connection, timeout, or an error answer)."""


class EtcdClient:
    def __init__(self, access: EtcdAccess, *, timeout: float = 1.0) -> None:
        self.access = access
        self.timeout = timeout
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, len(access.endpoints)), thread_name_prefix="etcd-probe"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def nodes(self) -> list[str]:
        return sorted(self.access.endpoints)

    def session(self, node: str) -> requests.Session:
        """This thread's HTTP session to `node` (TLS set up; never through a proxy)."""
        sessions: dict[str, requests.Session] = getattr(self._local, "sessions", {})
        self._local.sessions = sessions
        if node not in sessions:
            session = requests.Session()
            # Ignore proxy and CA-bundle variables from the environment: lab traffic goes straight
            # to the member, verified against the lab's own CA and nothing else.
            session.trust_env = False
            if self.access.tls is not None:
                session.verify = str(self.access.tls.ca)
                session.cert = (str(self.access.tls.cert), str(self.access.tls.key))
            sessions[node] = session
        return sessions[node]

    def call(
        self, node: str, path: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        url = self.access.endpoints[node] + path
        try:
            resp = self.session(node).post(url, json=dict(body), timeout=timeout or self.timeout)
        except requests.RequestException as exc:
            raise EtcdError(f"{node}: {type(exc).__name__}") from exc
        try:
            data: dict[str, Any] = resp.json()
        except ValueError as exc:
            raise EtcdError(f"{node}: HTTP {resp.status_code} with no JSON") from exc
        if resp.status_code != 200 or "error" in data or ("code" in data and data.get("code")):
            raise EtcdError(
                f"{node}: {data.get('message') or data.get('error') or resp.status_code}"
            )
        return data

    # -- cluster state ------------------------------------------------------------------------

    def status(self, node: str) -> MemberStatus:
        data = self.call(node, "/v3/maintenance/status", {})
        header = data.get("header", {})
        return MemberStatus(
            node=node,
            member_id=str(header.get("member_id", "")),
            leader_id=str(data.get("leader", "0")),
            raft_term=int(data.get("raftTerm", 0)),
            raft_index=int(data.get("raftIndex", 0)),
            revision=int(header.get("revision", 0)),
            errors=tuple(data.get("errors", ())),
        )

    def statuses(self, nodes: Iterable[str] | None = None) -> dict[str, MemberStatus | None]:
        wanted = list(nodes or self.nodes)
        futures = {n: self._pool.submit(self.status, n) for n in wanted}
        out: dict[str, MemberStatus | None] = {}
        for node, future in futures.items():
            try:
                out[node] = future.result()
            except EtcdError:
                out[node] = None
        return out

    def leader_view(self) -> LeaderView:
        statuses = self.statuses()
        votes = Counter(
            s.leader_id for s in statuses.values() if s is not None and s.leader_id not in ("", "0")
        )
        needed = quorum(len(self.access.endpoints))
        id_to_node = {s.member_id: s.node for s in statuses.values() if s is not None}
        for leader_id, count in votes.most_common():
            if count >= needed and leader_id in id_to_node:
                terms = [
                    s.raft_term
                    for s in statuses.values()
                    if s is not None and s.leader_id == leader_id
                ]
                return LeaderView(id_to_node[leader_id], max(terms), statuses)
        term = max((s.raft_term for s in statuses.values() if s is not None), default=0)
        return LeaderView(None, term, statuses)

    def leader(self) -> str | None:
        return self.leader_view().leader

    # -- key/value ------------------------------------------------------------------------------

    def put(
        self, key: str, value: str, *, node: str | None = None, timeout: float | None = None
    ) -> int:
        """Put through `node`, or through the first member that answers. Returns the revision."""
        errors: list[str] = []
        for candidate in [node] if node else self.nodes:
            try:
                data = self.call(
                    candidate, "/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout
                )
                return int(data.get("header", {}).get("revision", 0))
            except EtcdError as exc:
                errors.append(str(exc))
        raise EtcdError("; ".join(errors))

    def get(self, key: str, *, node: str | None = None, serializable: bool = False) -> str | None:
        errors: list[str] = []
        for candidate in [node] if node else self.nodes:
            try:
                data = self.call(
                    candidate, "/v3/kv/range", {"key": b64(key), "serializable": serializable}
                )
            except EtcdError as exc:
                errors.append(str(exc))
                continue
            kvs = data.get("kvs") or []
            return unb64(kvs[0]["value"]) if kvs else None
        raise EtcdError("; ".join(errors))

    def hashkv(self, node: str, revision: int) -> tuple[int, int]:
        """(hash of the MVCC keyspace up to `revision`, compact revision) as `node` sees it."""
        data = self.call(node, "/v3/maintenance/hashkv", {"revision": revision}, timeout=5.0)
        return int(data.get("hash", 0)), int(data.get("compact_revision", 0))

    def range_prefix(self, prefix: str, *, node: str | None = None) -> dict[str, str]:
        """Every key under `prefix` with its value (a linearizable read)."""
        return {k: v for k, (v, _) in self.range_prefix_revisions(prefix, node=node).items()}

    def range_prefix_revisions(
        self, prefix: str, *, node: str | None = None
    ) -> dict[str, tuple[str, int]]:
        """Every key under `prefix` with its value and mod revision (a linearizable read)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        errors: list[str] = []
        for candidate in [node] if node else self.nodes:
            try:
                data = self.call(
                    candidate,
                    "/v3/kv/range",
                    {"key": b64(prefix), "range_end": b64(end)},
                    timeout=5.0,
                )
            except EtcdError as exc:
                errors.append(str(exc))
                continue
            return {
                unb64(kv["key"]): (unb64(kv.get("value", "")), int(kv.get("mod_revision", 0)))
                for kv in data.get("kvs") or []
            }
        raise EtcdError("; ".join(errors))

    def member_names(self, node: str | None = None) -> dict[str, str]:
        """member id -> member name, as the cluster's membership says."""
        for candidate in [node] if node else self.nodes:
            try:
                data = self.call(candidate, "/v3/cluster/member/list", {})
            except EtcdError:
                continue
            return {str(m.get("ID")): str(m.get("name", "")) for m in data.get("members", [])}
        raise EtcdError("no member answered member/list")
