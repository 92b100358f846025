"""Scrape Prometheus text metrics from the control plane, keeping only the series that matter.

A target is one component on one node (etcd member, kube-apiserver, controller-manager,
scheduler), labelled like Prometheus labels a scrape: `job`, `instance` (host:port) and here also
`node`. Only an allowlist of series is kept, and labels that do not matter for the alert rules
are summed away (an apiserver exposes ~16,000 lines; the rules need a few hundred). Only the
kept lines are found (`str.find`) and parsed (one regex each), which keeps a scrape cheap.

Controller-manager and scheduler serve /metrics on their secure ports with delegated
authentication: kubedrill's admin client certificate is accepted there. Their serving
certificate is self-signed by the process itself (no --tls-cert-file), so it cannot be verified
against any CA kubedrill has; the address is the lab's own. Where /metrics answers 401/403 the
target falls back to /healthz (always allowed) for that round and only a synthetic `up` is
recorded.
"""

from __future__ import annotations

import functools
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import InsecureRequestWarning

from kubedrill.cluster import Cluster, KubeAccess

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
SeriesKey = tuple[str, Labels]  # (metric name, labels)

APISERVER_PORT = 6443
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259

# metric sample name -> the labels kept; every other label is summed away.
ETCD_SERIES: Mapping[str, tuple[str, ...]] = {
    "etcd_server_has_leader": (),
    "etcd_server_is_leader": (),
    "etcd_server_leader_changes_seen_total": (),
    "etcd_server_proposals_failed_total": (),
    "etcd_disk_backend_commit_duration_seconds_bucket": ("le",),
    "etcd_disk_backend_commit_duration_seconds_sum": (),
    "etcd_disk_backend_commit_duration_seconds_count": (),
    # The WAL fsync histogram (EtcdWALFsyncSlow/VerySlow; the slow-disk drill).
    "etcd_disk_wal_fsync_duration_seconds_bucket": ("le",),
    "etcd_network_peer_round_trip_time_seconds_bucket": ("To", "le"),
    "process_start_time_seconds": (),
    # The backend quota and the database's size (EtcdBackendQuotaLowSpace; the quota drill).
    "etcd_server_quota_backend_bytes": (),
    "etcd_mvcc_db_total_size_in_bytes": (),
}
APISERVER_SERIES: Mapping[str, tuple[str, ...]] = {
    "apiserver_request_total": ("code",),
    "apiserver_request_duration_seconds_bucket": ("verb", "le"),
    "apiserver_request_duration_seconds_sum": ("verb",),
    "apiserver_request_duration_seconds_count": ("verb",),
    "process_start_time_seconds": (),
}
# ~2,000 bucket lines per apiserver: parsing them costs ~150 ms of CPU, so every few rounds.
APISERVER_HEAVY = frozenset({"apiserver_request_duration_seconds_bucket"})
# The controller-manager's and scheduler's rules read `up` only.
NOTHING_BUT_UP: Mapping[str, tuple[str, ...]] = {}
CONTROL_PLANE_EVERY = 2
# Short requests only: long-running verbs would make any latency quantile meaningless.
DURATION_VERBS = frozenset({"GET", "LIST", "POST", "PUT", "PATCH", "DELETE"})


def series_key(name: str, labels: Mapping[str, str]) -> SeriesKey:
    return name, tuple(sorted(labels.items()))


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    node: str
    instance: str  # host:port, as Prometheus names it
    url: str
    keep: Mapping[str, tuple[str, ...]]
    verify: str | bool = True  # CA file, or False for a self-signed serving cert
    cert: tuple[str, str] | None = None
    health_url: str | None = None  # used when /metrics refuses kubedrill's credentials
    # Series that are expensive to parse (thousands of lines), kept only every few rounds.
    heavy: frozenset[str] = frozenset()
    # Scraped every `every`-th round (staggered across targets): a missed round is a missing
    # sample, as with a longer scrape interval, never a vanished series.
    every: int = 1

    @property
    def labels(self) -> dict[str, str]:
        return {"job": self.job, "instance": self.instance, "node": self.node}


@dataclass(frozen=True)
class ScrapeResult:
    target: ScrapeTarget
    ok: bool
    samples: Mapping[SeriesKey, float]  # with the target's labels added
    seconds: float  # wall time of the request and parse
    cpu_seconds: float  # CPU time of the scraping thread
    mode: Literal["metrics", "health", "api"] = "metrics"
    error: str | None = None
    skipped: frozenset[str] = frozenset()  # metric names not collected in this round


