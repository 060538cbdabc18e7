"""Each cloud's GPU node pool alone on its cluster, under the mocks: the one taint and the
accelerator labels on the nodes, spot or on-demand, sized as the spec says; on EKS the
Auto Scaling group tagged so the Cluster Autoscaler can scale it up from zero."""

import pytest

from components.gpu_node_pool import (
    AwsGpuNodePool,
    AwsGpuNodePoolArgs,
    GcpGpuNodePool,
    GcpGpuNodePoolArgs,
    GpuPoolSpec,
    gce_accelerator,
)
from components.private_cluster import PrivateCluster, PrivateClusterArgs
from components.public_cluster import PublicCluster, PublicClusterArgs
from hybrid.gpu_scheduling import ACCELERATOR_LABEL, COMPUTE_CAPABILITY_LABEL
from infra.offline import MockedResource, StackEvaluation, evaluate_component

TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
L4 = GpuPoolSpec("l4", "l4", "8.9", "g6.2xlarge", 0, 4, 1, spot=True, gpus_per_node=1)
T4 = GpuPoolSpec("t4", "t4", "7.5", "n1-standard-8", 1, 6, 4, spot=False, gpus_per_node=2)


def _public_cluster() -> PublicCluster:
    return PublicCluster(
        "public",
        PublicClusterArgs(
            cluster_name="hybrid-x", kubernetes_version="1.33", region="eu-west-1",
            subnet_ids=["subnet-a"], public_access_cidrs=("203.0.113.0/24",),
        ),
    )  # fmt: skip


def _private_cluster() -> PrivateCluster:
    return PrivateCluster(
        "private",
        PrivateClusterArgs(
            cluster_name="hybrid-x", project="hybrid-x", region="europe-west4",
            network_id="net", network_name="private", subnetwork="subnet",
            pods_range_name="pods", services_range_name="services",
            control_plane_cidr="172.16.0.0/28", authorized_networks={},
        ),
    )  # fmt: skip


@pytest.fixture(scope="module")
def eks() -> StackEvaluation:
    return evaluate_component(
        lambda: AwsGpuNodePool("public-l4", AwsGpuNodePoolArgs(L4, _public_cluster()))
    )


@pytest.fixture(scope="module")
def gke() -> StackEvaluation:
    return evaluate_component(
        lambda: GcpGpuNodePool("private-t4", GcpGpuNodePoolArgs(T4, _private_cluster()))
    )


def _pool_children(ev: StackEvaluation) -> list[MockedResource]:
    (pool,) = ev.of_type("hybrid:gpu_node_pool:GpuNodePool")
    return ev.children_of(pool)


def test_the_eks_group_is_tainted_labelled_and_sized(eks: StackEvaluation) -> None:
    (group,) = [c for c in _pool_children(eks) if c.type == "aws:eks/nodeGroup:NodeGroup"]
    assert group.name == "public-l4-nodes"
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group.inputs["taints"] == [TAINT]
    assert group.inputs["labels"][ACCELERATOR_LABEL] == "l4"
    assert group.inputs["labels"][COMPUTE_CAPABILITY_LABEL] == "8.9"
    assert group.inputs["capacityType"] == "SPOT"
    assert group.inputs["instanceTypes"] == ["g6.2xlarge"]
    assert group.inputs["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 1}


def test_the_eks_group_tells_the_autoscaler_its_nodes(eks: StackEvaluation) -> None:
    tags = {
        t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
        for t in eks.of_type("aws:autoscaling/tag:Tag")
    }
    template = "k8s.io/cluster-autoscaler/node-template"
    assert tags[f"{template}/label/{ACCELERATOR_LABEL}"] == "l4"
    assert tags[f"{template}/taint/nvidia.com/gpu"] == "present:NoSchedule"
    assert tags[f"{template}/resources/nvidia.com/gpu"] == "1"


def test_the_gke_pool_is_tainted_labelled_and_sized(gke: StackEvaluation) -> None:
    (pool,) = [c for c in _pool_children(gke) if c.type == "gcp:container/nodePool:NodePool"]
    node = pool.inputs["nodeConfig"]
    assert node["taints"] == [TAINT]
    assert node["guestAccelerators"] == [
        {"type": "nvidia-tesla-t4", "count": 2,
         "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}
    ]  # fmt: skip
    assert node["labels"][COMPUTE_CAPABILITY_LABEL] == "7.5"
    assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert node["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableIntegrityMonitoring": True,
    }
    assert node["spot"] is False
    assert pool.inputs["autoscaling"]["totalMaxNodeCount"] == 6
    assert pool.inputs["autoscaling"]["locationPolicy"] == "BALANCED"
    assert pool.inputs["initialNodeCount"] == 2  # 4 nodes over the region's 3 zones


def test_a_gpu_gcp_does_not_offer_is_refused() -> None:
    a10g = GpuPoolSpec("a10g", "a10g", "8.6", "g2-standard-8", 0, 1, 0)
    with pytest.raises(ValueError, match="GCP offers no a10g"):
        gce_accelerator(a10g)


def test_a_spec_needs_min_desired_max_in_order() -> None:
    with pytest.raises(ValueError, match="need 0 <= min <= desired <= max"):
        GpuPoolSpec("l4", "l4", "8.9", "g6.2xlarge", 2, 4, 1)
