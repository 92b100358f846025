"""`kubedrill ssh check`: log in to every host, verify host keys, discover what runs where."""

from __future__ import annotations

from dataclasses import dataclass

from kubedrill.cluster import COMPONENT_ROLE
from kubedrill.errors import FaultError
from kubedrill.targets.ssh.cluster import node_of, preflight
from kubedrill.targets.ssh.control import SshControl, describe
from kubedrill.targets.ssh.inventory import Inventory


@dataclass(frozen=True)
class Row:
    host: str
    address: str
    hostname: str
    component: str
    how: str
    ok: bool


def check(inventory: Inventory) -> list[Row]:
    """Raises TargetError when a host cannot be reached; a component that cannot be found is
    a row with ok=False (and the reason)."""
    facts = {f.name: f.hostname for f in preflight(inventory)}
    control = SshControl({h.name: h.manager for h in inventory.hosts})
    rows: list[Row] = []
    for entry in inventory.hosts:
        node = node_of(entry)
        where = entry.settings.target.where
        missing: list[Row] = []
        for component, role in COMPONENT_ROLE.items():
            if role not in entry.roles:
                continue
            try:
                how = describe(control.manager(node, component))
            except FaultError as exc:
                if component not in OPTIONAL:
                    missing.append(
                        Row(entry.name, where, facts[entry.name], component, exc.message, False)
                    )
                continue
            rows.append(Row(entry.name, where, facts[entry.name], component, how, True))
        found = {r.component for r in rows if r.host == entry.name}
        # Of a group of alternatives (the LB's proxy) one found is enough.
        rows += [
            r for r in missing if not any(r.component in g and found & set(g) for g in ALTERNATIVES)
        ]
    return rows


# Components a host of their role may well not run: kwok (only the lab simulates its workers
# with it) and keepalived (only beside an LB pair's proxy).
OPTIONAL = frozenset({"kwok", "keepalived"})
# An LB host runs one proxy or the other.
ALTERNATIVES = (("haproxy", "nginx"),)


def render(rows: list[Row]) -> str:
    lines = [f"{'host':12s} {'login':28s} {'hostname':12s} {'component':24s} how it runs"]
    for r in rows:
        mark = "" if r.ok else "NOT FOUND: "
        lines.append(
            f"{r.host:12s} {r.address:28s} {r.hostname:12s} {r.component:24s} {mark}{r.how}"
        )
    return "\n".join(lines)
