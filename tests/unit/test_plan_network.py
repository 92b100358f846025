"""plan_network: names and addresses of a lab's bridge, namespaces and veths (no `ip` calls)."""

from __future__ import annotations

import ipaddress

import pytest

from kubedrill.errors import ConfigError
from kubedrill.targets.lab.network import HOST_OFFSET, HostPlan, NetworkPlan, plan_network


def test_three_hosts_on_the_default_subnet() -> None:
    plan = plan_network("lab", "10.213.7.0/24", ["n1", "n2", "n3"])
    assert plan == NetworkPlan(
        lab="lab",
        bridge="kd-lab",
        gateway="10.213.7.1",
        prefixlen=24,
        hosts=(
            HostPlan("n1", "10.213.7.11", "kd-lab-n1", "kdv-lab-0"),
            HostPlan("n2", "10.213.7.12", "kd-lab-n2", "kdv-lab-1"),
            HostPlan("n3", "10.213.7.13", "kd-lab-n3", "kdv-lab-2"),
        ),
    )


def test_addresses_follow_the_subnet_and_order_of_names() -> None:
    plan = plan_network("x1", "192.168.5.64/26", ["b", "a"])
    assert plan.gateway == "192.168.5.65"
    assert plan.prefixlen == 26
    assert [(h.name, h.address) for h in plan.hosts] == [
        ("b", "192.168.5.75"),
        ("a", "192.168.5.76"),
    ]
    assert [h.veth for h in plan.hosts] == ["kdv-x1-0", "kdv-x1-1"]


def test_no_hosts() -> None:
    plan = plan_network("lab", "10.0.0.0/24", [])
    assert plan.hosts == ()
    assert plan.bridge == "kd-lab"


def test_interface_names_fit_the_kernel_limit() -> None:
    # IFNAMSIZ is 16 including the NUL: 15 visible characters at most. Longest lab name is 8.
    plan = plan_network("abcdefgh", "10.0.0.0/24", [f"n{i}" for i in range(1, 8)])
    for name in [plan.bridge, *(h.veth for h in plan.hosts)]:
        assert len(name) <= 15, name


def test_addresses_are_unique_and_inside_the_subnet() -> None:
    net = ipaddress.IPv4Network("10.20.0.0/26")
    plan = plan_network("lab", str(net), [f"n{i}" for i in range(7)])
    addresses = [ipaddress.IPv4Address(h.address) for h in plan.hosts]
    assert len(set(addresses)) == 7
    for address in addresses:
        assert address in net
        assert address not in (net.network_address, net.broadcast_address)
        assert str(address) != plan.gateway
    assert HOST_OFFSET == 11


@pytest.mark.parametrize(
    ("subnet", "hosts"), [("10.0.0.0/28", 7), ("10.0.0.0/29", 1), ("10.0.0.0/30", 1)]
)
def test_too_small_subnet(subnet: str, hosts: int) -> None:
    with pytest.raises(ConfigError, match=f"lab.subnet {subnet} has no room for {hosts} hosts"):
        plan_network("lab", subnet, [f"n{i}" for i in range(hosts)])


def test_small_subnet_that_fits() -> None:
    plan = plan_network("lab", "10.0.0.0/28", ["n1", "n2", "n3"])
    assert [h.address for h in plan.hosts] == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]


def test_last_usable_address_can_be_used() -> None:
    plan = plan_network("lab", "10.0.0.0/28", ["n1", "n2", "n3", "n4"])
    assert plan.hosts[-1].address == "10.0.0.14"


def test_invalid_subnet_is_not_silently_accepted() -> None:
    with pytest.raises(ValueError, match="host bits set"):
        plan_network("lab", "10.0.0.5/24", ["n1"])
