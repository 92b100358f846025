"""The Lease's own record of a takeover: the new holder writes `acquireTime` (a MicroTime, on
its own clock) when it takes the Lease."""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client as k8s

from kubedrill.server_record.record import ServerRecord, parse_time


def lease_acquired(
    api: k8s.ApiClient, name: str, holder: str, namespace: str = "kube-system"
) -> ServerRecord | None:
    """When `holder` acquired Lease `name`; None when the Lease is unreadable or another
    holder has it by now (its acquireTime would be a later takeover's)."""
    try:
        lease: Any = k8s.CoordinationV1Api(api).read_namespaced_lease(
            name, namespace, _request_timeout=5, _preload_content=False
        )
        spec = json.loads(lease.data).get("spec", {})
    except Exception:  # any failure means: no record
        return None
    if spec.get("holderIdentity") != holder:
        return None
    wall = parse_time(str(spec.get("acquireTime", "")))
    if wall is None:
        return None
    return ServerRecord(wall, f"Lease {namespace}/{name} acquireTime by {holder}")
