"""Faults: what breaks, on which node, and exactly how to undo it."""

from kubedrill.faults.base import Fault, FaultPlan
from kubedrill.faults.host import CrashHost
from kubedrill.faults.network import Isolate, NetemDelay, Partition
from kubedrill.faults.node import Drain
from kubedrill.faults.node_container import KillNode, PauseNode, StopNode
from kubedrill.faults.process import KillComponent, PauseComponent, StopComponent
from kubedrill.faults.shape import Selector
from kubedrill.faults.zone import ZoneOutage
from kubedrill.transport.step import Step

__all__ = [
    "CrashHost",
    "Drain",
    "Fault",
    "FaultPlan",
    "Isolate",
    "KillComponent",
    "KillNode",
    "NetemDelay",
    "Partition",
    "PauseComponent",
    "PauseNode",
    "Selector",
    "Step",
    "StopComponent",
    "StopNode",
    "ZoneOutage",
]
