"""Project-wide pytest configuration. The kubedrill plugin itself is loaded through its entry
point (kubedrill.pytest_plugin); shared drill fixtures live in fixtures/."""

pytest_plugins = ["fixtures.etcd", "fixtures.kube"]
