"""A complete lab state (lab.json) for unit tests: the file is validated when read."""

from __future__ import annotations

from typing import Any


def state(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "lab",
        "topology": "etcd",
        "subnet": "10.213.7.0/24",
        "bridge": "kd-lab",
        "gateway": "10.213.7.1",
        "binaries": {"etcd": "/bin/etcd"},
        "versions": {"etcd": "v3.6.16"},
        "delay_method": "nfqueue",
        "hosts": [
            {"name": "etcd-1", "roles": ["etcd"], "address": "10.213.7.11", "netns": "kd-lab-e1"}
        ],
        "etcd": {
            "endpoints": {"etcd-1": "https://10.213.7.11:2379"},
            "metrics": {"etcd-1": "http://10.213.7.11:2381/metrics"},
            "failpoints": {},
            "peer_port": 2380,
            "client_port": 2379,
            "tls": {"ca": "ca.crt", "cert": "c.crt", "key": "c.key"},
            "election_timeout_ms": 1000,
            "heartbeat_interval_ms": 100,
        },
    }
    base.update(changes)
    return base
