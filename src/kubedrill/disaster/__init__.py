"""etcd's data under fire (issue #13): backups taken, checked and restored while the cluster
works, an exhausted quota and its recovery runbook, a member's lost disk replaced (and the wrong
way round caught). Each module holds the logic (how to cause it, how to recover, how to judge
it); the drills stay thin."""
