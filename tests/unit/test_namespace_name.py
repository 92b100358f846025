"""A drill's own namespace name is a valid RFC 1123 label, whatever its pytest id."""

from __future__ import annotations

import re

import pytest
from fixtures.kube import namespace_name

LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("test_name", "expected"),
    [
        ("test_kill_scheduler_leader", "drill-kill-scheduler-leader"),
        ("test_kill_scheduler_leader[3-10]", "drill-kill-scheduler-leader-3-10"),
        ("test_x[pause-node-2-10]", "drill-x-pause-node-2-10"),
    ],
)
def test_ids_become_labels(test_name: str, expected: str) -> None:
    assert namespace_name(test_name) == expected


def test_long_ids_are_cut_to_a_valid_label() -> None:
    name = namespace_name("test_" + "very_long_name_" * 10 + "[1-10]")
    assert len(name) <= 63 and LABEL.match(name)
