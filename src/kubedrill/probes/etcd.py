"""Talk to etcd members through their gRPC-JSON gateway (HTTPS, client cert).

The gateway is part of every etcd server, so probes need no gRPC stack and see exactly what a
client sees. Each thread keeps one connection per member alive, and every call has a short
timeout: an isolated or paused member must not stall a poll.

A leader view is decided as soon as a quorum of answers agrees: a paused or cut-off member
would otherwise hold every poll round for its whole timeout (measured: a paused leader's
election was reported 1.5 s late). A member's request still in flight is not sent again; the
next round takes its answer when it arrives.
"""

from __future__ import annotations

import base64
import json
import select
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from kubedrill.cluster import EtcdAccess
from kubedrill.faults.shape import quorum
from kubedrill.probes.http11 import Connection


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def prefix_end(prefix: str) -> str:
    """The range end that makes a range over exactly the keys under `prefix` (etcd's
    `--prefix`: the prefix with its last character incremented)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


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
    """The leader as the cluster sees it: the id that a quorum of all members reports.

    `statuses` holds this round's answers (None: no answer, or none yet); `pending` names the
    members whose answer had not arrived when a quorum had already decided."""

    leader: str | None  # node name
    # etcd's status `raftTerm` is the term of the member's last *applied* entry: a new leader is
    # named at once, its term only once its first entry is applied (a few ms later, more on a
    # busy machine). `etcd_checks.new_leader` waits for both: a leader that has committed.
    term: int
    statuses: Mapping[str, MemberStatus | None]
    pending: frozenset[str] = field(default_factory=frozenset)

    @property
    def reachable(self) -> int:
        return sum(1 for s in self.statuses.values() if s is not None)


# How long a leader view waits for the rest once a quorum has answered without agreeing.
QUORUM_GRACE = 0.05


STATUS_PATH = "/v3/maintenance/status"


def member_status(node: str, data: Mapping[str, Any]) -> MemberStatus:
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


def _status_of(node: str, status: int, raw: bytes) -> MemberStatus | None:
    """A status answer, or None when it is an error (as `call` would raise)."""
    try:
        data: dict[str, Any] = json.loads(raw)
    except ValueError:
        return None
    if status != 200 or "error" in data or data.get("code"):
        return None
    return member_status(node, data)


class EtcdError(Exception):
    """An etcd request failed (connection, timeout, or an error answer)."""


class _Round:
    """One leader-view round's requests: sent from the calling thread, read as they arrive."""

    def __init__(self, client: EtcdClient, order: list[str]) -> None:
        self.client = client
        self.statuses: dict[str, MemberStatus | None] = {node: None for node in order}
        self.answered: set[str] = set()
        self.active: dict[str, Connection] = {}
        self.connecting: dict[str, Future[None]] = {}
        self.retried: set[str] = set()

    @property
    def busy(self) -> bool:
        return bool(self.active or self.connecting)

    def settle(self, node: str, status: MemberStatus | None) -> None:
        self.statuses[node] = status
        self.answered.add(node)
        self.client._last_ok[node] = status is not None
        self.active.pop(node, None)
        self.connecting.pop(node, None)

    def ask(self, nodes: Iterable[str]) -> None:
        for node in nodes:
            found = self.client._probe_connection(node)
            if isinstance(found, Connection):
                self._send(node, found)
            else:  # a TLS handshake in the pool (it would block on a paused member)
                self.connecting[node] = found

    def _send(self, node: str, conn: Connection) -> None:
        if conn.awaiting is None:  # else an earlier round's request: its answer folds in
            reused = conn.served > 0
            try:
                conn.start(STATUS_PATH, b"{}", time.monotonic())
            except OSError:
                self.failed(node, reused)
                return
        self.connecting.pop(node, None)
        self.active[node] = conn

    def failed(self, node: str, reused: bool) -> None:
        """A kept-alive connection the member closed meanwhile (it restarted: a reset, an EOF)
        gets one fresh connection in this round; anything else is no answer."""
        self.active.pop(node, None)
        if reused and node not in self.retried:
            self.retried.add(node)
            self.ask([node])
        else:
            self.settle(node, None)

    def progress(self, now: float) -> None:
        """Connections made since: their requests go out; requests unanswered for the
        client's timeout (counted from when they were sent) fail."""
        for node, future in list(self.connecting.items()):
            if future.done():
                found = self.client._probe_connection(node)
                if isinstance(found, Connection):
                    self._send(node, found)
                else:
                    self.settle(node, None)  # the connect failed; the next round tries again
        for node, conn in list(self.active.items()):
            if conn.awaiting is not None and now - conn.awaiting > self.client.timeout:
                conn.close()
                self.settle(node, None)

    def read(self, timeout: float) -> None:
        if self.connecting:  # futures cannot be selected on: look again shortly
            timeout = min(timeout, 0.005)
        ready, _, _ = select.select(list(self.active.values()), [], [], timeout)
        for conn in ready:
            node = next(n for n, c in self.active.items() if c is conn)
            reused = conn.served > 0
            try:
                answer = conn.advance()
            except TimeoutError:
                self.settle(node, None)
                continue
            except OSError:
                self.failed(node, reused)
                continue
            if answer is not None:
                self.settle(node, _status_of(node, *answer))


