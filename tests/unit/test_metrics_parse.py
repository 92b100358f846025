"""The scraper's own text-format parser (probes/metrics.py): what prometheus_client's parser
gave, at a fraction of the CPU; and the allowlists keep every family the alert rules read."""

from __future__ import annotations

import re

import pytest
import yaml

from kubedrill.data import ALERT_RULES
from kubedrill.probes.metrics import (
    APISERVER_SERIES,
    ETCD_SERIES,
    parse_line,
    parse_samples,
    sample_lines,
    series_key,
)

RULES = ALERT_RULES.parent
# Series the recorder makes itself rather than scraping.
SYNTHETIC = {"up", "kube_node_status_condition"}


def test_label_values_are_unescaped_and_timestamps_ignored() -> None:
    labels, value = parse_line('m{a="x\\"y\\\\z\\n",b="}"} 2.5 1700000000000', "m")
    assert value == 2.5
    assert labels == {"a": 'x\\"y\\\\z\\n', "b": "}"}  # escaped until kept
    keep = {"m": ("a",)}
    assert parse_samples('m{a="x\\"y\\\\z\\n",b="}"} 2.5 1700000000000\n', keep) == {
        series_key("m", {"a": 'x"y\\z\n'}): 2.5
    }


def test_special_values_and_no_labels() -> None:
    assert parse_line("m +Inf", "m") == ({}, float("inf"))
    assert parse_line('m{le="+Inf"} 1e+03', "m") == ({"le": "+Inf"}, 1000.0)


@pytest.mark.parametrize("line", ['m{a="1" 2', "m{}", "m "])
def test_malformed_lines_raise_value_error(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line, "m")


def test_lines_only_at_line_start_and_exact_names() -> None:
    text = (
        "# HELP etcd_server_has_leader x\n"
        "# TYPE etcd_server_has_leader gauge\n"
        "etcd_server_has_leader 1\n"
        "etcd_server_has_leader_x 5\n"
        'other{v="etcd_server_has_leader 3"} 1\n'
        'etcd_server_has_leader{a="b"} 0'  # no final newline
    )
    assert list(sample_lines(text, ["etcd_server_has_leader"])) == [
        "etcd_server_has_leader 1",
        'etcd_server_has_leader{a="b"} 0',
    ]


def rule_families() -> dict[str, set[str]]:
    """Metric family -> the labels rules group it by, from every rules file's expressions."""
    found: dict[str, set[str]] = {}
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                expr = str(rule["expr"])
                by = {
                    label.strip()
                    for labels in re.findall(r"by\s*\(([^)]*)\)", expr)
                    for label in labels.split(",")
                }
                for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr):
                    found.setdefault(name, set()).update(by)
    return found


def test_the_allowlists_keep_what_the_rules_read() -> None:
    """Lines are filtered by name before parsing: a family a rule reads and the allowlist
    lacks would silently never fire."""
    families = rule_families()
    assert "apiserver_request_duration_seconds_bucket" in families  # the regex reads the file
    kept = {**ETCD_SERIES, **APISERVER_SERIES}
    target_labels = {"job", "instance", "node"}
    for name, by in families.items():
        if name in SYNTHETIC:
            continue
        assert name in kept, f"{name} is read by an alert rule but not scraped"
        missing = by - target_labels - set(kept[name])
        assert not missing, f"{name}: rules group by {sorted(missing)}, summed away by scraping"
        if name.endswith("_bucket"):
            assert "le" in kept[name]