def sample_lines(text: str, names: Iterable[str]) -> Iterator[str]:
    """The sample lines of metrics `names`, found with `str.find` instead of splitting the
    whole exposition into lines: an apiserver's is ~2 MB and ~14,000 lines, of which a few
    hundred are kept. A name counts at the start of a line and followed by `{` or a space
    (so `# HELP name` and `name_other` are not it)."""
    for name in names:
        size = len(name)
        pos = text.find(name)
        while pos != -1:
            end = text.find("\n", pos)
            end = len(text) if end == -1 else end
            if (pos == 0 or text[pos - 1] == "\n") and text[pos + size : pos + size + 1] in (
                "{",
                " ",
            ):
                yield text[pos:end]
            pos = text.find(name, end)


def filter_text(text: str, keep: Mapping[str, tuple[str, ...]]) -> str:
    """Only the sample lines of allowed metrics (comments dropped: names are all we need)."""
    return "".join(line + "\n" for line in sample_lines(text, keep))


# name="value"; the value "unrolled" (runs of plain characters, then one escape) is several
# times faster in `re` than an alternation tried at every character.
_LABEL = re.compile(r'([a-zA-Z_]\w*)="([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return re.sub(r"\\.", lambda m: _ESCAPES.get(m.group(0), m.group(0)), value)


def parse_line(line: str, name: str) -> tuple[dict[str, str], float]:
    """(labels, value) of one sample line of metric `name` in the text format, label values
    still escaped (`unescape` the few that are kept). A regex and `float` instead of
    prometheus_client's character-by-character parser: ~10 times less CPU for an apiserver's
    2,000 histogram buckets. Raises ValueError on a malformed line."""
    rest = line[len(name) :]
    labels: dict[str, str] = {}
    if rest.startswith("{"):
        close = rest.rfind("}")  # a label value may contain '}', never after the last one
        if close == -1:
            raise ValueError(f"unterminated labels: {line[:120]}")
        labels = dict(_LABEL.findall(rest, 1, close))  # values still escaped
        rest = rest[close + 1 :]
    fields = rest.split()  # value, and an optional timestamp
    if not fields:
        raise ValueError(f"no value: {line[:120]}")
    return labels, float(fields[0])


def parse_samples(text: str, keep: Mapping[str, tuple[str, ...]]) -> dict[SeriesKey, float]:
    """Allowed samples, summed over the labels that are not kept."""
    out: dict[SeriesKey, float] = {}
    for name, kept in keep.items():
        duration = name.startswith("apiserver_request_duration")
        for line in sample_lines(text, (name,)):
            labels, value = parse_line(line, name)
            if duration and labels.get("verb") not in DURATION_VERBS:
                continue  # (no verb is spelt with an escape)
            key = series_key(name, {k: unescape(v) for k, v in labels.items() if k in kept})
            out[key] = out.get(key, 0.0) + value
    return out


def with_target_labels(
    samples: Mapping[SeriesKey, float], target: ScrapeTarget
) -> dict[SeriesKey, float]:
    return {
        series_key(name, {**dict(labels), **target.labels}): value
        for (name, labels), value in samples.items()
    }


def quiet_unverified(url: str) -> None:
    """Silence urllib3's "Unverified HTTPS request" warning for this one host, which kubedrill
    scrapes without verification on purpose (a component that signs its own serving cert).
    A filter added once, for that host only: `warnings.catch_warnings()` around each request
    is not thread-safe (scrapes run in a pool), and it let the warning leak to the console."""
    host = urlsplit(url).hostname or ""
    warnings.filterwarnings(
        "ignore",
        message=rf"Unverified HTTPS request is being made to host '{re.escape(host)}'",
        category=InsecureRequestWarning,
    )


class Scraper:
    """Scrapes every target concurrently with a short timeout; never raises for a target."""

    def __init__(
        self,
        targets: Sequence[ScrapeTarget],
        *,
        timeout: float = 0.8,
        nodes: NodeConditions | None = None,
        tls: PseudoTarget | None = None,
        heavy_every: int = 5,
        scrape_timeout: float = 10.0,
    ) -> None:
        self.targets = list(targets)
        for target in self.targets:
            if target.verify is False:
                quiet_unverified(target.url)
        self.heavy_every = max(1, heavy_every)
        self.rounds = 0
        self.timeout = timeout
        self.nodes = nodes
        self.tls = tls
        self._sessions: dict[str, requests.Session] = {}
        self._inflight: dict[str, Future[ScrapeResult]] = {}  # scrapes still running
        self._since: dict[str, float] = {}  # when each of those started
        self.scrape_timeout = scrape_timeout
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, min(32, len(self.targets) + 1)), thread_name_prefix="metrics"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for session in self._sessions.values():
            session.close()
        if self.nodes is not None:
            self.nodes.close()
        if self.tls is not None:
            self.tls.close()

    def _session(self, target: ScrapeTarget) -> requests.Session:
        # One session per target, kept across rounds so that its TLS connection is reused; a
        # round waits for all its scrapes, so only one thread at a time uses a target's session.
        sessions = self._sessions
        if target.url not in sessions:
            session = requests.Session()
            session.trust_env = False  # no proxy, no CA bundle from the environment
            # Uncompressed: on the lab's links gzip only costs CPU at both ends.
            session.headers["Accept-Encoding"] = "identity"
            session.verify = target.verify
            if target.cert is not None:
                session.cert = target.cert
            sessions[target.url] = session
        return sessions[target.url]

    def _get(self, target: ScrapeTarget, url: str) -> requests.Response:
        if not target.keep and url == target.url:
            # Nothing to keep but `up`: HEAD runs the same handler (authorization
            # included) and sends no body (a controller-manager's is 120-250 KB).
            return self._session(target).head(url, timeout=self.timeout)
        return self._session(target).get(url, timeout=self.timeout)

    def scrape(self, target: ScrapeTarget, *, heavy: bool = True) -> ScrapeResult:
        started, cpu = time.perf_counter(), time.thread_time()
        keep = target.keep
        skipped = frozenset() if heavy else target.heavy
        if skipped:
            keep = {name: labels for name, labels in keep.items() if name not in skipped}

        def result(ok: bool, samples: Mapping[SeriesKey, float], **kw: Any) -> ScrapeResult:
            return ScrapeResult(
                target,
                ok,
                samples,
                time.perf_counter() - started,
                time.thread_time() - cpu,
                **kw,
            )

        try:
            resp = self._get(target, target.url)
            if resp.status_code in (401, 403) and target.health_url:
                # Not for good: delegated authorization fails for a while when the component's
                # apiserver is down, and then the process itself is still up.
                resp = self._get(target, target.health_url)
                return result(resp.status_code == 200, {}, mode="health")
            if resp.status_code != 200:
                return result(False, {}, error=f"HTTP {resp.status_code}")
            samples = with_target_labels(parse_samples(resp.text, keep), target)
            return result(True, samples, skipped=skipped)
        except (requests.RequestException, ValueError) as exc:
            return result(False, {}, error=type(exc).__name__)

    def scrape_all(self, deadline: float | None = None) -> list[ScrapeResult]:
        """One round; heavy series only every `heavy_every` rounds (the first included).

        With a `deadline` (seconds) the round returns then, with what has answered: one slow
        apiserver must not leave every other target unsampled. A target still busy has no
        sample this round; its late answer is returned by the next round (a target is never
        asked twice at once: its session is not shared). A target busy for longer than
        `scrape_timeout` counts as a failed scrape (up=0) every round until it answers, as with
        Prometheus' scrape timeout."""
        heavy = self.rounds % self.heavy_every == 0
        this_round = self.rounds
        self.rounds += 1
        now = time.perf_counter()
        jobs: list[tuple[str, ScrapeTarget, Callable[[], ScrapeResult], bool]] = [
            (
                t.url,
                t,
                functools.partial(self.scrape, t, heavy=heavy),
                (this_round + i) % t.every == 0,
            )
            for i, t in enumerate(self.targets)
        ]
        if self.nodes is not None:
            jobs.append(("nodes", self.nodes.target, self.nodes.scrape, True))
        if self.tls is not None:
            jobs.append(("tls", self.tls.target, self.tls.scrape, True))
        results: list[ScrapeResult] = []
        fresh: list[tuple[str, Future[ScrapeResult]]] = []
        for key, target, fn, due in jobs:
            busy = self._inflight.get(key)
            if busy is not None and busy.done():
                results.append(busy.result())  # a late answer to an earlier round
                del self._inflight[key]
            elif busy is None and not due:
                continue
            elif busy is not None:
                waited = now - self._since[key]
                if waited > self.scrape_timeout:
                    results.append(ScrapeResult(target, False, {}, waited, 0.0, error="timeout"))
            else:
                future = self._pool.submit(fn)
                self._inflight[key], self._since[key] = future, now
                fresh.append((key, future))
        wait([f for _, f in fresh], timeout=deadline)
        for key, future in fresh:
            if future.done():
                results.append(future.result())
                del self._inflight[key]
        return results


