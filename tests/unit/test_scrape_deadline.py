"""A scrape round has a deadline: a target that hangs counts as down (up=0, as Prometheus'
scrape timeout does) while the other targets are still sampled, and it is not scraped again
until its hanging request is over. Real HTTP on 127.0.0.1, served by the test itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from kubedrill.probes.metrics import Scraper, ScrapeResult, ScrapeTarget

HANG_S = 1.5


class Handler(BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:  # the http.server API
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path == "/slow":
            time.sleep(HANG_S)
        body = b"etcd_server_has_leader 1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Handler.hits = {}
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def target(base: str, path: str) -> ScrapeTarget:
    keep = {"etcd_server_has_leader": ()}
    return ScrapeTarget("etcd", path.strip("/"), path, base + path, keep)


def by_name(results: list[ScrapeResult]) -> dict[str, ScrapeResult]:
    return {r.target.url.rsplit("/", 1)[1]: r for r in results}


def test_a_slow_target_does_not_hold_up_the_round_and_is_never_asked_twice(server: str) -> None:
    scraper = Scraper([target(server, "/fast"), target(server, "/slow")], timeout=5.0)
    try:
        started = time.perf_counter()
        first = by_name(scraper.scrape_all(deadline=0.5))
        assert time.perf_counter() - started < 1.2  # the round did not wait for /slow
        assert first["fast"].ok and first["fast"].samples
        assert "slow" not in first  # no sample yet: still answering
        second = by_name(scraper.scrape_all(deadline=0.5))
        assert second["fast"].ok and "slow" not in second
        assert Handler.hits["/slow"] == 1  # still busy: not asked again
        time.sleep(HANG_S)
        third = by_name(scraper.scrape_all(deadline=0.5))
        assert third["slow"].ok  # the late answer, recorded a round later
        assert Handler.hits["/slow"] == 1
        by_name(scraper.scrape_all(deadline=3.0))
        assert Handler.hits["/slow"] == 2  # asked again once it had answered
    finally:
        scraper.close()


def test_a_target_busy_past_the_scrape_timeout_is_down(server: str) -> None:
    scraper = Scraper([target(server, "/slow")], timeout=5.0, scrape_timeout=0.4)
    try:
        assert scraper.scrape_all(deadline=0.2) == []
        time.sleep(0.4)
        (late,) = scraper.scrape_all(deadline=0.2)
        assert not late.ok and late.error == "timeout"  # up=0, as Prometheus would say
    finally:
        scraper.close()
