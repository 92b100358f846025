"""kubedrill: failure drills for Kubernetes high-availability control planes."""

__version__ = "0.1.0"
