"""The embedded lab: a real HA control plane in Linux network namespaces on one machine."""
