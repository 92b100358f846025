"""A minimal kept-alive HTTP/1.1 client connection for small JSON calls (etcd's gateway).

http.client spends most of a request's CPU in Python-level header handling; a status poll
is a few hundred bytes each way, sent 40 times a second while a fault is held, on 2 cores
shared with the members being timed. This writes one pre-formatted request and reads the
response with a handful of socket reads (measured: 0.08 ms of CPU a request against 0.25 ms
with http.client). It speaks only what the gateway answers with: a status line, headers, and
a body by Content-Length or chunked encoding. Anything else raises HttpError.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator

MAX_HEAD = 64 * 1024


class HttpError(OSError):
    """The server's answer was not HTTP/1.1 this client understands, or the connection broke."""


class _Incomplete(Exception):
    """More of a non-blocking response is still to come."""


class Connection:
    def __init__(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        self.host, self.port, self.context = host, port, context
        self._sock: socket.socket | None = None
        self._buf = b""
        self.awaiting = None
        self.served = 0  # answers read on the current socket: a failure after some is staleness

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._buf, self.awaiting, self.served = None, b"", None, 0

    def post(self, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """(status, body). Raises OSError (timeouts included) and HttpError; after one the
        connection is closed, and the next call connects anew."""
        with self._closed_on_error():
            sock = self._connect(timeout)
            sock.settimeout(timeout)
            sock.sendall(self._request(path, body))
            return self._read_response()

    # -- one request at a time without blocking (EtcdClient.leader_view's rounds) ------------

    awaiting: float | None = None  # when the outstanding request was sent

    def fileno(self) -> int:
        assert self._sock is not None
        return self._sock.fileno()

    def start(self, path: str, body: bytes, now: float) -> None:
        """Send a request on the established connection; its answer is read by `advance`."""
        assert self._sock is not None and self.awaiting is None
        with self._closed_on_error():
            self._sock.settimeout(1.0)  # a few hundred bytes into an empty send buffer
            self._sock.sendall(self._request(path, body))
            self._sock.setblocking(False)
        self.awaiting = now

    def advance(self) -> tuple[int, bytes] | None:
        """Read what has arrived; the answer once it is whole, else None. Raises OSError or
        HttpError (the connection is closed then)."""
        assert self._sock is not None
        with self._closed_on_error():
            while True:
                try:
                    chunk = self._sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    break
                if not chunk:
                    raise HttpError("connection closed by the server")
                self._buf += chunk
            if self._buf.find(b"\r\n\r\n") < 0:
                return None
            saved = self._buf
            try:
                return self._read_response()
            except _Incomplete:
                self._buf = saved
                return None

    # -- shared by both ---------------------------------------------------------------------

    def _request(self, path: str, body: bytes) -> bytes:
        return (
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s"
            % (path.encode(), self.host.encode(), self.port, len(body), body)
        )

    def _read_response(self) -> tuple[int, bytes]:
        """One whole response from the buffer and the socket (blocking, or _Incomplete when
        a non-blocking request's answer has not all arrived)."""
        status, headers = self._read_head()
        if "chunked" in headers.get("transfer-encoding", ""):
            data = self._read_chunked()
        elif "content-length" in headers:
            data = self._read_exactly(int(headers["content-length"]))
        else:
            raise HttpError("response without a length")
        self.awaiting = None
        self.served += 1
        assert self._sock is not None
        self._sock.setblocking(True)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, data

    @contextlib.contextmanager
    def _closed_on_error(self) -> Iterator[None]:
        """Any failure closes the connection; a malformed answer is an HttpError."""
        try:
            yield
        except (OSError, ValueError) as exc:
            self.close()
            if isinstance(exc, OSError):
                raise
            raise HttpError(str(exc)) from exc

    def connect(self, timeout: float) -> None:
        """Connect (TCP and TLS) now, blocking up to `timeout`."""
        self._connect(timeout)

    def _connect(self, timeout: float) -> socket.socket:
        if self._sock is None:
            raw = socket.create_connection((self.host, self.port), timeout=timeout)
            if self.context is not None:
                raw = self.context.wrap_socket(raw, server_hostname=self.host)
            self._sock, self._buf = raw, b""
        return self._sock

    def _fill(self) -> None:
        assert self._sock is not None
        if self.awaiting is not None:
            raise _Incomplete  # non-blocking: the caller reads more when the socket is ready
        chunk = self._sock.recv(65536)
        if not chunk:
            raise HttpError("connection closed by the server")
        self._buf += chunk

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > MAX_HEAD:
                raise HttpError("response head too long")
            self._fill()
        head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4 :]
        status_line, *lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def _read_line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            self._fill()
        line, self._buf = self._buf[:end], self._buf[end + 2 :]
        return line

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._read_line().split(b";", 1)[0], 16)
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._read_exactly(2)  # the CRLF after each chunk