class PseudoTarget(Protocol):
    """A target kubedrill computes itself instead of scraping (the Nodes' conditions, the
    served certificates' expiry)."""

    target: ScrapeTarget

    def scrape(self) -> ScrapeResult: ...

    def close(self) -> None: ...


class NodeConditions:
    """`kube_node_status_condition` as kube-state-metrics would expose it, read from the Node
    objects (the lab runs no kube-state-metrics): one series per node, condition and status,
    1 for the current status and 0 for the others."""

    STATUSES = ("true", "false", "unknown")
    target = ScrapeTarget(
        job="kube-state-metrics", node="kubedrill", instance="kubedrill", url="", keep={}
    )

    def __init__(self, access: KubeAccess, timeout: float = 1.0) -> None:
        from kubernetes import client as k8s  # noqa: PLC0415 - only clusters with Kubernetes

        from kubedrill.probes.kube import api_client, read_json  # noqa: PLC0415

        self.timeout = timeout
        self._api = api_client(access)
        self._core = k8s.CoreV1Api(self._api)
        self._read_json = read_json

    def close(self) -> None:
        self._api.close()

    def scrape(self) -> ScrapeResult:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            # Plain JSON (see read_json): model objects for every Node cost ~10 ms a round.
            nodes = self._read_json(self._core.list_node, timeout=self.timeout).get("items") or []
        except Exception as exc:  # any API failure is a failed scrape, like KSM's own up
            return ScrapeResult(
                self.target,
                False,
                {},
                time.perf_counter() - started,
                time.thread_time() - cpu,
                mode="api",
                error=type(exc).__name__,
            )
        samples: dict[SeriesKey, float] = {}
        for node in nodes:
            name = str(node.get("metadata", {}).get("name", ""))
            for cond in (node.get("status") or {}).get("conditions") or []:
                status = str(cond.get("status")).lower()
                for candidate in self.STATUSES:
                    labels = {
                        "node": name,
                        "condition": str(cond.get("type")),
                        "status": candidate,
                        "job": self.target.job,
                        "instance": self.target.instance,
                    }
                    value = 1.0 if candidate == status else 0.0
                    samples[series_key("kube_node_status_condition", labels)] = value
        return ScrapeResult(
            self.target,
            True,
            samples,
            time.perf_counter() - started,
            time.thread_time() - cpu,
            mode="api",
        )


