"""HybridVpn alone, under the mocks: four tunnels whose two ends agree (interfaces, outside
and inside addresses, BGP peers, one IKEv2 algorithm set, a shared secret key each), the
Transit Gateway propagating every attachment, and routes to every GCP range."""

import ipaddress
import re

import pulumi
import pytest

from components.hybrid_vpn import HybridVpn, HybridVpnArgs
from infra.offline import MockedResource, StackEvaluation, evaluate_component

VPN_TUNNEL = "gcp:compute/vPNTunnel:VPNTunnel"
VPN_CONNECTION = "aws:ec2/vpnConnection:VpnConnection"
PSK = re.compile(r"^[1-9A-Za-z._][0-9A-Za-z._]{7,63}$")
AWS_ASN, GCP_ASN = 64512, 65010
ROUTE_TABLES = ("rtb-a", "rtb-b")
GCP_CIDRS = ("10.20.0.0/20", "10.24.0.0/14", "10.28.0.0/20", "172.16.0.0/28")
ADVERTISED = ("172.16.0.0/28",)
INSIDE = ("169.254.21.0/30", "169.254.21.4/30", "169.254.22.0/30", "169.254.22.4/30")


def _create() -> None:
    vpn = HybridVpn(
        "vpn",
        HybridVpnArgs(
            aws_vpc_id="vpc-1", aws_subnet_ids=["subnet-a", "subnet-b"],
            aws_route_table_ids=ROUTE_TABLES, aws_asn=AWS_ASN,
            gcp_network="projects/hybrid-x/global/networks/private", gcp_region="europe-west4",
            gcp_asn=GCP_ASN, gcp_cidrs=GCP_CIDRS, gcp_advertised_cidrs=ADVERTISED,
            inside_cidrs=INSIDE,
        ),
    )  # fmt: skip
    pulumi.export("tunnels", [tunnel.as_output() for tunnel in vpn.tunnels])


@pytest.fixture(scope="module")
def vpn() -> StackEvaluation:
    return evaluate_component(_create)


def _ends(ev: StackEvaluation) -> tuple[list[MockedResource], list[MockedResource]]:
    connections = sorted(ev.of_type(VPN_CONNECTION), key=lambda r: r.name)
    tunnels = sorted(ev.of_type(VPN_TUNNEL), key=lambda r: r.name)
    assert len(connections) == 2 and len(tunnels) == 4
    return connections, tunnels


