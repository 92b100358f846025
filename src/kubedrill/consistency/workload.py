"""The consistency workload every drill runs by default, and the checks after heal.

Started before the drill's fault, it keeps clients working through it -- to etcd directly
(sequential keys, a compare-and-set register read and swapped by two clients, a watch) and,
when the target runs Kubernetes, through the API via the load balancer (ConfigMap creates and a
ConfigMap register swapped with resourceVersion) -- and records every operation. After heal,
`check()` turns the histories and the cluster's final state into verdicts.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from kubedrill.checks.etcd_data import hashkv_verdict
from kubedrill.checks.verdict import Verdict
from kubedrill.cluster import Cluster
from kubedrill.consistency import checks
from kubedrill.consistency.linearizability import check_linearizable
from kubedrill.disaster.backup import restored_writes_verdict
from kubedrill.disaster.recovery import (
    RestoreLoss,
    api_objects_verdict,
    loss_verdict,
    writes_lost_by_restore,
)
from kubedrill.errors import KubedrillError
from kubedrill.polling import poll_until
from kubedrill.probes.etcd import EtcdClient, EtcdError, b64, prefix_end
from kubedrill.timeline import Timeline
from kubedrill.workload.api_configmaps import (
    LABEL,
    ConfigMapCreator,
    ConfigMapRegister,
    api_session,
    configmap_body,
)
from kubedrill.workload.background import BackgroundClient
from kubedrill.workload.etcd_register import EtcdRegister
from kubedrill.workload.etcd_watch import EtcdWatcher
from kubedrill.workload.etcd_writer import EtcdWriter
from kubedrill.workload.history import Operation

NAMESPACE = "kubedrill-consistency"


@dataclass(frozen=True)
class WorkloadRates:
    """Seconds between one client's operations. The defaults keep the whole workload near
    60 requests a second: enough to see a failover, light enough for a 2-core lab."""

    etcd_writer: float = 0.1
    etcd_register: float = 0.1
    etcd_register_clients: int = 2
    api_creator: float = 0.25
    api_register: float = 0.2
    api_register_clients: int = 2
    max_duration: float = 600.0

    def scaled(self, factor: float) -> WorkloadRates:
        """Every client `factor` times as fast (intervals divided by it)."""
        if factor <= 0:
            raise ValueError(f"workload rate factor must be positive, got {factor}")
        return dataclasses.replace(
            self,
            etcd_writer=self.etcd_writer / factor,
            etcd_register=self.etcd_register / factor,
            api_creator=self.api_creator / factor,
            api_register=self.api_register / factor,
        )


def run_id(drill_name: str) -> str:
    """A DNS-1123 name unique to this drill run (ConfigMap names and etcd prefixes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", drill_name.lower()).strip("-")[:30].strip("-")
    return f"kd-{slug or 'drill'}-{int(time.time() * 1000) % 10**9}"


@dataclass
class ConsistencyWorkload:
    cluster: Cluster
    timeline: Timeline
    etcd: EtcdClient
    run: str
    rates: WorkloadRates = field(default_factory=WorkloadRates)
    name: str = "consistency"  # as a drill's recorder (kubedrill.checks.Recorder)
    started: bool = False
    stopped: bool = False
    seed_ops: list[Operation] = field(default_factory=list)
    etcd_clients: list[BackgroundClient] = field(default_factory=list)
    api_clients: list[BackgroundClient] = field(default_factory=list)
    watcher: EtcdWatcher | None = None
    start_revision: int = 0
    notes: list[str] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)  # attachment name -> HTML
    # Set by a disaster drill that restored etcd from a snapshot at this revision: the checks
    # then expect exactly the writes after it to be gone (`restore_loss`, the RPO).
    restored_from: int | None = None
    restore_loss: RestoreLoss | None = None
    api_lost: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"/kubedrill/consistency/{self.run}/"

    @property
    def register_key(self) -> str:
        return self.prefix + "register"

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Seed the registers and start every client; a cluster that cannot take the seed
        writes gets no workload, and the checks report unknown with the reason."""
        try:
            self._start_etcd()
        except EtcdError as exc:
            self.notes.append(f"etcd workload not started: {exc}")
            return
        if self.cluster.kube is not None:
            try:
                self._start_api()
            except (requests.RequestException, RuntimeError) as exc:
                self.notes.append(f"API workload not started: {exc}")
        self.started = True

    def _seed(self, client: str, key: str, value: str, write: Callable[[], int]) -> int:
        invoke = self.timeline.now()
        revision = write()
        self.seed_ops.append(
            Operation(client, "put", key, value, invoke, self.timeline.now(), "ok", revision)
        )
        return revision

    def _start_etcd(self) -> None:
        seeded = self._seed(
            "seed",
            self.register_key,
            "init",
            lambda: self.etcd.put(self.register_key, "init", timeout=2.0),
        )
        self.start_revision = seeded
        self.watcher = EtcdWatcher(
            client=self.etcd,
            prefix=self.prefix,
            timeline=self.timeline,
            start_revision=seeded,
            max_duration=self.rates.max_duration,
            name="etcd-watch",
        ).start()
        common: dict[str, Any] = {
            "timeline": self.timeline,
            "max_duration": self.rates.max_duration,
        }
        self.etcd_clients.append(
            EtcdWriter(
                client=self.etcd,
                prefix=self.prefix + "kv",
                interval=self.rates.etcd_writer,
                name="etcd-kv",
                **common,
            )
        )
        for i in range(self.rates.etcd_register_clients):
            self.etcd_clients.append(
                EtcdRegister(
                    client=self.etcd,
                    key=self.register_key,
                    interval=self.rates.etcd_register,
                    name=f"etcd-cas-{i + 1}",
                    **common,
                )
            )
        for c in self.etcd_clients:
            c.start()

    def _start_api(self) -> None:
        access = self.cluster.kube
        assert access is not None
        session = api_session(access)
        try:
            ns = session.post(
                f"{access.server}/api/v1/namespaces",
                json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                timeout=5,
            )
            if ns.status_code not in (201, 409):
                raise RuntimeError(f"creating namespace {NAMESPACE}: HTTP {ns.status_code}")
            register = f"{self.run}-register"
            url = f"{access.server}/api/v1/namespaces/{NAMESPACE}/configmaps"

            def create() -> int:
                resp = session.post(url, json=configmap_body(register, "init", self.run), timeout=5)
                if resp.status_code != 201:
                    raise RuntimeError(f"creating ConfigMap {register}: HTTP {resp.status_code}")
                return int(resp.json()["metadata"]["resourceVersion"])

            self._seed("api-seed", register, "init", create)
        finally:
            session.close()
        common: dict[str, Any] = {
            "timeline": self.timeline,
            "max_duration": self.rates.max_duration,
            "access": access,
            "namespace": NAMESPACE,
            "run": self.run,
        }
        self.api_clients.append(
            ConfigMapCreator(interval=self.rates.api_creator, name="api-create", **common)
        )
        for i in range(self.rates.api_register_clients):
            self.api_clients.append(
                ConfigMapRegister(
                    register=register,
                    interval=self.rates.api_register,
                    name=f"api-cas-{i + 1}",
                    **common,
                )
            )
        for c in self.api_clients:
            c.start()

    def stop(self) -> None:
        """Stop the clients, then give the watch a moment to deliver the last writes.
        Idempotent: a drill stops its recorders again on the way out."""
        if self.stopped:
            return
        self.stopped = True
        for c in [*self.etcd_clients, *self.api_clients]:
            c.stop()
        if self.watcher is not None:
            last = max(
                (op.revision for op in self.etcd_ops() if checks.is_applied_write(op)), default=0
            )
            watcher = self.watcher
            poll_until(watcher.last_revision, lambda r: r >= last, timeout=10, interval=0.1)
            watcher.stop()
        self.timeline.mark("workload.stopped")

    # -- histories ------------------------------------------------------------------------------

    def etcd_ops(self) -> list[Operation]:
        seeds = [op for op in self.seed_ops if op.client == "seed"]
        return seeds + [op for c in self.etcd_clients for op in c.history()]

    def api_ops(self) -> list[Operation]:
        seeds = [op for op in self.seed_ops if op.client == "api-seed"]
        return seeds + [op for c in self.api_clients for op in c.history()]

    def operations(self) -> list[Operation]:
        return self.etcd_ops() + self.api_ops()

    # -- checks ---------------------------------------------------------------------------------

    def check(self) -> list[Verdict]:
        """Every verdict, in a fixed order. Call after stop(), with the cluster healed."""
        if not self.started:
            reason = "; ".join(self.notes) or "workload not started"
            return [checks.verdict("workload", "unknown", reason)]
        verdicts = self._etcd_verdicts()
        if self.api_clients:
            verdicts += self._api_verdicts()
        return verdicts

    def _etcd_verdicts(self) -> list[Verdict]:
        ops = self.etcd_ops()
        kv = [op for op in ops if op.client == "etcd-kv"]
        register = [op for op in ops if op.key == self.register_key]
        out: list[Verdict] = []
        try:
            stored = self.etcd.range_prefix_revisions(self.prefix)
        except EtcdError as exc:
            stored = None
            out.append(checks.verdict("etcd: acknowledged writes stored", "unknown", str(exc)))
        if stored is not None and self.restored_from is not None:
            out += self._restore_verdicts(ops, stored, self.restored_from)
        elif stored is not None:
            values = {k: v for k, (v, _) in stored.items()}
            out.append(
                checks.acknowledged_writes_present("etcd: acknowledged writes stored", kv, values)
            )
        out.append(checks.revisions_never_backwards("etcd: revisions never went backwards", ops))
        out.append(hashkv_verdict(self.etcd))
        if self.watcher is not None and stored is not None:
            events, resumes, errors = self.watcher.history()
            out.append(
                checks.watch_complete(
                    "etcd: watch saw every change once",
                    events,
                    resumes,
                    errors,
                    start_revision=self.start_revision,
                    stored=stored,
                    acknowledged=ops,
                )
            )
        out.append(
            linearizable("etcd: register and keys linearizable", register + kv, self.evidence)
        )
        return out

    def _restore_verdicts(
        self, ops: list[Operation], stored: dict[str, tuple[str, int]], revision: int
    ) -> list[Verdict]:
        """After a restore: every write acknowledged up to the snapshot is there, and the
        writes acknowledged after it are gone, each one listed."""
        self.restore_loss = writes_lost_by_restore(ops, stored, revision)
        return [
            restored_writes_verdict(
                ops, stored, revision, check="etcd: acknowledged writes up to the snapshot restored"
            ),
            loss_verdict("etcd: writes after the snapshot lost (RPO)", self.restore_loss),
        ]

    def _api_verdicts(self) -> list[Verdict]:
        ops = self.api_ops()
        created = [op for op in ops if op.client == "api-create"]
        register = [op for op in ops if op.client != "api-create"]
        out: list[Verdict] = []
        try:
            stored = self.list_configmaps()
            if self.restored_from is not None:
                found, self.api_lost = api_objects_verdict(
                    "api: ConfigMaps up to the snapshot restored",
                    created,
                    stored,
                    self.restored_from,
                )
                out.append(found)
            else:
                out.append(
                    checks.acknowledged_writes_present(
                        "api: acknowledged ConfigMaps stored", created, stored
                    )
                )
        except (requests.RequestException, RuntimeError) as exc:
            out.append(checks.verdict("api: acknowledged ConfigMaps stored", "unknown", str(exc)))
        out.append(
            checks.revisions_never_backwards(
                "api: resourceVersions never went backwards", ops, per_key=True
            )
        )
        out.append(linearizable("api: ConfigMap register linearizable", register, self.evidence))
        return out

    def list_configmaps(self) -> dict[str, str]:
        access = self.cluster.kube
        assert access is not None
        session = api_session(access)
        try:
            resp = poll_until(
                lambda: _list(session, access.server, self.run),
                lambda r: r is not None,
                timeout=20,
                interval=0.5,
            )[0]
        finally:
            session.close()
        if resp is None:
            raise RuntimeError("could not list the workload's ConfigMaps through the LB")
        return resp

    def unavailability(self) -> dict[str, dict[str, float | int]]:
        return checks.unavailability_by_client(
            [op for op in self.operations() if not op.client.endswith("seed")]
        )

    def cleanup(self) -> None:
        """Remove what the workload wrote (best effort: the drill's verdicts are already in)."""
        if self.cluster.kube is not None and self.api_clients:
            access = self.cluster.kube
            session = api_session(access)
            try:
                session.delete(
                    f"{access.server}/api/v1/namespaces/{NAMESPACE}/configmaps",
                    params={"labelSelector": f"{LABEL}={self.run}"},
                    timeout=10,
                )
            except requests.RequestException as exc:
                self.notes.append(f"cleanup: {type(exc).__name__}")
            finally:
                session.close()
        try:
            end = prefix_end(self.prefix)
            self.etcd.call(
                self.etcd.nodes[0],
                "/v3/kv/deleterange",
                {"key": b64(self.prefix), "range_end": b64(end)},
                timeout=5,
            )
        except EtcdError as exc:
            self.notes.append(f"cleanup: {exc}")

    def summary(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "operations": {
                c.name: len(c.history()) for c in [*self.etcd_clients, *self.api_clients]
            },
            "watch_events": len(self.watcher.history()[0]) if self.watcher else 0,
            "notes": self.notes,
        }


def _list(session: requests.Session, server: str, run: str) -> dict[str, str] | None:
    try:
        resp = session.get(
            f"{server}/api/v1/namespaces/{NAMESPACE}/configmaps",
            params={"labelSelector": f"{LABEL}={run}"},
            timeout=5,
        )
    except requests.RequestException:
        return None
    if resp.status_code != 200:
        return None
    return {
        item["metadata"]["name"]: str((item.get("data") or {}).get("v", ""))
        for item in resp.json().get("items", [])
    }


def linearizable(name: str, ops: list[Operation], evidence: dict[str, str]) -> Verdict:
    """Porcupine's verdict; when invalid, its HTML visualization goes into `evidence` (run a
    second time only then: drawing every history would cost more than checking it)."""
    try:
        verdict = dataclasses.replace(check_linearizable(ops), check=name)
        if verdict.status == "invalid":
            with tempfile.TemporaryDirectory(prefix="kubedrill-lincheck-") as tmp:
                viz = Path(tmp) / "history.html"
                check_linearizable(ops, viz_path=viz)
                if viz.exists():
                    evidence[f"{name} (porcupine)"] = viz.read_text()
        return verdict
    except KubedrillError as exc:  # no Go to build the checker, or an uninterpretable op
        return checks.verdict(name, "unknown", f"linearizability not checked: {exc}")
