"""A stand-in kube-apiserver for the load-balancer image's test: HTTPS on one address, `/healthz`
answers `ok`, any other path answers the backend's name (so a test can see where the load
balancer sent it).

    python -m tests.integration.https_backend NAME HOST:PORT CERT KEY
"""

from __future__ import annotations

import http.server
import ssl
import sys


def main() -> None:
    name, bind, cert, key = sys.argv[1:5]
    host, port = bind.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"ok" if self.path == "/healthz" else name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("serving", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