def test_each_gcp_tunnel_uses_the_right_interfaces(vpn: StackEvaluation) -> None:
    connections, tunnels = _ends(vpn)
    (ha_gateway,) = vpn.of_type("gcp:compute/haVpnGateway:HaVpnGateway")
    (external,) = vpn.of_type("gcp:compute/externalVpnGateway:ExternalVpnGateway")
    assert external.inputs["redundancyType"] == "FOUR_IPS_REDUNDANCY"
    external_ips = {i["id"]: i["ipAddress"] for i in external.inputs["interfaces"]}
    ha_ips = {i["id"]: i["ipAddress"] for i in ha_gateway.outputs["vpnInterfaces"]}
    customer_gateways = {r.id: r for r in vpn.of_type("aws:ec2/customerGateway:CustomerGateway")}

    for k, tunnel in enumerate(tunnels):
        connection, aws_tunnel = connections[k // 2], k % 2 + 1
        assert tunnel.inputs["vpnGateway"] == ha_gateway.id
        assert tunnel.inputs["vpnGatewayInterface"] == k // 2, tunnel.name
        assert tunnel.inputs["peerExternalGateway"] == external.id
        assert tunnel.inputs["peerExternalGatewayInterface"] == k, tunnel.name
        # The external interface k is exactly AWS's outside address of that tunnel ...
        assert external_ips[k] == connection.outputs[f"tunnel{aws_tunnel}Address"]
        # ... and AWS dials back to the HA interface the GCP tunnel leaves from.
        customer_gateway = customer_gateways[connection.inputs["customerGatewayId"]]
        assert customer_gateway.inputs["ipAddress"] == ha_ips[k // 2], tunnel.name


def test_each_bgp_peer_matches_the_aws_inside_addresses(vpn: StackEvaluation) -> None:
    connections, tunnels = _ends(vpn)
    interfaces = sorted(
        vpn.of_type("gcp:compute/routerInterface:RouterInterface"), key=lambda r: r.name
    )
    peers = sorted(vpn.of_type("gcp:compute/routerPeer:RouterPeer"), key=lambda r: r.name)
    assert len(interfaces) == len(peers) == 4

    for k in range(4):
        connection, t = connections[k // 2], k % 2 + 1
        inside = ipaddress.IPv4Network(INSIDE[k])
        assert connection.inputs[f"tunnel{t}InsideCidr"] == str(inside)
        aws_side = connection.outputs[f"tunnel{t}VgwInsideAddress"]
        gcp_side = connection.outputs[f"tunnel{t}CgwInsideAddress"]
        assert ipaddress.IPv4Address(aws_side) in inside

        assert interfaces[k].inputs["vpnTunnel"] == tunnels[k].outputs["name"]
        assert interfaces[k].inputs["ipRange"] == f"{gcp_side}/30"
        assert peers[k].inputs["interface"] == interfaces[k].outputs["name"]
        assert peers[k].inputs["peerIpAddress"] == aws_side, peers[k].name
        assert peers[k].inputs["ipAddress"] == gcp_side
        assert peers[k].inputs["peerAsn"] == AWS_ASN


def test_asns_and_route_propagation(vpn: StackEvaluation) -> None:
    (tgw,) = vpn.of_type("aws:ec2transitgateway/transitGateway:TransitGateway")
    assert tgw.inputs["amazonSideAsn"] == AWS_ASN
    assert tgw.inputs["vpnEcmpSupport"] == "enable"
    (router,) = [r for r in vpn.of_type("gcp:compute/router:Router") if "bgp" in r.inputs]
    assert router.inputs["bgp"]["asn"] == GCP_ASN
    assert router.inputs["bgp"]["advertisedIpRanges"] == [{"range": r} for r in ADVERTISED]
    for gateway in vpn.of_type("aws:ec2/customerGateway:CustomerGateway"):
        assert gateway.inputs["bgpAsn"] == str(GCP_ASN)

    # Every attachment (the VPC and both VPN connections) propagates into the TGW table.
    (table,) = vpn.of_type("aws:ec2transitgateway/routeTable:RouteTable")
    attachments = {r.id for r in vpn.of_type("aws:ec2transitgateway/vpcAttachment:VpcAttachment")}
    attachments |= {c.outputs["transitGatewayAttachmentId"] for c in vpn.of_type(VPN_CONNECTION)}
    for kind in (
        "routeTablePropagation:RouteTablePropagation",
        "routeTableAssociation:RouteTableAssociation",
    ):
        links = vpn.of_type(f"aws:ec2transitgateway/{kind}")
        assert {r.inputs["transitGatewayAttachmentId"] for r in links} == attachments
        assert {r.inputs["transitGatewayRouteTableId"] for r in links} == {table.id}


def test_every_route_table_sends_every_gcp_range_to_the_tgw(vpn: StackEvaluation) -> None:
    (tgw,) = vpn.of_type("aws:ec2transitgateway/transitGateway:TransitGateway")
    routes = {
        (r.inputs["routeTableId"], r.inputs["destinationCidrBlock"])
        for r in vpn.of_type("aws:ec2/route:Route")
        if r.inputs.get("transitGatewayId") == tgw.id
    }
    assert routes == {(table, cidr) for table in ROUTE_TABLES for cidr in GCP_CIDRS}


def test_one_ike_v2_algorithm_set_on_both_ends(vpn: StackEvaluation) -> None:
    connections, tunnels = _ends(vpn)
    for tunnel in tunnels:
        assert tunnel.inputs["ikeVersion"] == 2
        for phase in tunnel.inputs["cipherSuite"].values():
            assert all(len(algorithms) == 1 for algorithms in phase.values()), tunnel.name
    for connection in connections:
        for t in (1, 2):
            assert connection.inputs[f"tunnel{t}IkeVersions"] == ["ikev2"]
            options = [k for k in connection.inputs if re.match(rf"tunnel{t}Phase\d\w+", k)]
            assert len(options) == 6
            assert all(len(connection.inputs[k]) == 1 for k in options), connection.name


def test_pre_shared_keys_are_shared_valid_and_secret(vpn: StackEvaluation) -> None:
    connections, tunnels = _ends(vpn)
    for k, tunnel in enumerate(tunnels):
        connection, t = connections[k // 2], k % 2 + 1
        key = tunnel.inputs["sharedSecret"]
        assert key == connection.inputs[f"tunnel{t}PresharedKey"]
        assert PSK.match(key), f"{tunnel.name}: the key breaks AWS's rules"
        assert "sharedSecret" in tunnel.secret_inputs
        assert f"tunnel{t}PresharedKey" in connection.secret_inputs
    assert len({t.inputs["sharedSecret"] for t in tunnels}) == 4


def test_tunnel_identities_name_both_ends(vpn: StackEvaluation) -> None:
    exported = vpn.outputs["tunnels"]
    tunnels = sorted(vpn.of_type(VPN_TUNNEL), key=lambda r: r.name)
    assert [t["gcpTunnel"] for t in exported] == [t.outputs["selfLink"] for t in tunnels]
    assert [(t["haInterface"], t["awsTunnel"]) for t in exported] == [
        (0, 1), (0, 2), (1, 1), (1, 2),
    ]  # fmt: skip
    assert [t["insideCidr"] for t in exported] == list(INSIDE)


def test_four_inside_ranges_are_required() -> None:
    with pytest.raises(ValueError, match="needs 4 inside ranges"):
        evaluate_component(
            lambda: HybridVpn(
                "vpn",
                HybridVpnArgs(
                    aws_vpc_id="vpc-1", aws_subnet_ids=[], aws_route_table_ids=[], aws_asn=1,
                    gcp_network="n", gcp_region="r", gcp_asn=2, gcp_cidrs=[],
                    gcp_advertised_cidrs=[], inside_cidrs=INSIDE[:2],
                ),
            )
        )  # fmt: skip
