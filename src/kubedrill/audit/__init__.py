"""`kubedrill audit`: a read-only readiness audit of a cluster against the seed's production
checklist, before a game day. Every item gathers evidence through the target's own transports
and APIs, judges it with a pure function (unit-tested without a cluster), and says pass, warn
or fail with the evidence and the fix. Nothing is injected and nothing is written to the
cluster.

One module per item family: `topology` (control-plane nodes, failure domains, etcd members),
`etcd_flags`, `lb`, `certs`, `backup`, `alert_rules`, `leader_election`, `clock`; `run` runs
them, `output` renders the table, JSON and Allure results.
"""
