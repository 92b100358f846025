"""Checks of recorded client histories: what the clients saw must be consistent."""

from kubedrill.checks.verdict import Verdict
from kubedrill.consistency.linearizability import check_linearizable

__all__ = ["Verdict", "check_linearizable"]
