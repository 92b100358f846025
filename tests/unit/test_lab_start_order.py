"""etcd members of a new lab start one after the other, each once the previous one serves its
peer listener, and HAProxy once every apiserver is ready: the order is data (`start_after`,
`ComponentSpec.after`), the supervisor's gates are `serves_tls` and `answers_ok`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubedrill.targets.lab.etcd import start_after
from kubedrill.targets.lab.network import HostPlan
from kubedrill.targets.lab.supervisor import (
    Backoff,
    ComponentSpec,
    Supervisor,
    answers_ok,
    serves_tls,
)

MEMBERS = [
    HostPlan(f"etcd-{i}", f"10.213.70.{10 + i}", f"kd-x-etcd-{i}", f"kdv-x-{i}") for i in (1, 2, 3)
]


def test_each_member_waits_for_the_previous_peer_listener() -> None:
    assert [start_after(MEMBERS, i, 2380) for i in range(3)] == [
        (),
        ("tls://10.213.70.11:2380",),
        ("tls://10.213.70.12:2380",),
    ]


def test_the_gate_survives_the_components_file() -> None:
    spec = ComponentSpec(
        "lb", "haproxy", "kd-x-lb", ("haproxy",), after=("https://a:6443/readyz",), after_max_s=9
    )
    assert ComponentSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # A components.json written before the gate existed still loads.
    old = {"host": "h", "component": "c", "netns": "n", "argv": ["x"]}
    assert ComponentSpec.from_dict(old).after == ()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Bound and listening, but nobody accepts: what a member's peer port is while it
    bootstraps."""
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def address(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"{host}:{port}"


def test_a_bound_listener_nobody_serves_is_not_ready(listener: socket.socket) -> None:
    assert serves_tls(address(listener), timeout=0.05) is False


def test_a_closed_port_is_not_ready(listener: socket.socket) -> None:
    where = address(listener)
    listener.close()
    assert serves_tls(where, timeout=0.05) is False


def test_a_listener_that_answers_the_hello_is_ready(listener: socket.socket) -> None:
    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")  # a TLS alert: handshake failure

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    assert serves_tls(address(listener), timeout=1.0) is True
    server.join(timeout=1)


def test_an_endpoint_that_is_not_listening_is_not_ready(listener: socket.socket) -> None:
    where = address(listener)
    listener.close()
    assert answers_ok(f"https://{where}/readyz", timeout=0.2) is False


def gated_supervisor(tmp_path: Path, after: str) -> Supervisor:
    spec = ComponentSpec("etcd-2", "etcd", "kd-x-etcd-2", ("etcd",), after=(f"tls://{after}",))
    (tmp_path / "components.json").write_text(json.dumps([spec.to_dict()]))
    return Supervisor(tmp_path, Backoff(0.5, 10.0, 30.0))


def test_first_start_waits_for_the_listener_then_gives_up_waiting(
    tmp_path: Path, listener: socket.socket
) -> None:
    sup = gated_supervisor(tmp_path, address(listener))
    slot = sup.slots[0]
    assert sup.may_start_first(slot, sup.began) is False
    # A member that never comes up does not keep the next one down for good.
    assert sup.may_start_first(slot, sup.began + slot.spec.after_max_s) is True


def test_a_restart_never_waits(tmp_path: Path, listener: socket.socket) -> None:
    sup = gated_supervisor(tmp_path, address(listener))
    slot = sup.slots[0]
    slot.last_exit = -9
    assert sup.may_start_first(slot, sup.began) is True
