"""The VPN mode's addressing plan cannot leak: benchmarking range only, slots disjoint,
names that Linux accepts."""

import ipaddress
import itertools

import pytest

from serving.local.addressing import BENCHMARKING, SLOTS, VpnPlan


def networks(plan: VpnPlan) -> list[ipaddress.IPv4Network]:
    links = [f"{plan.root_address}/30"]
    links += [f"{path.public}/{path.prefixlen}" for path in plan.underlays]
    ranges = [plan.public_inner, plan.private_inner, *links]
    return [ipaddress.IPv4Network(r, strict=False) for r in ranges]


@pytest.mark.parametrize("slot", [0, 1, 10, SLOTS - 1])
def test_every_address_is_in_the_benchmarking_range_and_inside_the_slot(slot: int) -> None:
    plan = VpnPlan(slot)
    guarded = [ipaddress.IPv4Network(g) for g in plan.guarded]
    for network in networks(plan):
        assert network.subnet_of(BENCHMARKING), f"slot {slot}: {network}"
        assert any(network.subnet_of(g) for g in guarded), f"slot {slot}: {network} unguarded"
    assert not any(a.overlaps(b) for a, b in itertools.combinations(networks(plan), 2))
    hosts = [plan.triton_address("public"), plan.gateway_address]
    assert all(ipaddress.ip_address(h) in ipaddress.IPv4Network(plan.public_inner) for h in hosts)
    private = ipaddress.ip_address(plan.triton_address("private"))
    assert private in ipaddress.IPv4Network(plan.private_inner)


def test_slots_never_share_an_address() -> None:
    guarded = [ipaddress.IPv4Network(g) for s in range(SLOTS) for g in VpnPlan(s).guarded]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(guarded, 2))


def test_names_fit_linux_interface_names() -> None:
    plan = VpnPlan(SLOTS - 1)
    for name in (plan.access_link, *(path.link for path in plan.underlays)):
        assert len(name) <= 15, f"{name} is longer than IFNAMSIZ - 1"
    with pytest.raises(ValueError, match="outside"):
        VpnPlan(SLOTS)


def test_the_plan_is_the_documented_one() -> None:
    plan = VpnPlan(1)
    assert (plan.public_inner, plan.private_inner) == ("198.18.4.0/24", "198.19.4.0/24")
    assert (plan.root_address, plan.public_access_address) == ("198.18.5.1", "198.18.5.2")
    assert [(p.public, p.private) for p in plan.underlays] == [
        ("198.18.6.1", "198.18.6.2"),
        ("198.18.6.5", "198.18.6.6"),
    ]
    assert plan.namespaces == ("hyb1-public", "hyb1-private")
