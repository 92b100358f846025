"""The kind tier's leftovers check: what counts as left behind, what is only noted."""

from __future__ import annotations

from kubedrill.targets.kind.host_snapshot import differences


def snap(links: list[str], sysctl: dict[str, str], containers: list[str]) -> dict[str, object]:
    return {
        "sysctl": sysctl,
        "containers": containers,
        "networks": [],
        "volumes": [],
        "links": links,
        "iptables": [],
    }


def test_left_behind_fails_gone_is_noted_and_device_settings_fold_into_links() -> None:
    before = snap(["lo", "veth9"], {"vm.x": "0", "net.ipv4.conf.veth9.forwarding": "1"}, ["a"])
    after = snap(
        ["lo", "veth3"],
        {"vm.x": "1", "net.ipv4.conf.veth3.forwarding": "1"},
        ["kubedrill-worker"],
    )
    left, gone = differences(before, after)
    assert "links: left behind: veth3" in left
    assert "containers: left behind: kubedrill-worker" in left
    assert "sysctl vm.x: 0 -> 1" in left
    assert not [line for line in left if "veth3.forwarding" in line]  # folded into the link
    assert gone == ["containers: gone: a", "links: gone: veth9"]
    assert differences(before, before) == ([], [])
