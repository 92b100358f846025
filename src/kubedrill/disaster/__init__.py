"""Disaster drills: backups taken, checked and restored while the cluster works (issue #13)."""
