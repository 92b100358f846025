"""Checks of recorded client histories: what the clients saw must be consistent."""

from kubedrill.consistency.linearizability import check_linearizable
from kubedrill.consistency.verdict import Verdict

__all__ = ["Verdict", "check_linearizable"]
