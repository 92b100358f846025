"""Planned maintenance drills: rolling restarts (and upgrades) one host at a time, with every
request a client saw fail during them accounted for."""
