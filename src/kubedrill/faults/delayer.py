"""Userspace packet delay through NFQUEUE, for kernels built without sch_netem.

Some kernels (this project's CI machines among them) ship no netem qdisc. iptables hands the
peer-port packets to queue N; this process holds each one for the delay and then accepts it, in
order, so existing TCP connections are delayed exactly as with netem. The iptables rules use
--queue-bypass: if this process dies, packets flow undelayed instead of being blackholed.

`python -m kubedrill.faults.delayer --queue 2380 --delay-ms 200 --max-seconds 600`
It stops by itself after --max-seconds, releasing every held packet.
"""

from __future__ import annotations

import argparse
import collections
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from netfilterqueue import NetfilterQueue


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kubedrill.faults.delayer")
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--ready-file", help="created once the queue is bound")
    args = parser.parse_args(argv)
    delay = args.delay_ms / 1000.0
    held: collections.deque[tuple[float, Any]] = collections.deque()
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Started from a heal-protected section, we may have inherited handlers or a mask: reset.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def hold(packet: Any) -> None:
        held.append((time.monotonic() + delay, packet))

    nfq = NetfilterQueue()
    nfq.bind(args.queue, hold, max_len=65536)
    sock = socket.fromfd(nfq.get_fd(), socket.AF_NETLINK, socket.SOCK_RAW)
    if args.ready_file:
        Path(args.ready_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + args.max_seconds
    try:
        while not stopping and time.monotonic() < deadline:
            now = time.monotonic()
            while held and held[0][0] <= now:
                held.popleft()[1].accept()
            wait = min(0.05, max(0.0, held[0][0] - now)) if held else 0.05
            readable, _, _ = select.select([sock], [], [], wait)
            if readable:
                nfq.run(block=False)
    finally:
        while held:
            held.popleft()[1].accept()
        nfq.unbind()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
