"""The minimal HTTP/1.1 client against a real HTTP server: lengths, chunks, keep-alive,
a closed connection."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from kubedrill.probes.http11 import Connection, HttpError


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: ClassVar[set[int]] = set()

    def do_POST(self) -> None:
        Handler.connections.add(id(self.connection))
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"echo": ', body, b"}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
        else:
            reply = b'{"echo": ' + body + b"}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_lengths_and_chunks_on_one_kept_alive_connection(server: ThreadingHTTPServer) -> None:
    Handler.connections.clear()
    conn = Connection("127.0.0.1", server.server_address[1], None)
    assert conn.post("/x", b'{"a": 1}', 2.0) == (200, b'{"echo": {"a": 1}}')
    assert conn.post("/chunked", b"[2]", 2.0) == (200, b'{"echo": [2]}')
    assert conn.post("/x", b"3", 2.0) == (200, b'{"echo": 3}')
    assert len(Handler.connections) == 1
    conn.close()


def test_connection_close_is_honoured(server: ThreadingHTTPServer) -> None:
    conn = Connection("127.0.0.1", server.server_address[1], None)
    assert conn.post("/close", b"{}", 2.0) == (503, b"")
    assert not conn.connected
    assert conn.post("/x", b"1", 2.0)[0] == 200  # connects anew


def test_a_refused_connection_raises_oserror() -> None:
    conn = Connection("127.0.0.1", 9, None)
    with pytest.raises(OSError):
        conn.post("/x", b"{}", 1.0)
    assert not conn.connected


def test_garbage_is_an_http_error() -> None:
    """Something that is not an HTTP server (here: an SSH banner) on the port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        peer, _ = listener.accept()
        peer.recv(1024)
        peer.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        peer.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    conn = Connection("127.0.0.1", listener.getsockname()[1], None)
    try:
        with pytest.raises(HttpError):
            conn.post("/x", b"{}", 2.0)
        assert not conn.connected
    finally:
        thread.join(5)
        listener.close()
