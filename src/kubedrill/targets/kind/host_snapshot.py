"""`python -m kubedrill.targets.kind.host_snapshot save|check FILE`: what a kind tier must leave
as it found it, taken before `kind up` and compared after `kind down` (make test-kind).

The snapshot holds every sysctl (counters left out), the engine's containers, networks and
volumes, the host's network links, and the iptables rules of the host's own namespace. `check`
prints every difference and exits 1 when anything was left behind or changed, so CI fails on a
leftover instead of letting the next run inherit it (what went away meanwhile is only noted).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kubedrill.targets.kind.host import snapshot_diff, sysctl_snapshot


def _lines(argv: list[str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return sorted(line.strip() for line in done.stdout.splitlines() if line.strip())


def snapshot() -> dict[str, object]:
    return {
        "sysctl": sysctl_snapshot(),
        "containers": _lines(["podman", "ps", "-a", "--format", "{{.Names}}"]),
        "networks": _lines(["podman", "network", "ls", "--format", "{{.Name}}"]),
        "volumes": _lines(["podman", "volume", "ls", "--format", "{{.Name}}"]),
        "links": _lines(["sh", "-c", "ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1"]),
        "iptables": _lines(["sh", "-c", "iptables -w -S; iptables -w -t nat -S"]),
    }


def _device_key(key: str, devices: set[str]) -> bool:
    """A per-interface sysctl (net.ipv4.conf.veth3.forwarding) of a link that came or went:
    the link itself is reported, not its hundred settings."""
    parts = key.split(".")
    return len(parts) > 3 and parts[0] == "net" and parts[3] in devices


def differences(before: dict[str, object], after: dict[str, object]) -> tuple[list[str], list[str]]:
    """(left behind or changed: failures, gone since the snapshot: notes)."""
    left: list[str] = []
    gone: list[str] = []
    for kind in ("containers", "networks", "volumes", "links", "iptables"):
        old, new = set(before[kind]), set(after[kind])  # type: ignore[call-overload]
        left += [f"{kind}: left behind: {item}" for item in sorted(new - old)]
        gone += [f"{kind}: gone: {item}" for item in sorted(old - new)]
    devices = set(before["links"]) ^ set(after["links"])  # type: ignore[call-overload]
    sys_before, sys_after = before["sysctl"], after["sysctl"]
    assert isinstance(sys_before, dict) and isinstance(sys_after, dict)
    left += [
        f"sysctl {line}"
        for line in snapshot_diff(sys_before, sys_after)
        if not _device_key(line.split(":", 1)[0], devices)
    ]
    return left, gone


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("save", "check"):
        print("usage: python -m kubedrill.targets.kind.host_snapshot save|check FILE")
        return 2
    path = Path(argv[1])
    if argv[0] == "save":
        path.write_text(json.dumps(snapshot(), indent=1))
        return 0
    found, gone = differences(json.loads(path.read_text()), snapshot())
    for line in gone:  # not kubedrill's leftovers: something else ran down meanwhile
        print(f"note: {line}")
    for line in found:
        print(f"host differs after the kind tier: {line}")
    if not found:
        print("host as before the kind tier: no container, network, volume, link, rule or "
              "sysctl left changed")  # fmt: skip
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
