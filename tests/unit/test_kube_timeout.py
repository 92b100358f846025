"""A float timeout must bound an API call: the client ignores a bare float (only an int
becomes a total timeout), which once let a lease poll hang for 60 s on a dead backend."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import kubernetes.client as k8s
import pytest

from kubedrill.probes.kube import read_json


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and reads, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_float_timeout_bounds_a_call_to_a_server_that_never_answers(silent_server: str) -> None:
    configuration = k8s.Configuration()
    configuration.host = silent_server
    configuration.retries = 0
    api = k8s.ApiClient(configuration)
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            read_json(k8s.CoreV1Api(api).read_namespace, "default", timeout=0.3)
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=5)
    elapsed = time.monotonic() - started
    api.close()
    assert not worker.is_alive(), "the call was still waiting 5 s after a 0.3 s timeout"
    assert outcome and outcome[0] is not None, "a server that never answers cannot succeed"
    assert elapsed < 2, f"a 0.3 s timeout took {elapsed:.2f} s"