@dataclass(frozen=True)
class Ports:
    """The components' secure ports (kubeadm's defaults)."""

    apiserver: int = APISERVER_PORT
    controller_manager: int = CONTROLLER_MANAGER_PORT
    scheduler: int = SCHEDULER_PORT


def targets_for(cluster: Cluster, ports: Ports | None = None) -> list[ScrapeTarget]:
    """Every etcd member's metrics URL and, with Kubernetes, each control-plane host's
    apiserver, controller-manager and scheduler (those the node runs)."""
    ports = ports or Ports()
    targets: list[ScrapeTarget] = []
    tls = cluster.etcd.tls
    for node_name, url in sorted(cluster.etcd.metrics_urls.items()):
        https = url.startswith("https://") and tls is not None
        targets.append(
            ScrapeTarget(
                job="etcd",
                node=node_name,
                instance=url.split("//", 1)[1].split("/", 1)[0],
                url=url,
                keep=ETCD_SERIES,
                verify=str(tls.ca) if https and tls else True,
                cert=(str(tls.cert), str(tls.key)) if https and tls else None,
            )
        )
    kube = cluster.kube
    if kube is None:
        return targets
    cert = (str(kube.cert), str(kube.key))
    for node in cluster.with_role("control-plane"):
        running = set(cluster.control.components(node))
        jobs: list[tuple[str, str, int, Mapping[str, tuple[str, ...]]]] = [
            ("apiserver", "kube-apiserver", ports.apiserver, APISERVER_SERIES),
            (
                "kube-controller-manager",
                "kube-controller-manager",
                ports.controller_manager,
                NOTHING_BUT_UP,
            ),
            ("kube-scheduler", "kube-scheduler", ports.scheduler, NOTHING_BUT_UP),
        ]
        for job, component, port, keep in jobs:
            if component not in running:
                continue
            base = f"https://{node.address}:{port}"
            targets.append(
                ScrapeTarget(
                    job=job,
                    node=node.name,
                    instance=f"{node.address}:{port}",
                    url=f"{base}/metrics",
                    keep=keep,
                    # The apiserver's serving cert is from the cluster CA; the others' too
                    # when the target says so (the lab), else they sign their own.
                    verify=str(kube.ca)
                    if job == "apiserver"
                    else (str(kube.component_ca) if kube.component_ca else False),
                    cert=cert,
                    health_url=f"{base}/healthz",
                    heavy=APISERVER_HEAVY if job == "apiserver" else frozenset(),
                    # Every other round (4 s with Kubernetes; Prometheus' default is 1 min):
                    # an apiserver's 2 MB exposition costs ~15 ms of CPU to read, and these
                    # rules wait minutes. etcd stays at every round (the leader cross-check).
                    every=CONTROL_PLANE_EVERY,
                )
            )
    return targets


def scraper_for(
    cluster: Cluster, *, timeout: float = 0.8, node_conditions: bool = True, tls: bool = True
) -> Scraper:
    from kubedrill.probes.served import ServedCertProbe  # noqa: PLC0415 - it imports this module

    nodes = NodeConditions(cluster.kube) if node_conditions and cluster.kube else None
    certs = ServedCertProbe(cluster, timeout=timeout) if tls else None
    return Scraper(targets_for(cluster), timeout=timeout, nodes=nodes, tls=certs)
