"""What the linearizability check costs, run on demand (`python benchmarks/lincheck.py`).

Histories of the shape a drill records: one writer putting sequential keys once each, three
clients alternating a read and a compare-and-set of one register, one more reader of the
register; a fault window in the middle where some operations fail or time out (maybe applied).
They are simulated from an atomic register, so every one is linearizable: the figures are the
cost of proving it, the common case. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kubedrill.consistency import check_linearizable
from kubedrill.consistency.lincheck_build import ensure_lincheck
from kubedrill.workload.history import Operation

REGISTER = "/drill/register"


@dataclass
class Planned:
    """An operation whose timing is fixed; its result is filled in at its linearization point."""

    client: str
    kind: str
    key: str
    invoke: float
    point: float  # when it takes effect, inside [invoke, complete]
    complete: float
    outcome: str
    applies: bool  # for a write that failed or timed out: whether it took effect all the same
    value: str = ""
    expected: str = ""
    applied: bool = True


def plan_client(
    rng: random.Random, name: str, kinds: list[str], count: int, fault: tuple[float, float]
) -> list[Planned]:
    """`count` back-to-back operations, cycling through `kinds`, 2-10 ms apart, 1-8 ms each;
    in the fault window 30% fail or time out (1 s), and half of those timed out still apply."""
    ops: list[Planned] = []
    now = rng.uniform(0, 0.01)
    for seq in range(count):
        kind = kinds[seq % len(kinds)]
        latency = rng.uniform(0.001, 0.008)
        outcome, applies = "ok", True
        if fault[0] <= now <= fault[1] and rng.random() < 0.3:
            outcome = rng.choice(["fail", "unknown"])
            applies = outcome == "unknown" and rng.random() < 0.5
            latency = 1.0 if outcome == "unknown" else latency  # a timed-out attempt
        key = f"/drill/seq/{seq:08d}" if kind == "put" else REGISTER
        point = now + rng.uniform(0, latency)
        ops.append(Planned(name, kind, key, now, point, now + latency, outcome, applies))
        ops[-1].value = f"{name}-{seq}" if kind != "get" else ""
        now += latency + rng.uniform(0.002, 0.01)
    return ops


def simulate(total: int, fault_share: float = 0.1, seed: int = 7) -> list[Operation]:
    """A linearizable history of about `total` operations from an atomic key-value store;
    `fault_share` of the run, in the middle, is a fault window."""
    rng = random.Random(seed)
    share = total // 5
    duration = share * 0.01  # roughly how long each client runs
    fault = (duration * (0.5 - fault_share / 2), duration * (0.5 + fault_share / 2))
    planned = plan_client(rng, "writer", ["put"], share * 2, fault)
    for name in ("cas1", "cas2", "cas3"):
        planned += plan_client(rng, name, ["get", "cas"], share * 2 // 3, fault)
    planned += plan_client(rng, "reader", ["get"], total - len(planned), fault)
    store: dict[str, str] = {REGISTER: "init"}
    last_read: dict[str, str] = {}
    for op in sorted(planned, key=lambda o: o.point):
        if op.kind == "put" and op.applies:
            store[op.key] = op.value
        elif op.kind == "get":
            op.value = store.get(op.key, "")
            last_read[op.client] = op.value
        elif op.kind == "cas":
            op.expected = last_read.get(op.client, "init")
            op.applied = op.applies and store.get(op.key) == op.expected
            if op.applied:
                store[op.key] = op.value
    initial = Operation("setup", "put", REGISTER, "init", -1.0, -0.5, "ok")
    return [initial] + [
        Operation(
            o.client, o.kind, o.key, o.value, o.invoke, o.complete, o.outcome,
            expected=o.expected, applied=o.applied,
        )
        for o in sorted(planned, key=lambda o: o.invoke)
    ]  # fmt: skip


def peak_child_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--fault-shares", default="0.1,1.0", help="share of the run inside the fault window"
    )
    parser.add_argument("--viz", action="store_true", help="also time writing the visualization")
    args = parser.parse_args()
    started = time.monotonic()
    ensure_lincheck()
    print(f"helper ready in {time.monotonic() - started:.3f} s (cached build: near zero)")
    results = []
    shares = [float(s) for s in args.fault_shares.split(",")]
    for size, fault_share in ((int(s), f) for s in args.sizes.split(",") for f in shares):
        ops = simulate(size, fault_share)
        maybe = sum(1 for o in ops if not o.ok and o.kind != "get")
        walls, checker = [], []
        verdict = None
        for _ in range(args.runs):
            t0 = time.monotonic()
            verdict = check_linearizable(ops, timeout=60)
            walls.append(time.monotonic() - t0)
            checker.append(float(verdict.figures.get("checker_seconds", 0.0)))
        assert verdict is not None
        row = {
            "recorded": len(ops),
            "fault_share": fault_share,
            "checked": verdict.figures.get("ops"),
            "maybe_applied": maybe,
            "status": verdict.status,
            "keys": verdict.figures.get("keys_checked"),
            "wall_s_min": round(min(walls), 3),
            "checker_s_min": round(min(checker), 3),
            "peak_helper_rss_mib": round(peak_child_rss_mib(), 1),
        }
        if args.viz:
            with tempfile.TemporaryDirectory() as tmp:
                viz = Path(tmp) / "history.html"
                t0 = time.monotonic()
                check_linearizable(ops, timeout=60, viz_path=viz)
                row["with_viz_s"] = round(time.monotonic() - t0, 3)
                row["viz_mib"] = round(viz.stat().st_size / 2**20, 2)
        results.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
