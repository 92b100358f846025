"""A watch opened before the fault, kept through it, resumed like a real client resumes.

It watches a prefix through one member's gRPC-JSON gateway (a newline-delimited stream). When
the stream breaks or stays silent longer than `silence_timeout` while writes are flowing (an
isolated or paused member sends nothing), it resumes on the next member from the revision after
the last one it saw -- what clientv3 does. Every event and every resume is recorded, so the
check afterwards can tell gaps and duplicates from a correct resume.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import requests

from kubedrill.probes.etcd import EtcdClient, b64, prefix_end, unb64
from kubedrill.timeline import Timeline


@dataclass(frozen=True)
class WatchEvent:
    key: str
    value: str
    mod_revision: int
    kind: str  # "PUT" | "DELETE"
    at: float  # when it arrived, on the drill's timeline
    member: str


@dataclass(frozen=True)
class Resume:
    at: float
    member: str
    from_revision: int
    reason: str


@dataclass
class EtcdWatcher:
    client: EtcdClient
    prefix: str
    timeline: Timeline
    start_revision: int
    silence_timeout: float = 3.0
    max_duration: float = 300.0
    name: str = "watch"
    events: list[WatchEvent] = field(default_factory=list)
    resumes: list[Resume] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # "workload/<client>": runner_cpu counts these threads as the workload's, not as
        # measuring (a client named "etcd-watch" must not pass for a drill's "watch-" poller).
        self._thread = threading.Thread(target=self._run, name=f"workload/{self.name}", daemon=True)

    def start(self) -> EtcdWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop recording at once. A read blocked on a silent stream cannot be interrupted
        portably, so the thread is not waited for: it sees the flag and exits by itself within
        `silence_timeout`, recording nothing more."""
        with self._lock:
            self._stop.set()
        # Not response.close(): it blocks on the reader's lock until the read returns anyway.
        self._thread.join(timeout=0.2)

    def history(self) -> tuple[list[WatchEvent], list[Resume], list[str]]:
        with self._lock:
            return list(self.events), list(self.resumes), list(self.errors)

    def last_revision(self) -> int:
        with self._lock:
            return self.events[-1].mod_revision if self.events else self.start_revision - 1

    def _run(self) -> None:
        started = self.timeline.now()
        members = self.client.nodes
        attempt = 0
        reason = "opened"
        while not self._stop.is_set() and self.timeline.now() - started < self.max_duration:
            member = members[attempt % len(members)]
            attempt += 1
            from_revision = self.last_revision() + 1
            with self._lock:
                self.resumes.append(Resume(self.timeline.now(), member, from_revision, reason))
            try:
                self._stream(member, from_revision)
                reason = "stream ended"
            except (requests.RequestException, ValueError, OSError) as exc:
                reason = type(exc).__name__
                if not self._stop.is_set():
                    with self._lock:
                        self.errors.append(f"{member}: {reason}")
            self._stop.wait(0.1)

    def _stream(self, member: str, from_revision: int) -> None:
        end = prefix_end(self.prefix)
        body = {
            "create_request": {
                "key": b64(self.prefix),
                "range_end": b64(end),
                "start_revision": from_revision,
            }
        }
        session = self.client.session(member)
        url = self.client.access.endpoints[member] + "/v3/watch"
        with session.post(
            url, json=body, stream=True, timeout=(1.0, self.silence_timeout)
        ) as response:
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    continue
                result = json.loads(line).get("result", {})
                if result.get("canceled") or result.get("compact_revision"):
                    raise ValueError(
                        f"watch canceled: {result.get('cancel_reason', '')} "
                        f"compact_revision={result.get('compact_revision', 0)}"
                    )
                arrived = self.timeline.now()
                batch = [
                    WatchEvent(
                        key=unb64(ev["kv"]["key"]),
                        value=unb64(ev["kv"].get("value", "")),
                        mod_revision=int(ev["kv"].get("mod_revision", 0)),
                        kind=str(ev.get("type", "PUT")),
                        at=arrived,
                        member=member,
                    )
                    for ev in result.get("events") or []
                ]
                if batch:
                    with self._lock:
                        if self._stop.is_set():
                            return
                        self.events.extend(batch)
