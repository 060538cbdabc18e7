"""EKS, GKE and GPU pool rules."""

import pytest

from policy.clusters import EKS_CLUSTER_HARDENED, GKE_CLUSTER_HARDENED, GPU_POOL_TAINTED
from tests.policy.builders import REMOVE, changed, messages, resource

EKS = {
    "roleArn": "arn:aws:iam::111111111111:role/eks",
    "vpcConfig": {
        "subnetIds": ["subnet-1", "subnet-2"],
        "endpointPrivateAccess": True,
        "endpointPublicAccess": True,
        "publicAccessCidrs": ["203.0.113.0/24"],
    },
    "encryptionConfig": {
        "resources": ["secrets"],
        "provider": {"keyArn": "arn:aws:kms:us-east-1:111111111111:key/abc"},
    },
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "scheduler"],
}
GKE = {
    "location": "us-central1",
    "privateClusterConfig": {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": True,
        "masterIpv4CidrBlock": "172.16.0.0/28",
    },
    "masterAuthorizedNetworksConfig": {
        "cidrBlocks": [{"cidrBlock": "203.0.113.0/24", "displayName": "admin-1"}]
    },
    "workloadIdentityConfig": {"workloadPool": "acme.svc.id.goog"},
    "enableShieldedNodes": True,
    "databaseEncryption": {"state": "ENCRYPTED", "keyName": "projects/p/.../cryptoKeys/k"},
}
EKS_GPU_GROUP = {
    "clusterName": "public-eks",
    "amiType": "AL2023_x86_64_NVIDIA",
    "instanceTypes": ["g6.2xlarge"],
    "scalingConfig": {"minSize": 1, "maxSize": 4, "desiredSize": 1},
    "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}],
}
GKE_GPU_POOL = {
    "cluster": "private-gke",
    "autoscaling": {"totalMinNodeCount": 0, "totalMaxNodeCount": 2},
    "nodeConfig": {
        "machineType": "g2-standard-8",
        "guestAccelerators": [{"type": "nvidia-l4", "count": 1}],
        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}],
    },
}


def eks(props: dict) -> list[str]:
    return messages(EKS_CLUSTER_HARDENED, resource("aws:eks/cluster:Cluster", "eks", props))


def gke(props: dict) -> list[str]:
    return messages(GKE_CLUSTER_HARDENED, resource("gcp:container/cluster:Cluster", "gke", props))


def test_a_hardened_eks_cluster_passes() -> None:
    assert eks(EKS) == []
    assert eks(changed(EKS, "vpcConfig", {"endpointPublicAccess": False})) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "encryptionConfig",
            REMOVE,
            "encryptionConfig must encrypt 'secrets' with a KMS key (provider.keyArn)",
        ),
        (
            "vpcConfig.publicAccessCidrs",
            ["203.0.113.0/24", "0.0.0.0/0"],
            "vpcConfig.publicAccessCidrs opens the API to 0.0.0.0/0",
        ),
        (
            "vpcConfig.publicAccessCidrs",
            REMOVE,
            "the public endpoint is on and vpcConfig.publicAccessCidrs is empty, which AWS reads "
            "as 0.0.0.0/0; list the admin networks or turn endpointPublicAccess off",
        ),
        (
            "enabledClusterLogTypes",
            ["api"],
            "enabledClusterLogTypes is missing audit, authenticator",
        ),
    ],
)
def test_eks_rules(path: str, value: object, message: str) -> None:
    assert eks(changed(EKS, path, value)) == [f"EKS cluster 'eks': {message}"]


