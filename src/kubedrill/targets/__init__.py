"""Targets: the lab (network namespaces on this machine), kind and SSH clusters."""
