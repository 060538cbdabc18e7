"""The pure helpers behind the network, cluster and GPU pool components."""

import ipaddress
import itertools

import pytest

from components.aws_network import split_vpc
from components.gpu_node_pool import GpuPoolSpec
from components.hybrid_vpn import PSK_SPECIALS, aws_safe_psk
from components.private_cluster import is_internal
from components.values import required


@pytest.mark.parametrize("zones", [2, 3, 4, 6])
def test_split_vpc_gives_disjoint_subnets_inside_the_vpc(zones: int) -> None:
    vpc = ipaddress.IPv4Network("10.10.0.0/16")
    private, public = split_vpc(str(vpc), zones)
    subnets = [ipaddress.IPv4Network(c) for c in private + public]
    assert len(private) == len(public) == zones
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(subnets, 2))
    # Nodes and pods live in the private subnets: they get the big blocks.
    assert all(ipaddress.IPv4Network(p).num_addresses >= 8192 for p in private)


def test_split_vpc_layout_for_two_zones() -> None:
    assert split_vpc("10.10.0.0/16", 2) == (
        ["10.10.0.0/18", "10.10.64.0/18"],
        ["10.10.192.0/21", "10.10.200.0/21"],
    )


def test_split_vpc_refuses_more_zones_than_it_can_hold() -> None:
    with pytest.raises(ValueError, match="cannot hold subnets for 9 zones"):
        split_vpc("10.10.0.0/16", 9)


@pytest.mark.parametrize(
    ("key", "expected"),
    [("0Aa7xyz", "Aa7xyz0"), ("00._q9", "._q900"), ("Kx_0.0", "Kx_0.0")],
)
def test_aws_safe_psk_never_starts_with_zero(key: str, expected: str) -> None:
    assert aws_safe_psk(key) == expected
    assert sorted(aws_safe_psk(key)) == sorted(key)


def test_psk_specials_are_allowed_by_both_clouds() -> None:
    assert set(PSK_SPECIALS) <= {".", "_"}


def test_gpu_pool_labels_carry_accelerator_and_compute_capability() -> None:
    spec = GpuPoolSpec("l4", "l4", "8.9", "g6.2xlarge", 0, 2, 1, spot=True)
    assert spec.labels == {
        "hybrid.dev/accelerator": "l4",
        "hybrid.dev/compute-capability": "8.9",
        "hybrid.dev/capacity": "spot",
    }


def test_required_names_the_missing_value() -> None:
    assert required("issuer")("https://x") == "https://x"
    with pytest.raises(ValueError, match="the provider returned no EKS OIDC issuer"):
        required("EKS OIDC issuer")(None)


@pytest.mark.parametrize(
    ("cidr", "internal"),
    [
        ("10.10.0.0/16", True),
        ("172.16.32.0/28", True),
        ("192.168.4.0/24", True),
        ("100.64.0.0/12", True),
        ("203.0.113.0/24", False),
        ("8.8.8.0/24", False),
        ("0.0.0.0/0", False),
        ("172.0.0.0/8", False),
    ],
)
def test_only_internal_ranges_may_be_gke_private_endpoint_networks(
    cidr: str, internal: bool
) -> None:
    assert is_internal(cidr) is internal
