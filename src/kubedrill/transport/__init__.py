"""How commands reach a node: the root namespace, a lab network namespace, SSH or docker exec."""

from kubedrill.transport.base import CommandResult, Transport, TransportSpec
from kubedrill.transport.registry import transport_for

__all__ = ["CommandResult", "Transport", "TransportSpec", "transport_for"]
