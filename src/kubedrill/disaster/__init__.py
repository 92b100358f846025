"""Disasters that are not a process or a network fault: a full disk, an exhausted quota.
Each module holds the logic (how to cause it, the recovery runbook); drills stay thin."""
