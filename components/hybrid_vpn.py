"""HA VPN between the two sites: GCP HA VPN <-> AWS Transit Gateway, four tunnels, BGP.

The layout follows Google's "HA VPN between Google Cloud and AWS" topology:

- the GCP HA VPN gateway has two interfaces; each is one AWS customer gateway;
- each customer gateway gets one AWS VPN connection (two tunnels) on a Transit Gateway
  (a TGW rather than a virtual private gateway: it load-balances the four tunnels with
  ECMP, and a VGW cannot);
- GCP sees the four AWS tunnel endpoints as one external gateway (FOUR_IPS_REDUNDANCY);
- tunnel ``k`` leaves HA interface ``k // 2`` towards external interface ``k``, which is
  AWS connection ``k // 2``, tunnel ``k % 2 + 1``; its BGP session runs on the ``k``-th
  /30 inside range, GCP on the customer-gateway address, AWS on the VGW address.

Both ends are pinned to IKEv2 and one phase 1 / phase 2 algorithm set: offering several
lets each side pick differently at rekey, which drops tunnels.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_random as random

from components.values import required
from hybrid.vpn import (
    PSK_LENGTH,
    PSK_SPECIALS,
    VPN_SETTINGS,
    aws_ike_options,
    aws_safe_psk,
    gcp_cipher_suite,
)

# One algorithm set (hybrid.vpn), spelled as each cloud spells it.
AWS_IKE: dict[str, Any] = aws_ike_options(VPN_SETTINGS)
GCP_CIPHER_SUITE = cast(gcp.compute.VPNTunnelCipherSuiteArgsDict, gcp_cipher_suite(VPN_SETTINGS))
TUNNELS = 4


@dataclass(frozen=True)
class HybridVpnArgs:
    aws_vpc_id: pulumi.Input[str]
    aws_subnet_ids: Sequence[pulumi.Input[str]]
    """Subnets (one per zone) where the Transit Gateway attaches to the VPC."""
    aws_route_table_ids: Sequence[pulumi.Input[str]]
    """VPC route tables that get routes to the GCP ranges through the Transit Gateway."""
    aws_asn: int
    gcp_network: pulumi.Input[str]
    gcp_region: str
    gcp_asn: int
    gcp_cidrs: Sequence[str]
    """Every GCP range AWS must reach: nodes, pods, services, GKE control plane."""
    gcp_advertised_cidrs: Sequence[str]
    """Ranges the Cloud Router advertises beyond its subnets (the GKE control plane)."""
    inside_cidrs: Sequence[str]
    """Four /30 link-local ranges, one per tunnel, in tunnel order."""


@dataclass(frozen=True)
class TunnelIdentity:
    """What an operator needs to find one tunnel on both consoles."""

    gcp_tunnel: pulumi.Output[str]
    aws_vpn_connection: pulumi.Output[str]
    aws_tunnel: int
    ha_interface: int
    inside_cidr: str
    aws_outside_address: pulumi.Output[str]
    gcp_inside_address: pulumi.Output[str]
    aws_inside_address: pulumi.Output[str]

    def as_output(self) -> pulumi.Output[dict]:
        return pulumi.Output.all(
            gcpTunnel=self.gcp_tunnel,
            awsVpnConnection=self.aws_vpn_connection,
            awsTunnel=self.aws_tunnel,
            haInterface=self.ha_interface,
            insideCidr=self.inside_cidr,
            awsOutsideAddress=self.aws_outside_address,
            gcpInsideAddress=self.gcp_inside_address,
            awsInsideAddress=self.aws_inside_address,
        )


class HybridVpn(pulumi.ComponentResource):
    transit_gateway_id: pulumi.Output[str]
    ha_vpn_gateway_id: pulumi.Output[str]
    tunnels: list[TunnelIdentity]

    def __init__(
        self, name: str, args: HybridVpnArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:hybrid_vpn:HybridVpn", name, None, opts)
        if len(args.inside_cidrs) != TUNNELS:
            raise ValueError(f"HybridVpn needs {TUNNELS} inside ranges, got {args.inside_cidrs}")
        child = pulumi.ResourceOptions(parent=self)

        ha_gateway = gcp.compute.HaVpnGateway(
            f"{name}-ha-gateway", network=args.gcp_network, region=args.gcp_region, opts=child
        )
        router = gcp.compute.Router(
            f"{name}-router",
            network=args.gcp_network,
            region=args.gcp_region,
            bgp={
                "asn": args.gcp_asn,
                "advertise_mode": "CUSTOM",
                "advertised_groups": ["ALL_SUBNETS"],
                "advertised_ip_ranges": [{"range": c} for c in args.gcp_advertised_cidrs],
            },
            opts=child,
        )
        keys = [self._pre_shared_key(f"{name}-psk-{k}", child) for k in range(TUNNELS)]

        tgw, route_table = self._transit_gateway(name, args, child)
        connections = []
        for i in range(2):
            customer_gateway = aws.ec2.CustomerGateway(
                f"{name}-cgw-{i}",
                bgp_asn=str(args.gcp_asn),
                ip_address=ha_gateway.vpn_interfaces[i].ip_address.apply(
                    required("HA VPN interface IP")
                ),
                type="ipsec.1",
                tags={"Name": f"{name}-gcp-interface-{i}"},
                opts=child,
            )
            connection = aws.ec2.VpnConnection(
                f"{name}-connection-{i}",
                customer_gateway_id=customer_gateway.id,
                transit_gateway_id=tgw.id,
                type="ipsec.1",
                static_routes_only=False,
                tunnel1_inside_cidr=args.inside_cidrs[2 * i],
                tunnel2_inside_cidr=args.inside_cidrs[2 * i + 1],
                tunnel1_preshared_key=keys[2 * i],
                tunnel2_preshared_key=keys[2 * i + 1],
                **{f"tunnel{t}_{key}": value for t in (1, 2) for key, value in AWS_IKE.items()},
                tags={"Name": f"{name}-connection-{i}"},
                opts=child,
            )  # fmt: skip
            for role in ("associate", "propagate"):
                link = (
                    aws.ec2transitgateway.RouteTableAssociation
                    if role == "associate"
                    else aws.ec2transitgateway.RouteTablePropagation
                )
                link(
                    f"{name}-vpn-{i}-{role}",
                    transit_gateway_attachment_id=connection.transit_gateway_attachment_id,
                    transit_gateway_route_table_id=route_table.id,
                    opts=child,
                )
            connections.append(connection)

        external_gateway = gcp.compute.ExternalVpnGateway(
            f"{name}-aws-gateway",
            redundancy_type="FOUR_IPS_REDUNDANCY",
            description="The four AWS tunnel endpoints of the two VPN connections",
            interfaces=[
                {"id": k, "ip_address": _tunnel(connections[k // 2], k % 2 + 1).outside}
                for k in range(TUNNELS)
            ],
            opts=child,
        )

        self.tunnels = []
        for k in range(TUNNELS):
            aws_tunnel = _tunnel(connections[k // 2], k % 2 + 1)
            tunnel = gcp.compute.VPNTunnel(
                f"{name}-tunnel-{k}",
                region=args.gcp_region,
                vpn_gateway=ha_gateway.id,
                vpn_gateway_interface=k // 2,
                peer_external_gateway=external_gateway.id,
                peer_external_gateway_interface=k,
                shared_secret=keys[k],
                router=router.id,
                ike_version=VPN_SETTINGS.version,
                cipher_suite=GCP_CIPHER_SUITE,
                opts=child,
            )
            interface = gcp.compute.RouterInterface(
                f"{name}-interface-{k}",
                router=router.name,
                region=args.gcp_region,
                ip_range=aws_tunnel.gcp_inside.apply(lambda ip: f"{ip}/30"),
                vpn_tunnel=tunnel.name,
                opts=child,
            )
            gcp.compute.RouterPeer(
                f"{name}-peer-{k}",
                router=router.name,
                region=args.gcp_region,
                interface=interface.name,
                ip_address=aws_tunnel.gcp_inside,
                peer_ip_address=aws_tunnel.aws_inside,
                peer_asn=args.aws_asn,
                advertised_route_priority=100,
                opts=child,
            )
            self.tunnels.append(
                TunnelIdentity(
                    gcp_tunnel=tunnel.self_link,
                    aws_vpn_connection=connections[k // 2].id,
                    aws_tunnel=k % 2 + 1,
                    ha_interface=k // 2,
                    inside_cidr=args.inside_cidrs[k],
                    aws_outside_address=aws_tunnel.outside,
                    gcp_inside_address=aws_tunnel.gcp_inside,
                    aws_inside_address=aws_tunnel.aws_inside,
                )
            )

        self.transit_gateway_id = tgw.id
        self.ha_vpn_gateway_id = ha_gateway.id
        self.register_outputs(
            {
                "transitGatewayId": self.transit_gateway_id,
                "haVpnGatewayId": self.ha_vpn_gateway_id,
                "tunnels": [t.as_output() for t in self.tunnels],
            }
        )

    def _transit_gateway(
        self, name: str, args: HybridVpnArgs, child: pulumi.ResourceOptions
    ) -> tuple[aws.ec2transitgateway.TransitGateway, aws.ec2transitgateway.RouteTable]:
        """A TGW with an explicit route table: every attachment is associated with it and
        propagates into it, so the VPC and BGP-learned GCP routes meet in one visible place."""
        tgw = aws.ec2transitgateway.TransitGateway(
            f"{name}-tgw",
            amazon_side_asn=args.aws_asn,
            description=f"{name}: AWS side of the HA VPN to GCP",
            vpn_ecmp_support="enable",
            dns_support="enable",
            default_route_table_association="disable",
            default_route_table_propagation="disable",
            auto_accept_shared_attachments="disable",
            tags={"Name": f"{name}-tgw"},
            opts=child,
        )
        route_table = aws.ec2transitgateway.RouteTable(
            f"{name}-tgw-routes", transit_gateway_id=tgw.id, opts=child
        )
        attachment = aws.ec2transitgateway.VpcAttachment(
            f"{name}-vpc-attachment",
            transit_gateway_id=tgw.id,
            vpc_id=args.aws_vpc_id,
            subnet_ids=list(args.aws_subnet_ids),
            transit_gateway_default_route_table_association=False,
            transit_gateway_default_route_table_propagation=False,
            opts=child,
        )
        aws.ec2transitgateway.RouteTableAssociation(
            f"{name}-vpc-associate",
            transit_gateway_attachment_id=attachment.id,
            transit_gateway_route_table_id=route_table.id,
            opts=child,
        )
        aws.ec2transitgateway.RouteTablePropagation(
            f"{name}-vpc-propagate",
            transit_gateway_attachment_id=attachment.id,
            transit_gateway_route_table_id=route_table.id,
            opts=child,
        )
        # VPC route tables cannot learn from a TGW, so the GCP ranges are routed to it here.
        for t, table in enumerate(args.aws_route_table_ids):
            for c, cidr in enumerate(args.gcp_cidrs):
                aws.ec2.Route(
                    f"{name}-to-gcp-{t}-{c}",
                    route_table_id=table,
                    destination_cidr_block=cidr,
                    transit_gateway_id=tgw.id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]),
                )
        return tgw, route_table

    @staticmethod
    def _pre_shared_key(name: str, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        password = random.RandomPassword(
            name,
            length=PSK_LENGTH,
            special=True,
            override_special=PSK_SPECIALS,
            min_lower=1,
            min_upper=1,
            min_numeric=1,
            opts=child,
        )
        return pulumi.Output.secret(password.result.apply(aws_safe_psk))


@dataclass(frozen=True)
class _AwsTunnel:
    outside: pulumi.Output[str]
    gcp_inside: pulumi.Output[str]
    aws_inside: pulumi.Output[str]


def _tunnel(connection: aws.ec2.VpnConnection, number: int) -> _AwsTunnel:
    """The addresses of one AWS tunnel (AWS exposes them as tunnel1_* / tunnel2_*)."""

    def attribute(suffix: str) -> pulumi.Output[str]:
        value: pulumi.Output[str | None] = getattr(connection, f"tunnel{number}_{suffix}")
        return value.apply(required(f"tunnel {number} {suffix.replace('_', ' ')}"))

    return _AwsTunnel(
        outside=attribute("address"),
        gcp_inside=attribute("cgw_inside_address"),
        aws_inside=attribute("vgw_inside_address"),
    )
