"""The cluster's own record of a moment a drill measured from outside: etcd's "became leader"
log line, a Lease's acquireTime, the load balancer's state-change log. Next to a polled
figure it says how late the poll saw the event (see kubedrill.server_record.compare)."""
