"""The private site's GKE cluster.

Nodes have no public addresses. The control plane is reached three ways, each narrowly:

- the **DNS-based endpoint** (``gke-<id>.<region>.gke.goog``), authorised by IAM
  (``container.clusters.connect``) on every request; this is how CI and ``pulumi up``
  reach the API from outside GCP, and what the exported kubeconfig uses;
- the **private IP endpoint**, from the VPC and over the HA VPN (global access on), only
  for the authorised networks: the AWS VPC and any internally routed admin ranges.

There is no public IP endpoint. GKE admits only internal ranges as authorised networks
of a private endpoint ("not a reserved network, which is required for private
endpoints"), so admins outside the VPN use the DNS endpoint, like CI.

Kubernetes secrets are encrypted with a CMEK key; the GKE service agent is granted
on that key before the cluster exists (creation fails otherwise).
"""

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.gcp_kms import agent_key
from components.kubeconfig import cluster_provider, exec_kubeconfig
from components.values import required

INTERNAL_RANGES = tuple(
    ipaddress.IPv4Network(c)
    for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
NODE_ROLES = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")


@dataclass(frozen=True)
class PrivateClusterArgs:
    cluster_name: str
    project: str
    region: str
    network_id: pulumi.Input[str]
    network_name: pulumi.Input[str]
    subnetwork: pulumi.Input[str]
    pods_range_name: str
    services_range_name: str
    control_plane_cidr: str
    """The control plane's /28 in Google's peered VPC."""
    authorized_networks: Mapping[str, str]
    """Display name -> internal CIDR allowed on the private IP endpoint."""
    release_channel: str = "REGULAR"
    deletion_protection: bool = True
    resource_labels: Mapping[str, str] = field(default_factory=dict)
    """GKE labels on the cluster's own Google resources (cost reports, inventory)."""
    system_machine_type: str = "e2-standard-4"
    system_max_nodes: int = 6


class PrivateCluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    workload_pool: pulumi.Output[str]
    """``<project>.svc.id.goog``: Kubernetes service accounts map to IAM through it. An output
    of the cluster, because the pool exists only once a Workload Identity cluster does."""
    cluster_id: pulumi.Output[str]
    """``projects/<p>/locations/<region>/clusters/<name>``: what node pools attach to."""
    location: str
    dns_endpoint: pulumi.Output[str]
    node_service_account: pulumi.Output[str]
    kms_key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: PrivateClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:private_cluster:PrivateCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        public = [c for c in args.authorized_networks.values() if not is_internal(c)]
        if public:
            raise ValueError(
                f"{name}: GKE's private endpoint admits only internal ranges, not {public}; "
                "reach the control plane from outside through the DNS endpoint instead"
            )

        project = gcp.organizations.get_project_output(
            project_id=args.project, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        gke_agent = project.number.apply(
            lambda n: f"serviceAccount:service-{n}@container-engine-robot.iam.gserviceaccount.com"
        )
        key, key_grant = agent_key(
            self,
            ring=f"{name}-keys",
            key=f"{name}-secrets-key",
            grant=f"{name}-gke-agent-key",
            location=args.region,
            agent=gke_agent,
            protect=args.deletion_protection,
        )

        # Nodes run as a dedicated service account with only what nodes need, not as the
        # project's default compute account (Editor).
        nodes = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=f"{args.cluster_name}-nodes"[:30],
            display_name=f"GKE nodes of {args.cluster_name}",
            project=args.project,
            opts=child,
        )
        node_roles = [
            gcp.projects.IAMMember(
                f"{name}-nodes-{role.rsplit('/', 1)[1]}",
                project=args.project,
                role=role,
                member=nodes.member,
                opts=child,
            )
            for role in NODE_ROLES
        ]

        cluster = gcp.container.Cluster(
            f"{name}-gke",
            name=args.cluster_name,
            project=args.project,
            location=args.region,
            network=args.network_id,
            subnetwork=args.subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy={
                "cluster_secondary_range_name": args.pods_range_name,
                "services_secondary_range_name": args.services_range_name,
            },
            # The default pool cannot be configured fully; it is created (as GKE
            # requires) and removed at once in favour of the pools below.
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config={
                "service_account": nodes.email,
                "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                "shielded_instance_config": {
                    "enable_secure_boot": True,
                    "enable_integrity_monitoring": True,
                },
                "workload_metadata_config": {"mode": "GKE_METADATA"},
            },
            private_cluster_config={
                "enable_private_nodes": True,
                "enable_private_endpoint": True,
                "master_ipv4_cidr_block": args.control_plane_cidr,
                "master_global_access_config": {"enabled": True},
            },
            control_plane_endpoints_config={
                "dns_endpoint_config": {"allow_external_traffic": True},
                "ip_endpoints_config": {"enabled": True},
            },
            master_authorized_networks_config={
                "cidr_blocks": [
                    {"display_name": label, "cidr_block": cidr}
                    for label, cidr in args.authorized_networks.items()
                ],
                "gcp_public_cidrs_access_enabled": False,
                "private_endpoint_enforcement_enabled": True,
            },
            master_auth={"client_certificate_config": {"issue_client_certificate": False}},
            workload_identity_config={"workload_pool": f"{args.project}.svc.id.goog"},
            enable_shielded_nodes=True,
            enable_legacy_abac=False,
            database_encryption={"state": "ENCRYPTED", "key_name": key.id},
            release_channel={"channel": args.release_channel},
            datapath_provider="ADVANCED_DATAPATH",
            # Pod-to-pod traffic on one node goes through the VPC too, so flow logs and
            # firewall rules see it.
            enable_intranode_visibility=True,
            resource_labels=dict(args.resource_labels),
            logging_config={"enable_components": ["SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"]},
            monitoring_config={
                "enable_components": ["SYSTEM_COMPONENTS"],
                "managed_prometheus": {"enabled": True},
            },
            deletion_protection=args.deletion_protection,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.deletion_protection,
                depends_on=[key_grant, *node_roles],
            ),
        )
        # The control plane lives in a Google-owned VPC peered with ours; exporting our
        # custom (BGP-learned) routes lets it answer clients in the AWS VPC.
        gcp.compute.NetworkPeeringRoutesConfig(
            f"{name}-control-plane-routes",
            network=args.network_name,
            peering=cluster.private_cluster_config.apply(lambda c: c.peering_name).apply(
                required("GKE control-plane peering name")
            ),
            import_custom_routes=False,
            export_custom_routes=True,
            opts=child,
        )
        system_pool = gcp.container.NodePool(
            f"{name}-system",
            cluster=cluster.id,
            location=args.region,
            initial_node_count=1,
            autoscaling={
                "total_min_node_count": 1,
                "total_max_node_count": args.system_max_nodes,
                "location_policy": "BALANCED",
            },
            node_config=gke_node_config(
                args.system_machine_type, nodes.email, labels={"hybrid.dev/pool": "system"}
            ),
            management={"auto_repair": True, "auto_upgrade": True},
            opts=child,
        )

        self.name = cluster.name
        # Taken from the cluster, so every IAM member naming the pool waits for the cluster:
        # on a fresh project GCP answers "Identity Pool does not exist" until then.
        self.workload_pool = cluster.workload_identity_config.apply(
            lambda c: c.workload_pool if c else None
        ).apply(required("GKE workload pool"))
        self.cluster_id = cluster.id
        self.location = args.region
        self.node_service_account = nodes.email
        self.kms_key_id = key.id
        self.dns_endpoint = cluster.control_plane_endpoints_config.apply(
            lambda c: c.dns_endpoint_config.endpoint if c and c.dns_endpoint_config else None
        ).apply(required("GKE DNS endpoint"))
        self.kubeconfig = pulumi.Output.secret(gke_kubeconfig(cluster.name, self.dns_endpoint))
        self.provider = cluster_provider(name, self.kubeconfig, self, [system_pool])
        self.register_outputs(
            {
                "name": self.name,
                "kubeconfig": self.kubeconfig,
                "workloadPool": self.workload_pool,
                "dnsEndpoint": self.dns_endpoint,
                "nodeServiceAccount": self.node_service_account,
            }
        )


