"""Checks a drill runs after heal, and the recorders that run through it.

Kept import-light on purpose (protocols and the verdict only): the consistency workload
imports `kubedrill.checks.etcd_data`, and `kubedrill.checks.consistency` imports the workload.

- `base`: the `Check` and `Recorder` protocols and the `CheckContext` a check runs with.
- `verdict`: `Verdict` (valid / invalid / unknown, figures, detail, attachments).
- `consistency`: the consistency workload's checks, as one check of several parts.
- `etcd_data`: etcd members agree (HashKV) and acknowledged writes are stored.
- `leader_crosscheck`: a measured leader change against etcd's own counters.
- `alerts` (+ `promtool_file`): which alert rules fired, judged by promtool.
"""

from kubedrill.checks.base import Check, CheckContext, HasAttachments, Recorder
from kubedrill.checks.verdict import Attachment, Status, Verdict, worst

__all__ = [
    "Attachment",
    "Check",
    "CheckContext",
    "HasAttachments",
    "Recorder",
    "Status",
    "Verdict",
    "worst",
]
