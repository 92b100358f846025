"""How true and how costly the NFQUEUE delayer is as a WAN link (issue #15).

This kernel has no sch_netem and no fq (so no BPF earliest-departure-time pacing either): the
WAN between regions is kubedrill's userspace delayer. Two network namespaces on a veth pair
(`kd-wan3-a`, `kd-wan3-b`, subnet 10.213.103.0/24), each delaying what it sends to the other by
the one-way delay with jitter, and the iptables rule in front of the queue dropping the loss.
A UDP echo measures each round trip (sequence-numbered, so loss is counted exactly) while a
TCP stream adds steady background traffic at --tcp-pps packets per second, the kind etcd's
heartbeats, raft appends and the apiserver's watches make between regions. The delayers' CPU
is read from /proc (utime + stime) over the measured window.

    sudo .venv/bin/python benchmarks/wan_delayer.py --delays 0,25,50,75 --jitter-pct 10 --loss 1

Delay 0 is the baseline: the same echo with no delayer and no rule, so the machine's own noise
(other processes' load) is seen next to the delayer's. Prints per delay: configured vs
measured RTT (median, p99, stdev), loss configured vs measured, and the delayers' CPU (% of
one core, and microseconds per packet).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from kubedrill.faults.wan_shape import loss_rule, queue_rule
from kubedrill.polling import poll_until

NS_A, NS_B = "kd-wan3-a", "kd-wan3-b"
VETH_A, VETH_B = "kdv-wan3-a", "kdv-wan3-b"
ADDR_A, ADDR_B = "10.213.103.11", "10.213.103.12"
UDP_PORT, TCP_PORT = 7001, 7002
CHAIN = "KUBEDRILL-WANBENCH"
QUEUE = 61001
HERE = Path(__file__).resolve()


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def in_ns(ns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


@contextmanager
def namespaces() -> Iterator[None]:
    teardown()
    try:
        sh("ip", "netns", "add", NS_A)
        sh("ip", "netns", "add", NS_B)
        sh(
            "ip",
            "link",
            "add",
            VETH_A,
            "netns",
            NS_A,
            "type",
            "veth",
            "peer",
            VETH_B,
            "netns",
            NS_B,
        )
        for ns, dev, addr in ((NS_A, VETH_A, ADDR_A), (NS_B, VETH_B, ADDR_B)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield
    finally:
        teardown()


def teardown() -> None:
    for ns in (NS_A, NS_B):
        # Killing the namespace's processes first: a delayer left bound would outlive it.
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            sh("kill", pid, check=False)
        sh("ip", "netns", "del", ns, check=False)


@contextmanager
def wan(delay_ms: float, jitter_ms: float, loss_pct: float) -> Iterator[list[int]]:
    """Each side delays and drops what it sends to the other: the lab's WAN link, both ways."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for ns, peer in ((NS_A, ADDR_B), (NS_B, ADDR_A)):
            ready = Path(f"/run/kd-wan3-bench-{ns}.ready")
            ready.unlink(missing_ok=True)
            procs.append(
                subprocess.Popen(
                    in_ns(
                        ns,
                        sys.executable,
                        "-m",
                        "kubedrill.faults.delayer",
                        "--queue",
                        str(QUEUE),
                        "--link",
                        f"{peer}/32={delay_ms}:{jitter_ms}",
                        "--max-seconds",
                        "600",
                        "--ready-file",
                        str(ready),
                    )
                )
            )
            # 30 s: on a loaded machine (load average 60) Python's start alone took over 10 s.
            _, bound = poll_until(ready.exists, bool, timeout=30, interval=0.05)
            if not bound:
                raise RuntimeError("delayer did not bind its queue within 30 s")
            ready.unlink()
            ipt = in_ns(ns, "iptables", "-w")
            sh(*ipt, "-N", CHAIN)
            sh(*ipt, "-I", "OUTPUT", "1", "-j", CHAIN)
            sh(*ipt, "-I", "INPUT", "1", "-j", CHAIN)
            if loss_pct:
                sh(*ipt, *loss_rule(CHAIN, peer, loss_pct))
            sh(*ipt, *queue_rule(CHAIN, peer, QUEUE))
        yield [p.pid for p in procs]
    finally:
        for ns in (NS_A, NS_B):
            ipt = in_ns(ns, "iptables", "-w")
            sh(*ipt, "-D", "OUTPUT", "-j", CHAIN, check=False)
            sh(*ipt, "-D", "INPUT", "-j", CHAIN, check=False)
            sh(*ipt, "-F", CHAIN, check=False)
            sh(*ipt, "-X", CHAIN, check=False)
        for p in procs:
            p.terminate()
            p.wait(10)


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of the delayers (ip netns exec execs, so the pid is the delayer's)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def serve() -> None:
    """In namespace B: echo UDP probes, and swallow the TCP background stream."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((ADDR_B, UDP_PORT))
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((ADDR_B, TCP_PORT))
    tcp.listen()

    conns: list[socket.socket] = []
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([udp, tcp, *conns], [], [])
        for s in readable:
            if s is udp:
                data, peer = udp.recvfrom(64)
                udp.sendto(data, peer)
            elif s is tcp:
                conns.append(tcp.accept()[0])
            elif not s.recv(65536):
                conns.remove(s)


def probe(count: int, interval: float, tcp_pps: float) -> None:
    """In namespace A: `count` UDP probes `interval` apart, TCP writes at `tcp_pps` meanwhile;
    prints the RTTs (ms) of the answered probes and how many were sent, as JSON."""

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect((ADDR_B, UDP_PORT))
    tcp = socket.create_connection((ADDR_B, TCP_PORT))
    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent: dict[int, float] = {}
    rtts: list[float] = []
    start = time.monotonic()
    next_probe, next_tcp, seq = start, start, 0
    end = start + count * interval
    tail = end + 2.0  # answers to the last probes still in flight
    while time.monotonic() < tail:
        now = time.monotonic()
        if seq < count and now >= next_probe:
            sent[seq] = now
            udp.send(struct.pack("!Id", seq, now))
            seq += 1
            next_probe += interval
        if tcp_pps and now < end and now >= next_tcp:
            tcp.send(b"x" * 200)  # one small segment each: heartbeat- and append-sized
            next_tcp += 1.0 / tcp_pps
        wait = max(0.0, min(next_probe, next_tcp if tcp_pps else tail) - time.monotonic())
        readable, _, _ = select.select([udp], [], [], min(wait, 0.01))
        if readable:
            data = udp.recv(64)
            got, _ = struct.unpack("!Id", data)
            rtts.append((time.monotonic() - sent[got]) * 1000)
    print(json.dumps({"sent": count, "rtts": rtts}))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(delay: float, jitter: float, loss: float, args: argparse.Namespace) -> dict[str, float]:
    server = subprocess.Popen(
        in_ns(NS_B, sys.executable, str(HERE), "--serve"), stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        # Delay 0: no delayer, no rules: the baseline (the echo's own time on a loaded machine).
        shaped: AbstractContextManager[list[int]] = (
            wan(delay, jitter, loss) if delay else nullcontext([])
        )
        with shaped as pids:
            hz = os.sysconf("SC_CLK_TCK")
            t0, c0 = time.monotonic(), cpu_ticks(pids)
            out = sh(
                *in_ns(
                    NS_A,
                    sys.executable,
                    str(HERE),
                    "--probe",
                    str(args.probes),
                    str(args.interval),
                    str(args.tcp_pps),
                )
            ).stdout
            t1, c1 = time.monotonic(), cpu_ticks(pids)
    finally:
        server.terminate()
        server.wait(10)
    result = json.loads(out)
    rtts: list[float] = result["rtts"]
    seconds = t1 - t0
    cpu_s = (c1 - c0) / hz
    # Packets through the delayers: each probe twice, each TCP segment and its ACK (roughly).
    packets = 2 * result["sent"] + 2 * args.tcp_pps * args.probes * args.interval
    expected_loss = 100 * (1 - (1 - loss / 100) ** 2) if delay else 0.0
    return {
        "rtt_configured_ms": 2 * delay,
        "rtt_median_ms": statistics.median(rtts),
        "rtt_p99_ms": percentile(rtts, 0.99),
        "rtt_stdev_ms": statistics.pstdev(rtts),
        # Two independent uniform jitters (one per direction): stdev = jitter * sqrt(2/3).
        "stdev_expected_ms": jitter * (2 / 3) ** 0.5,
        "loss_configured_pct": expected_loss,
        "loss_measured_pct": 100 * (1 - len(rtts) / result["sent"]),
        "cpu_pct_one_core": 100 * cpu_s / seconds,
        "cpu_us_per_packet": 1e6 * cpu_s / packets if pids else 0.0,
        "packets_per_s": packets / seconds,
    }


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve()
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--probe":
        probe(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--delays", default="0,25,50,75", help="one-way ms, comma-separated (0: no delayer)"
    )
    parser.add_argument("--jitter-pct", type=float, default=10.0, help="of the delay")
    parser.add_argument("--loss", type=float, default=1.0, help="one-way %%")
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.02, help="s between probes")
    parser.add_argument("--tcp-pps", type=float, default=200.0, help="background segments/s")
    args = parser.parse_args()
    # SIGTERM unwinds like ^C, so the namespaces, rules and delayers are removed on the way out.
    signal.signal(signal.SIGTERM, lambda _s, _f: sys.exit(143))
    if os.geteuid() != 0:
        print("wan_delayer: error: needs root (network namespaces)", file=sys.stderr)
        return 2
    try:
        delays = [float(d) for d in args.delays.split(",")]
    except ValueError:
        print(f"wan_delayer: error: --delays {args.delays!r}: use e.g. 25,50,75", file=sys.stderr)
        return 2
    print(
        f"load average {os.getloadavg()[0]:.1f}; {args.probes} probes every "
        f"{args.interval * 1000:.0f} ms, TCP {args.tcp_pps:.0f} segments/s"
    )
    header = (
        "one-way",
        "jitter",
        "RTT cfg",
        "median",
        "p99",
        "stdev",
        "(exp)",
        "loss cfg",
        "meas",
        "CPU %",
        "us/pkt",
    )
    print(" | ".join(header))
    with namespaces():
        for delay in delays:
            jitter = delay * args.jitter_pct / 100
            r = measure(delay, jitter, args.loss, args)
            print(
                f"{delay:.0f} ms | ±{jitter:.1f} | {r['rtt_configured_ms']:.0f} | "
                f"{r['rtt_median_ms']:.1f} | {r['rtt_p99_ms']:.1f} | {r['rtt_stdev_ms']:.1f} | "
                f"({r['stdev_expected_ms']:.1f}) | {r['loss_configured_pct']:.2f} % | "
                f"{r['loss_measured_pct']:.2f} % | {r['cpu_pct_one_core']:.1f} | "
                f"{r['cpu_us_per_packet']:.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
