"""What this machine's kernel can do for faults, probed without changing anything of the host.

Lab hosts and kind node containers share the kernel kubedrill runs on, so one probe answers for
both: a netem qdisc is tried on the loopback of a throwaway network namespace (`unshare -n`),
which vanishes with the probe.
"""

from __future__ import annotations

import functools
import subprocess


@functools.cache
def netem_available() -> bool:
    """Whether the kernel has sch_netem (tc's delay qdisc)."""
    probe = "ip link set lo up && tc qdisc add dev lo root netem delay 1ms"
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", probe], capture_output=True, check=False, timeout=20
    )
    return done.returncode == 0


def local_delay_method() -> str:
    """'netem' where the kernel has it, else 'nfqueue' (kubedrill's userspace delayer)."""
    return "netem" if netem_available() else "nfqueue"
