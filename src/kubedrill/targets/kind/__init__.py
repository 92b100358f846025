"""The kind target: a kind cluster's node containers, reached through the Docker API."""
