"""The SSH target: a user's own cluster, its nodes reached with paramiko."""
