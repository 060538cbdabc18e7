"""GcpNetwork alone, under the mocks: the peer site reaches the nodes on Triton's serving
ports only, and the subnet carries the GKE ranges."""

import pytest

from components.gcp_network import GcpNetwork, GcpNetworkArgs
from hybrid.triton import PORTS
from infra.offline import StackEvaluation, evaluate_component

PEER = "10.10.0.0/16"


@pytest.fixture(scope="module")
def network() -> StackEvaluation:
    return evaluate_component(
        lambda: GcpNetwork(
            "private",
            GcpNetworkArgs(
                region="europe-west4", subnet_cidr="10.20.0.0/20", pods_cidr="10.24.0.0/14",
                services_cidr="10.28.0.0/20", control_plane_cidr="172.16.0.0/28",
                peer_cidrs=[PEER],
            ),
        )
    )  # fmt: skip


def test_the_firewall_admits_the_peer_site_on_serving_ports_only(
    network: StackEvaluation,
) -> None:
    rules = {r.name: r for r in network.of_type("gcp:compute/firewall:Firewall")}
    peer = rules["private-allow-from-peer-site"]
    assert peer.inputs["sourceRanges"] == [PEER]
    serving = [str(PORTS["http"]), str(PORTS["grpc"])]
    assert peer.inputs["allows"] == [{"protocol": "tcp", "ports": serving}]
    for rule in rules.values():
        assert "0.0.0.0/0" not in rule.inputs["sourceRanges"], f"Firewall {rule.name}"


def test_the_subnet_has_google_access_and_the_gke_ranges(network: StackEvaluation) -> None:
    (subnet,) = network.of_type("gcp:compute/subnetwork:Subnetwork")
    assert subnet.inputs["privateIpGoogleAccess"] is True
    assert {r["rangeName"] for r in subnet.inputs["secondaryIpRanges"]} == {"pods", "services"}
