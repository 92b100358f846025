"""Advice measured on the cluster itself: `kubedrill advise etcd` (etcd's time parameters)."""