class EtcdClient:
    def __init__(self, access: EtcdAccess, *, timeout: float = 1.0) -> None:
        self.access = access
        self.timeout = timeout
        self._local = threading.local()
        self._ssl: ssl.SSLContext | None = None
        # TLS handshakes of the leader view's connections (one may hang on a paused member).
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, 2 * len(access.endpoints)), thread_name_prefix="etcd-probe"
        )
        # member id -> node, from every answer so far: a quorum of followers naming a leader
        # that does not answer (paused, cut off) still names a node.
        self._member_nodes: dict[str, str] = {}
        self._last_ok: dict[str, bool] = {}  # did the member's last status call succeed

    def close(self) -> None:
        """Stop the pool and close the calling thread's connections (other threads' close
        with their sockets when those threads end)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for attribute in ("conns", "probe_conns"):
            for conn in getattr(self._local, attribute, {}).values():
                conn.close()

    @property
    def nodes(self) -> list[str]:
        return sorted(self.access.endpoints)

    def _connection(self, node: str) -> Connection:
        """This thread's kept-alive connection to `node` (see kubedrill.probes.http11: a
        probe round costs a fraction of the CPU requests or http.client would, and the runner
        shares 2 cores with the members it times). It reads no proxy or CA-bundle variables
        from the environment: lab traffic goes straight to the member, verified against the
        lab's own CA only."""
        connections: dict[str, Connection] = getattr(self._local, "conns", {})
        self._local.conns = connections
        if node not in connections:
            url = urlsplit(self.access.endpoints[node])
            context = self._tls_context() if url.scheme == "https" else None
            connections[node] = Connection(url.hostname or "", url.port or 2379, context)
        return connections[node]

    def session(self, node: str) -> requests.Session:
        """This thread's requests session to `node`, for streams (the watch workload reads
        /v3/watch line by line); calls go through `call`. TLS set up, never through a proxy."""
        sessions: dict[str, requests.Session] = getattr(self._local, "sessions", {})
        self._local.sessions = sessions
        if node not in sessions:
            session = requests.Session()
            session.trust_env = False  # no proxy or CA-bundle variables: the lab's CA only
            if self.access.tls is not None:
                session.verify = str(self.access.tls.ca)
                session.cert = (str(self.access.tls.cert), str(self.access.tls.key))
            sessions[node] = session
        return sessions[node]

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            tls = self.access.tls
            context = ssl.create_default_context(cafile=str(tls.ca) if tls else None)
            if tls is not None:
                context.load_cert_chain(str(tls.cert), str(tls.key))
            self._ssl = context
        return self._ssl

    def call(
        self, node: str, path: str, body: Mapping[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        payload = json.dumps(dict(body)).encode()
        wait_s = timeout or self.timeout
        connection = self._connection(node)
        for attempt in (1, 2):
            reused = connection.connected
            try:
                status, raw = connection.post(path, payload, wait_s)
                break
            except OSError as exc:
                # A kept-alive connection the member closed meanwhile (it restarted, say:
                # a reset, an EOF, a TLS alert): one fresh attempt. A timeout is not retried:
                # the member is slow, and a retry would double the wait.
                if attempt == 1 and reused and not isinstance(exc, TimeoutError):
                    continue
                raise EtcdError(f"{node}: {type(exc).__name__}") from exc
        try:
            data: dict[str, Any] = json.loads(raw)
        except ValueError as exc:
            raise EtcdError(f"{node}: HTTP {status} with no JSON") from exc
        if status != 200 or "error" in data or ("code" in data and data.get("code")):
            raise EtcdError(f"{node}: {data.get('message') or data.get('error') or status}")
        return data

    # -- cluster state ------------------------------------------------------------------------

    def status(self, node: str) -> MemberStatus:
        return member_status(node, self.call(node, STATUS_PATH, {}))

    def statuses(self) -> dict[str, MemberStatus | None]:
        """Every member's status (None: no answer within the timeout)."""
        return dict(self.leader_view(complete=True).statuses)

    def leader_view(self, *, complete: bool = False) -> LeaderView:
        """The quorum's leader, decided as soon as a quorum of answers agrees on one.

        A round asks a quorum first, the members that answered last time before the others
        (a third fewer requests on a 3-member cluster); the rest are asked when those have not
        agreed within `QUORUM_GRACE`. Once a quorum has answered without agreeing
        (mid-election), the rest get `QUORUM_GRACE` more, not their whole timeout: a paused
        member would otherwise hold every round of an election (measured: +0.35 s on a paused
        leader's figure). A request still unanswered is not sent again: the round that sees
        its answer arrive takes it. `complete` asks every member and waits for all, up to the
        timeout (health checks).

        The requests go out from the calling thread on kept-alive connections and are read as
        they arrive (select), with no thread hand-off: the runner shares 2 cores with the
        members it times, and a pool's hand-offs cost more CPU than the requests."""
        needed = quorum(len(self.access.endpoints))
        order = self._ask_order()
        rest = [] if complete else order[needed:]
        round_ = _Round(self, order)
        started = time.monotonic()
        deadline = started + self.timeout + 0.2
        widen_at = started + QUORUM_GRACE
        round_.ask(order if complete else order[:needed])
        view = LeaderView(None, 0, round_.statuses)
        while round_.busy or rest:
            now = time.monotonic()
            if rest and (not round_.busy or now >= widen_at):
                round_.ask(rest)
                rest = []
            round_.progress(now)
            until = min(deadline, widen_at) if rest else deadline
            if until <= now or not round_.busy:
                if rest:
                    continue
                break
            round_.read(until - now)
            view = self._decide(round_.statuses)
            if complete:
                continue
            if view.leader is not None:
                break
            if len(round_.answered) >= needed:
                deadline = min(deadline, time.monotonic() + QUORUM_GRACE)
        view = self._decide(round_.statuses)
        pending = frozenset(set(round_.statuses) - round_.answered)
        return LeaderView(view.leader, view.term, dict(round_.statuses), pending)

    def _probe_connection(self, node: str) -> Connection | Future[None]:
        """This thread's leader-view connection to `node`, or the future of its TLS handshake
        (made in the pool: a handshake with a paused member would block the caller). A failed
        handshake is forgotten once reported, so the next round tries again."""
        conns: dict[str, Connection] = getattr(self._local, "probe_conns", {})
        self._local.probe_conns = conns
        making: dict[str, Future[None]] = getattr(self._local, "connecting", {})
        self._local.connecting = making
        conn = conns.get(node)
        future = making.get(node)
        if future is not None and future.done():
            del making[node]
            if future.exception() is not None:
                return future
            future = None
        if conn is not None and conn.connected:
            return conn
        if future is None:
            url = urlsplit(self.access.endpoints[node])
            context = self._tls_context() if url.scheme == "https" else None
            conn = Connection(url.hostname or "", url.port or 2379, context)
            conns[node] = conn
            future = making[node] = self._pool.submit(conn.connect, self.timeout)
        return future

    def _ask_order(self) -> list[str]:
        """Members to ask first: not busy (an answer outstanding, or connecting), answered
        last time, by name."""
        conns: dict[str, Connection] = getattr(self._local, "probe_conns", {})
        making: dict[str, Future[None]] = getattr(self._local, "connecting", {})

        def busy(node: str) -> bool:
            conn = conns.get(node)
            return node in making or (conn is not None and conn.awaiting is not None)

        return sorted(self.nodes, key=lambda n: (busy(n), not self._last_ok.get(n, True), n))

    def _decide(self, statuses: Mapping[str, MemberStatus | None]) -> LeaderView:
        answers = [s for s in statuses.values() if s is not None]
        for status in answers:
            self._member_nodes[status.member_id] = status.node
        votes = Counter(s.leader_id for s in answers if s.leader_id not in ("", "0"))
        needed = quorum(len(self.access.endpoints))
        for leader_id, count in votes.most_common():
            if count >= needed and leader_id in self._member_nodes:
                term = max(s.raft_term for s in answers if s.leader_id == leader_id)
                return LeaderView(self._member_nodes[leader_id], term, statuses)
        term = max((s.raft_term for s in answers), default=0)
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
        end = prefix_end(prefix)
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
