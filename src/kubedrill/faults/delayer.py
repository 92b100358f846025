"""Userspace packet delay through NFQUEUE, for kernels built without sch_netem.

Some kernels (this project's CI machines among them) ship no netem qdisc, nor fq (so no
earliest-departure-time pacing from BPF either). iptables hands the packets to queue N; this
process holds each one for the delay and then accepts it, in order, so existing TCP connections
are delayed as with netem. The iptables rules use --queue-bypass: if this process dies, packets
flow undelayed instead of being blackholed.

`python -m kubedrill.faults.delayer --queue 2380 --delay-ms 200 --max-seconds 600`
`python -m kubedrill.faults.delayer --queue 7 --link 10.0.0.12/32=25:5 --link 10.0.0.13/32=50`
(per-destination one-way delay and jitter, in ms: the WAN links between regions; loss is
dropped in the kernel by the iptables rules before the queue, so it costs this process nothing).
It stops by itself after --max-seconds (0: never), releasing every held packet.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from netfilterqueue import NetfilterQueue

from kubedrill.errors import ConfigError
from kubedrill.faults.delay_schedule import LinkDelay, Schedule, destination

IDLE_WAIT_S = 0.05


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kubedrill.faults.delayer")
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=None, help="for every packet")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--link", action="append", default=[], help="CIDR=DELAY_MS[:JITTER_MS]")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--ready-file", help="created once the queue is bound")
    args = parser.parse_args(argv)
    try:
        links = [LinkDelay.parse(text) for text in args.link]
        default = (
            LinkDelay.parse(f"0.0.0.0/0={args.delay_ms}:{args.jitter_ms}")
            if args.delay_ms is not None
            else None
        )
    except ConfigError as exc:
        print(f"kubedrill.faults.delayer: error: {exc}", file=sys.stderr)
        return 2
    if not links and default is None:
        print("kubedrill.faults.delayer: error: give --delay-ms or --link", file=sys.stderr)
        return 2
    schedule: Schedule[Any] = Schedule(links, default)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Started from a heal-protected section, we may have inherited handlers or a mask: reset.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def hold(packet: Any) -> None:
        # Only the IPv4 header's destination is read: copying the payload costs the same
        # whatever its length, and the links are chosen by address.
        schedule.hold(packet, destination(packet.get_payload()[:20]), time.monotonic())

    nfq = NetfilterQueue()
    nfq.bind(args.queue, hold, max_len=65536)
    sock = socket.fromfd(nfq.get_fd(), socket.AF_NETLINK, socket.SOCK_RAW)
    if args.ready_file:
        Path(args.ready_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + args.max_seconds if args.max_seconds > 0 else float("inf")
    try:
        while not stopping and time.monotonic() < deadline:
            now = time.monotonic()
            for packet in schedule.due(now):
                packet.accept()
            nxt = schedule.next_release()
            wait = IDLE_WAIT_S if nxt is None else min(IDLE_WAIT_S, max(0.0, nxt - now))
            readable, _, _ = select.select([sock], [], [], wait)
            if readable:
                nfq.run(block=False)
    finally:
        for packet in schedule.drain():
            packet.accept()
        nfq.unbind()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
