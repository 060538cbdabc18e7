"""The stack program: compose the components from the typed stack config, export outputs."""

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.aws_network import AwsNetwork, AwsNetworkArgs
from components.gcp_network import GcpNetwork, GcpNetworkArgs
from components.hybrid_vpn import HybridVpn, HybridVpnArgs
from infra.config import read_stack_config

config = read_stack_config()
public, private = config.public, config.private
cluster_name = f"hybrid-{config.stack}"
labels = {"project": "hybrid-inference", "stack": config.stack}

aws_provider = aws.Provider("aws", region=public.region, default_tags={"tags": labels})
gcp_provider = gcp.Provider(
    "gcp", project=private.project, region=private.region, default_labels=labels
)
on_aws = pulumi.ResourceOptions(providers=[aws_provider])
on_gcp = pulumi.ResourceOptions(providers=[gcp_provider])
on_both = pulumi.ResourceOptions(providers=[aws_provider, gcp_provider])

aws_network = AwsNetwork(
    "public",
    AwsNetworkArgs(
        cidr=public.vpc_cidr,
        availability_zones=public.availability_zones,
        cluster_name=cluster_name,
        flow_log_retention_days=config.log_retention_days,
    ),
    on_aws,
)
gcp_network = GcpNetwork(
    "private",
    GcpNetworkArgs(
        region=private.region,
        subnet_cidr=private.subnet_cidr,
        pods_cidr=private.pods_cidr,
        services_cidr=private.services_cidr,
        control_plane_cidr=private.control_plane_cidr,
        peer_cidrs=[public.vpc_cidr],
    ),
    on_gcp,
)
vpn = HybridVpn(
    "vpn",
    HybridVpnArgs(
        aws_vpc_id=aws_network.vpc_id,
        aws_subnet_ids=aws_network.private_subnet_ids,
        aws_route_table_ids=aws_network.private_route_table_ids,
        aws_asn=public.asn,
        gcp_network=gcp_network.network_id,
        gcp_region=private.region,
        gcp_asn=private.asn,
        gcp_cidrs=[
            private.subnet_cidr,
            private.pods_cidr,
            private.services_cidr,
            private.control_plane_cidr,
        ],
        gcp_advertised_cidrs=[private.control_plane_cidr],
        inside_cidrs=config.vpn_inside_cidrs,
    ),
    on_both,
)

pulumi.export("vpnTunnels", [t.as_output() for t in vpn.tunnels])
