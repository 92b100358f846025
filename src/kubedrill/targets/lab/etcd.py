"""etcd member command lines for the lab, with the seed's flags (section 3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kubedrill.targets.lab.config import EtcdSettings
from kubedrill.targets.lab.network import HostPlan


def initial_cluster(members: Sequence[HostPlan], peer_port: int) -> str:
    return ",".join(f"{m.name}=https://{m.address}:{peer_port}" for m in members)


def etcd_argv(
    binary: Path,
    member: HostPlan,
    members: Sequence[HostPlan],
    settings: EtcdSettings,
    data_dir: Path,
    pki: Path,
    cluster_token: str,
) -> tuple[str, ...]:
    ip = member.address
    s = settings
    return (
        str(binary),
        f"--name={member.name}",
        f"--data-dir={data_dir}",
        f"--listen-peer-urls=https://{ip}:{s.peer_port}",
        f"--listen-client-urls=https://{ip}:{s.client_port},https://127.0.0.1:{s.client_port}",
        f"--advertise-client-urls=https://{ip}:{s.client_port}",
        f"--initial-advertise-peer-urls=https://{ip}:{s.peer_port}",
        f"--initial-cluster={initial_cluster(members, s.peer_port)}",
        "--initial-cluster-state=new",
        f"--initial-cluster-token={cluster_token}",
        "--client-cert-auth=true",
        "--peer-client-cert-auth=true",
        f"--cert-file={pki / (member.name + '-server.crt')}",
        f"--key-file={pki / (member.name + '-server.key')}",
        f"--trusted-ca-file={pki / 'ca.crt'}",
        f"--peer-cert-file={pki / (member.name + '-peer.crt')}",
        f"--peer-key-file={pki / (member.name + '-peer.key')}",
        f"--peer-trusted-ca-file={pki / 'ca.crt'}",
        f"--quota-backend-bytes={s.quota_backend_bytes}",
        f"--max-request-bytes={s.max_request_bytes}",
        f"--heartbeat-interval={s.heartbeat_interval_ms}",
        f"--election-timeout={s.election_timeout_ms}",
        f"--snapshot-count={s.snapshot_count}",
        f"--auto-compaction-retention={s.auto_compaction_retention}",
        f"--max-txn-ops={s.max_txn_ops}",
        f"--listen-metrics-urls=http://{ip}:{s.metrics_port}",
        "--logger=zap",
        "--log-outputs=stderr",
        *s.extra_flags,
    )


def etcd_env(member: HostPlan, settings: EtcdSettings) -> dict[str, str]:
    """The member's environment: with failpoints, gofail's HTTP endpoint on the member's own
    address only (in its namespace), never on a wildcard."""
    if not settings.failpoints:
        return {}
    return {"GOFAIL_HTTP": f"{member.address}:{settings.failpoints_port}"}


def failpoint_url(address: str, settings: EtcdSettings) -> str:
    return f"http://{address}:{settings.failpoints_port}"


def start_after(members: Sequence[HostPlan], index: int, peer_port: int) -> tuple[str, ...]:
    """What member `index` waits for before its first start: the previous member serving its
    peer port (nothing, for the first).

    A member bootstrapping a new cluster first asks every other member, one after the other
    with a 1 s timeout each, whether it was bootstrapped already (etcd's isMemberBootstrapped).
    A peer that has bound its listener but does not serve it yet (it is asking too) answers
    nothing, so members started together waited up to 1 s per peer: 4 s for 5 members, 6 s for 7.
    Started one after the other, each once the previous serves, every peer it asks either serves
    or refuses at once."""
    if index == 0:
        return ()
    return (f"tls://{members[index - 1].address}:{peer_port}",)
