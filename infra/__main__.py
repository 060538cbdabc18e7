"""The stack program: compose the components from the typed stack config, export outputs.

Resource details live in ``components/``; this file only decides what exists and how
the pieces connect.
"""

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.aws_network import AwsNetwork, AwsNetworkArgs
from components.cluster_addons import (
    AwsClusterAddons,
    AwsClusterAddonsArgs,
    GcpClusterAddons,
    GcpClusterAddonsArgs,
    MonitoringAddons,
)
from components.encrypted_bucket import (
    AwsEncryptedBucket,
    AwsEncryptedBucketArgs,
    GcpEncryptedBucket,
    GcpEncryptedBucketArgs,
)
from components.gcp_network import GcpNetwork, GcpNetworkArgs
from components.gpu_node_pool import (
    AwsGpuNodePool,
    AwsGpuNodePoolArgs,
    GcpGpuNodePool,
    GcpGpuNodePoolArgs,
    GpuPoolSpec,
)
from components.hybrid_vpn import HybridVpn, HybridVpnArgs
from components.private_cluster import PrivateCluster, PrivateClusterArgs, is_internal
from components.public_cluster import PublicCluster, PublicClusterArgs
from components.repository_retention import gcs_lifecycle_rules
from components.serving_pki import ServingPki, ServingPkiArgs
from infra.config import read_stack_config
from infra.triton_sites import SiteInfrastructure, serve, site_repositories

config = read_stack_config()
public, private = config.public, config.private
cluster_name = f"hybrid-{config.stack}"
labels = {"project": "hybrid-inference", "stack": config.stack}
# The rendered model repositories (`make models`), verified before anything is planned.
repositories = site_repositories(config)


aws_provider = aws.Provider("aws", region=public.region, default_tags={"tags": labels})
gcp_provider = gcp.Provider(
    "gcp", project=private.project, region=private.region, default_labels=labels
)
on_aws = pulumi.ResourceOptions(providers=[aws_provider])
on_gcp = pulumi.ResourceOptions(providers=[gcp_provider])

# Networks and the VPN between them ------------------------------------------------------
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
    pulumi.ResourceOptions(providers=[aws_provider, gcp_provider]),
)

# Clusters and their GPU pools -------------------------------------------------------------
public_cluster = PublicCluster(
    "public",
    PublicClusterArgs(
        cluster_name=cluster_name,
        kubernetes_version=public.kubernetes_version,
        region=public.region,
        subnet_ids=aws_network.private_subnet_ids,
        public_access_cidrs=config.admin_cidrs,
        admin_principals=config.eks_admin_principals,
        deletion_protection=config.deletion_protection,
        log_retention_days=config.log_retention_days,
    ),
    on_aws,
)
private_cluster = PrivateCluster(
    "private",
    PrivateClusterArgs(
        cluster_name=cluster_name,
        project=private.project,
        region=private.region,
        network_id=gcp_network.network_id,
        network_name=gcp_network.network_name,
        subnetwork=gcp_network.subnet_self_link,
        pods_range_name=gcp_network.pods_range_name,
        services_range_name=gcp_network.services_range_name,
        control_plane_cidr=private.control_plane_cidr,
        # The IP endpoint is private: only the AWS VPC (over the VPN) and internally
        # routed admin ranges; everyone else comes through the IAM-checked DNS endpoint.
        authorized_networks={
            "aws-vpc-over-vpn": public.vpc_cidr,
            **{
                f"admin-{i}": cidr
                for i, cidr in enumerate(config.admin_cidrs, start=1)
                if is_internal(cidr)
            },
        },
        release_channel=private.release_channel,
        deletion_protection=config.deletion_protection,
        resource_labels=labels,
    ),
    pulumi.ResourceOptions(providers=[gcp_provider], depends_on=[vpn]),
)
public_gpu_pools = [
    AwsGpuNodePool(
        f"public-{pool.name}", AwsGpuNodePoolArgs(GpuPoolSpec.of(pool), public_cluster), on_aws
    )
    for pool in public.gpu_pools
]
private_gpu_pools = [
    GcpGpuNodePool(
        f"private-{pool.name}", GcpGpuNodePoolArgs(GpuPoolSpec.of(pool), private_cluster), on_gcp
    )
    for pool in private.gpu_pools
]

# What the stack's own objects need on each cluster, unless the cluster already runs it ----
monitoring = MonitoringAddons(
    namespace=config.serving.monitoring_namespace,
    kube_prometheus_stack=config.addons.kube_prometheus_stack,
    prometheus_adapter=config.addons.prometheus_adapter,
)
public_addons = AwsClusterAddons(
    "public-addons",
    AwsClusterAddonsArgs(
        cluster=public_cluster,
        monitoring=monitoring,
        cluster_autoscaler=config.addons.cluster_autoscaler,
        node_pools=public_gpu_pools,
    ),
    on_aws,
)
private_addons = GcpClusterAddons(
    "private-addons", GcpClusterAddonsArgs(cluster=private_cluster, monitoring=monitoring), on_gcp
)

# Model buckets and the serving PKI ----------------------------------------------------------
public_bucket = AwsEncryptedBucket(
    "public-models",
    AwsEncryptedBucketArgs(
        deletion_protection=config.deletion_protection,
        log_retention_days=config.log_retention_days,
    ),
    on_aws,
)
private_bucket = GcpEncryptedBucket(
    "private-models",
    GcpEncryptedBucketArgs(
        project=private.project,
        location=private.region,
        deletion_protection=config.deletion_protection,
        lifecycle_rules=gcs_lifecycle_rules(
            repositories["private"].manifest.content_hash, config.serving.retention_days
        ),
    ),
    on_gcp,
)
pki = ServingPki("serving-pki", ServingPkiArgs())

# Triton on both clusters --------------------------------------------------------------------
served = serve(
    config,
    repositories,
    public=SiteInfrastructure(public_cluster, public_bucket, on_aws, public_addons.releases),
    private=SiteInfrastructure(private_cluster, private_bucket, on_gcp, private_addons.releases),
    pki=pki,
)

# Outputs ----------------------------------------------------------------------------------
pulumi.export("publicClusterName", public_cluster.name)
pulumi.export("publicKubeconfig", public_cluster.kubeconfig)
pulumi.export("publicOidcIssuer", public_cluster.oidc_issuer)
pulumi.export("privateClusterName", private_cluster.name)
pulumi.export("privateKubeconfig", private_cluster.kubeconfig)
pulumi.export("privateClusterDnsEndpoint", private_cluster.dns_endpoint)
pulumi.export("publicBucketName", public_bucket.bucket_name)
pulumi.export("publicBucketUrl", public_bucket.url)
pulumi.export("privateBucketName", private_bucket.bucket_name)
pulumi.export("privateBucketUrl", private_bucket.url)
pulumi.export("transitGatewayId", vpn.transit_gateway_id)
pulumi.export("haVpnGatewayId", vpn.ha_vpn_gateway_id)
pulumi.export("vpnTunnels", [tunnel.as_output() for tunnel in vpn.tunnels])
pulumi.export("caCertPem", pki.ca_cert_pem)
# The private site answers only clients holding a certificate of the serving CA.
pulumi.export("clientCertPem", pulumi.Output.secret(pki.client_cert_pem))
pulumi.export("clientKeyPem", pulumi.Output.secret(pki.client_key_pem))
pulumi.export("modelRepositories", {site: s.upload.url for site, s in served.items()})
pulumi.export("tritonEndpoints", {site: s.server.endpoint for site, s in served.items()})
