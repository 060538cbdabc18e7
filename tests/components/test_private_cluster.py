"""PrivateCluster alone, under the mocks: private nodes and endpoint, internal authorised
networks only, secrets under its own key granted to the GKE agent first, Workload Identity,
and a kubeconfig that talks to the IAM-checked DNS endpoint."""

import json
import re

import pulumi
import pytest

from components.private_cluster import PrivateCluster, PrivateClusterArgs
from infra.offline import StackEvaluation, evaluate_component

CONTROL_PLANE = "172.16.0.0/28"
AUTHORIZED = {"aws-vpc-over-vpn": "10.10.0.0/16", "admin-1": "192.168.4.0/24"}


def _args(**changes: object) -> PrivateClusterArgs:
    args = dict(
        cluster_name="hybrid-x", project="hybrid-x", region="europe-west4",
        network_id="projects/hybrid-x/global/networks/private", network_name="private",
        subnetwork="projects/hybrid-x/regions/europe-west4/subnetworks/private",
        pods_range_name="pods", services_range_name="services",
        control_plane_cidr=CONTROL_PLANE, authorized_networks=AUTHORIZED,
        release_channel="STABLE", deletion_protection=False, resource_labels={"stack": "x"},
    )  # fmt: skip
    return PrivateClusterArgs(**{**args, **changes})  # type: ignore[arg-type]


def _create() -> None:
    cluster = PrivateCluster("private", _args())
    pulumi.export("kubeconfig", cluster.kubeconfig)


@pytest.fixture(scope="module")
def gke() -> StackEvaluation:
    return evaluate_component(_create)


def test_gke_is_private_and_authorises_internal_networks_only(gke: StackEvaluation) -> None:
    (cluster,) = gke.of_type("gcp:container/cluster:Cluster")
    authorized = cluster.inputs["masterAuthorizedNetworksConfig"]
    assert {b["displayName"]: b["cidrBlock"] for b in authorized["cidrBlocks"]} == AUTHORIZED
    assert authorized["gcpPublicCidrsAccessEnabled"] is False
    private = cluster.inputs["privateClusterConfig"]
    assert private["enablePrivateNodes"] is True
    assert private["enablePrivateEndpoint"] is True
    assert private["masterIpv4CidrBlock"] == CONTROL_PLANE
    assert private["masterGlobalAccessConfig"] == {"enabled": True}
    assert cluster.inputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"][
        "allowExternalTraffic"
    ]


def test_gke_is_hardened_and_labelled(gke: StackEvaluation) -> None:
    (cluster,) = gke.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["workloadIdentityConfig"] == {"workloadPool": "hybrid-x.svc.id.goog"}
    assert cluster.inputs["enableShieldedNodes"] is True
    assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster.inputs["enableIntranodeVisibility"] is True
    assert cluster.inputs["releaseChannel"] == {"channel": "STABLE"}
    assert cluster.inputs["removeDefaultNodePool"] is True
    assert cluster.inputs["deletionProtection"] is False
    assert cluster.inputs["resourceLabels"] == {"stack": "x"}


def test_secrets_use_the_cluster_key_granted_to_the_gke_agent_first(
    gke: StackEvaluation,
) -> None:
    (cluster,) = gke.of_type("gcp:container/cluster:Cluster")
    (key,) = gke.of_type("gcp:kms/cryptoKey:CryptoKey")
    (grant,) = gke.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert cluster.inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key.id}
    assert grant.inputs["cryptoKeyId"] == key.id
    assert re.fullmatch(
        r"serviceAccount:service-\d+@container-engine-robot\.iam\.gserviceaccount\.com",
        grant.inputs["member"],
    )
    assert grant.urn in cluster.dependencies
    assert key.inputs["rotationPeriod"] == "7776000s"


def test_the_kubeconfig_talks_to_the_dns_endpoint(gke: StackEvaluation) -> None:
    (cluster,) = gke.of_type("gcp:container/cluster:Cluster")
    server = json.loads(gke.outputs["kubeconfig"])["clusters"][0]["cluster"]["server"]
    endpoint = cluster.outputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["endpoint"]
    assert server == f"https://{endpoint}"
    assert server.endswith(".gke.goog")
    assert "kubeconfig" in gke.secret_outputs
    (provider,) = gke.of_type("pulumi:providers:kubernetes")
    assert "kubeconfig" in provider.secret_inputs


def test_the_control_plane_routes_back_over_the_vpn(gke: StackEvaluation) -> None:
    (cluster,) = gke.of_type("gcp:container/cluster:Cluster")
    (peering,) = gke.of_type("gcp:compute/networkPeeringRoutesConfig:NetworkPeeringRoutesConfig")
    assert peering.inputs["peering"] == cluster.outputs["privateClusterConfig"]["peeringName"]
    assert peering.inputs["exportCustomRoutes"] is True


def test_a_public_authorised_network_is_refused() -> None:
    with pytest.raises(ValueError, match="admits only internal ranges"):
        evaluate_component(
            lambda: PrivateCluster("private", _args(authorized_networks={"x": "8.8.8.0/24"}))
        )