def is_internal(cidr: str) -> bool:
    """Whether the range is internal (RFC 1918 or shared 100.64/10), as a private endpoint's
    authorised networks must be; other ranges are treated as internet addresses."""
    network = ipaddress.IPv4Network(cidr)
    return any(network.subnet_of(internal) for internal in INTERNAL_RANGES)


def gke_node_config(
    machine_type: str,
    service_account: pulumi.Input[str],
    *,
    labels: Mapping[str, str],
    taints: Sequence[gcp.container.NodePoolNodeConfigTaintArgsDict] = (),
    accelerators: Sequence[gcp.container.NodePoolNodeConfigGuestAcceleratorArgsDict] = (),
    spot: bool = False,
    disk_gb: int = 100,
) -> gcp.container.NodePoolNodeConfigArgsDict:
    """Node settings every pool shares: its own service account, shielded VMs, the GKE
    metadata server (pods see only their Workload Identity, never the node's)."""
    return {
        "machine_type": machine_type,
        "service_account": service_account,
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "labels": dict(labels),
        "taints": list(taints),
        "guest_accelerators": list(accelerators),
        "spot": spot,
        "disk_type": "pd-balanced",
        "disk_size_gb": disk_gb,
        "metadata": {"disable-legacy-endpoints": "true"},
        "shielded_instance_config": {
            "enable_secure_boot": True,
            "enable_integrity_monitoring": True,
        },
        "workload_metadata_config": {"mode": "GKE_METADATA"},
    }


def gke_kubeconfig(
    cluster_name: pulumi.Input[str], dns_endpoint: pulumi.Input[str]
) -> pulumi.Output[str]:
    """A kubeconfig for the DNS-based endpoint: TLS with a publicly trusted certificate,
    and a short-lived Google token from ``gke-gcloud-auth-plugin`` on every call."""
    return exec_kubeconfig(
        cluster_name,
        {"server": pulumi.Output.concat("https://", dns_endpoint)},
        "gke-gcloud-auth-plugin",
        {"provideClusterInfo": True},
    )
