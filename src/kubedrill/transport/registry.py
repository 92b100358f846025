"""Recreate a transport from its spec (the ledger stores specs, not live objects)."""

from __future__ import annotations

from kubedrill.errors import LedgerError
from kubedrill.transport.base import Transport, TransportSpec
from kubedrill.transport.local import LocalTransport, NetnsTransport


def transport_for(spec: TransportSpec) -> Transport:
    if spec.kind == "local":
        return LocalTransport(spec.node)
    if spec.kind == "netns":
        return NetnsTransport(spec.node, spec.params["netns"])
    if spec.kind == "docker":
        from kubedrill.transport.container import ContainerTransport  # noqa: PLC0415 (docker SDK only for kind)

        return ContainerTransport.from_spec(spec)
    if spec.kind == "container-netns":
        from kubedrill.transport.container import ContainerNetnsTransport  # noqa: PLC0415

        return ContainerNetnsTransport.from_spec(spec)
    if spec.kind == "ssh":
        from kubedrill.transport.ssh import SshTransport  # noqa: PLC0415 - paramiko only for SSH

        return SshTransport(spec)
    raise LedgerError(
        f"no transport of kind {spec.kind!r} for node {spec.node}",
        "this kubedrill does not know that target kind; upgrade kubedrill or heal by hand",
    )
