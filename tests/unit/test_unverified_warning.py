"""A target scraped without verification on purpose does not print urllib3's warning, and
only that host is silenced: another host's unverified request still warns."""

from __future__ import annotations

import warnings

from urllib3.exceptions import InsecureRequestWarning

from kubedrill.probes.metrics import Scraper, ScrapeTarget


def unverified(host: str) -> InsecureRequestWarning:
    return InsecureRequestWarning(
        f"Unverified HTTPS request is being made to host '{host}'. "
        "Adding certificate verification is strongly advised."
    )


def test_only_the_self_signed_targets_host_is_silenced() -> None:
    target = ScrapeTarget(
        job="kube-scheduler",
        node="control-1",
        instance="10.99.0.11:10259",
        url="https://10.99.0.11:10259/metrics",
        keep={},
        verify=False,
    )
    scraper = Scraper([target])
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.warn(unverified("10.99.0.11"), stacklevel=1)
            warnings.warn(unverified("10.99.0.12"), stacklevel=1)
            warnings.warn(unverified("10.99.0.111"), stacklevel=1)  # not a prefix match
    finally:
        scraper.close()
    hosts = sorted(str(w.message).split("'")[1] for w in seen)
    assert hosts == ["10.99.0.111", "10.99.0.12"]