def test_a_hardened_gke_cluster_passes() -> None:
    assert gke(GKE) == []
    # Reaching the control plane only through the DNS endpoint is just as closed.
    dns_only = changed(GKE, "privateClusterConfig.enablePrivateEndpoint", False)
    dns_only = changed(
        dns_only,
        "controlPlaneEndpointsConfig",
        {
            "dnsEndpointConfig": {"allowExternalTraffic": True},
            "ipEndpointsConfig": {"enabled": False},
        },
    )
    assert gke(dns_only) == []
    # The provider defaults shielded nodes to on.
    assert gke(changed(GKE, "enableShieldedNodes", REMOVE)) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "privateClusterConfig.enablePrivateNodes",
            False,
            "privateClusterConfig.enablePrivateNodes must be true",
        ),
        (
            "privateClusterConfig.enablePrivateEndpoint",
            False,
            "the control plane has a public IP endpoint; set "
            "privateClusterConfig.enablePrivateEndpoint or reach it through the DNS endpoint "
            "with controlPlaneEndpointsConfig.ipEndpointsConfig.enabled false",
        ),
        (
            "masterAuthorizedNetworksConfig.cidrBlocks.0",
            {"cidrBlock": "0.0.0.0/0", "displayName": "anyone"},
            "masterAuthorizedNetworksConfig.cidrBlocks entry 'anyone' is 0.0.0.0/0",
        ),
        (
            "workloadIdentityConfig",
            REMOVE,
            "workloadIdentityConfig.workloadPool must be set ('<project>.svc.id.goog')",
        ),
        ("enableShieldedNodes", False, "enableShieldedNodes is false"),
        (
            "databaseEncryption.state",
            "DECRYPTED",
            "databaseEncryption must be state 'ENCRYPTED' with keyName set to a Cloud KMS key "
            "(CMEK for etcd secrets)",
        ),
    ],
)
def test_gke_rules(path: str, value: object, message: str) -> None:
    assert gke(changed(GKE, path, value)) == [f"GKE cluster 'gke': {message}"]


def test_gke_node_pools_keep_private_nodes() -> None:
    pool = resource("gcp:container/nodePool:NodePool", "pool", GKE_GPU_POOL)
    assert messages(GKE_CLUSTER_HARDENED, pool) == []
    public = changed(GKE_GPU_POOL, "networkConfig", {"enablePrivateNodes": False})
    assert messages(
        GKE_CLUSTER_HARDENED, resource("gcp:container/nodePool:NodePool", "pool", public)
    ) == ["GKE node pool 'pool': networkConfig.enablePrivateNodes is false (public node IPs)"]


def test_gpu_pools_are_tainted() -> None:
    cpu_group = changed(EKS_GPU_GROUP, "amiType", "AL2023_x86_64_STANDARD")
    cpu_group = changed(cpu_group, "instanceTypes", ["m6i.large"])
    cpu_group = changed(cpu_group, "taints", REMOVE)
    assert (
        messages(
            GPU_POOL_TAINTED,
            resource("aws:eks/nodeGroup:NodeGroup", "gpu", EKS_GPU_GROUP),
            resource("aws:eks/nodeGroup:NodeGroup", "cpu", cpu_group),
            resource("gcp:container/nodePool:NodePool", "gpu", GKE_GPU_POOL),
        )
        == []
    )


def test_untainted_gpu_pools_fail() -> None:
    # A GPU instance family gives the group away even with a custom AMI.
    custom_ami = changed(EKS_GPU_GROUP, "amiType", "CUSTOM")
    custom_ami = changed(custom_ami, "taints", [{"key": "dedicated", "effect": "NO_SCHEDULE"}])
    # Accelerator-optimized machines carry GPUs without guestAccelerators.
    a2 = changed(GKE_GPU_POOL, "nodeConfig", {"machineType": "a2-highgpu-1g"})
    prefer = changed(GKE_GPU_POOL, "nodeConfig.taints.0.effect", "PREFER_NO_SCHEDULE")
    assert messages(
        GPU_POOL_TAINTED,
        resource("aws:eks/nodeGroup:NodeGroup", "custom", custom_ami),
        resource("gcp:container/nodePool:NodePool", "a2", a2),
        resource("gcp:container/nodePool:NodePool", "soft", prefer),
    ) == [
        "EKS GPU node group 'custom': taints must include key 'nvidia.com/gpu' with effect "
        "NO_SCHEDULE, so only pods that ask for a GPU land there",
        "GKE GPU node pool 'a2': nodeConfig.taints must include key 'nvidia.com/gpu' with effect "
        "NO_SCHEDULE, so only pods that ask for a GPU land there",
        "GKE GPU node pool 'soft': nodeConfig.taints must include key 'nvidia.com/gpu' with "
        "effect NO_SCHEDULE, so only pods that ask for a GPU land there",
    ]
