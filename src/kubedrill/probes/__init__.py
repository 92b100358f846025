"""Probes: what the cluster looks like right now (leaders, readiness, writes)."""
