"""The private site's VPC: a custom-mode network with one subnet carrying the GKE pod and
service ranges, Private Google Access, Cloud NAT for the private nodes, and firewall rules
that admit the other site only on the serving ports."""

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.addon_charts import PROMETHEUS_ADAPTER_PORT
from hybrid.triton import PORTS

PODS_RANGE = "pods"
SERVICES_RANGE = "services"
# Google Cloud load balancer and health-check probes come from these ranges.
HEALTH_CHECK_RANGES = ("35.191.0.0/16", "130.211.0.0/22")
# Admission webhooks and aggregated APIs (prometheus-adapter's custom metrics) that the
# control plane calls on nodes (GKE's own rule covers 443 and 10250).
WEBHOOK_PORTS = ("8443", "9443", "15017", str(PROMETHEUS_ADAPTER_PORT))


@dataclass(frozen=True)
class GcpNetworkArgs:
    region: str
    subnet_cidr: str
    """Primary range: the GKE nodes."""
    pods_cidr: str
    services_cidr: str
    control_plane_cidr: str
    """The GKE control plane's /28 (source of webhook calls to nodes)."""
    peer_cidrs: Sequence[str]
    """Ranges of the other site (the AWS VPC), admitted on ``serving_ports`` only."""
    serving_ports: Sequence[int] = (PORTS["http"], PORTS["grpc"])
    """Triton HTTP and gRPC; the metrics port (8002) is deliberately not reachable cross-site."""


class GcpNetwork(pulumi.ComponentResource):
    network_id: pulumi.Output[str]
    network_name: pulumi.Output[str]
    subnet_self_link: pulumi.Output[str]
    pods_range_name: str
    services_range_name: str

    def __init__(
        self, name: str, args: GcpNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:gcp_network:GcpNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        network = gcp.compute.Network(
            f"{name}-vpc",
            auto_create_subnetworks=False,
            # Global dynamic routing: routes learned over the VPN reach every region.
            routing_mode="GLOBAL",
            opts=child,
        )
        subnet = gcp.compute.Subnetwork(
            f"{name}-nodes",
            network=network.id,
            region=args.region,
            ip_cidr_range=args.subnet_cidr,
            private_ip_google_access=True,
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": args.pods_cidr},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": args.services_cidr},
            ],
            log_config={
                "aggregation_interval": "INTERVAL_5_SEC",
                "flow_sampling": 0.5,
                "metadata": "INCLUDE_ALL_METADATA",
            },
            opts=child,
        )
        router = gcp.compute.Router(
            f"{name}-nat-router", network=network.id, region=args.region, opts=child
        )
        gcp.compute.RouterNat(
            f"{name}-nat",
            router=router.name,
            region=args.region,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=child,
        )

        ports = [str(p) for p in args.serving_ports]
        self._ingress(name, "from-peer-site", network, args.peer_cidrs, ports, child)
        self._ingress(name, "health-checks", network, HEALTH_CHECK_RANGES, ports, child)
        self._ingress(
            name, "control-plane-webhooks", network, [args.control_plane_cidr], WEBHOOK_PORTS,
            child,
        )  # fmt: skip

        self.network_id = network.id
        self.network_name = network.name
        self.subnet_self_link = subnet.self_link
        self.pods_range_name = PODS_RANGE
        self.services_range_name = SERVICES_RANGE
        self.register_outputs(
            {
                "networkId": self.network_id,
                "networkName": self.network_name,
                "subnetSelfLink": self.subnet_self_link,
            }
        )

    @staticmethod
    def _ingress(
        name: str,
        role: str,
        network: gcp.compute.Network,
        sources: Sequence[str],
        ports: Sequence[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        gcp.compute.Firewall(
            f"{name}-allow-{role}",
            network=network.id,
            direction="INGRESS",
            source_ranges=list(sources),
            allows=[{"protocol": "tcp", "ports": list(ports)}],
            log_config={"metadata": "INCLUDE_ALL_METADATA"},
            opts=child,
        )
