"""A GPU node pool from one cloud-neutral spec, on EKS or on GKE.

Both clouds get the same contract: nodes carry the taint ``nvidia.com/gpu=present:
NoSchedule`` (only pods that ask for GPUs land there) and the labels
``hybrid.dev/accelerator`` and ``hybrid.dev/compute-capability``, which the Triton
part uses to pick the TensorRT plans built for that architecture.

- EKS: a managed node group on the AL2023 NVIDIA AMI (driver and container toolkit
  baked in), IMDSv2-only launch template, spot or on-demand.
- GKE: a node pool with ``guest_accelerators`` and GKE-managed driver installation,
  the GKE metadata server, shielded VMs, spot or on-demand, autoscaled over the region.
"""

import math
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.private_cluster import PrivateCluster, gke_node_config
from components.public_cluster import PublicCluster, eks_launch_template

ACCELERATOR_LABEL = "hybrid.dev/accelerator"
COMPUTE_CAPABILITY_LABEL = "hybrid.dev/compute-capability"
CAPACITY_LABEL = "hybrid.dev/capacity"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"
GKE_ZONES_PER_REGION = 3
"""A regional GKE pool spreads over the region's zones (three in every GPU region)."""


@dataclass(frozen=True)
class GpuPoolSpec:
    """One GPU pool, described the same way for both clouds."""

    name: str
    accelerator: str
    """The GPU's catalog name (``l4``, ``a10g``)."""
    compute_capability: str
    """CUDA compute capability (``8.9``): which TensorRT plans run on these nodes."""
    machine_type: str
    """EC2 instance type or GCE machine type."""
    min_size: int
    max_size: int
    desired_size: int
    spot: bool = False
    gpus_per_node: int = 1
    gcp_accelerator: str | None = None
    """GCE accelerator type (``nvidia-l4``); required on GKE."""
    disk_gib: int = 200
    """Room for the Triton image and the model repository cache."""

    @property
    def labels(self) -> dict[str, str]:
        return {
            ACCELERATOR_LABEL: self.accelerator,
            COMPUTE_CAPABILITY_LABEL: self.compute_capability,
            CAPACITY_LABEL: "spot" if self.spot else "on-demand",
        }


@dataclass(frozen=True)
class GpuNodePoolArgs:
    spec: GpuPoolSpec
    cluster: PublicCluster | PrivateCluster
    """The cluster the pool joins; its cloud decides the implementation."""


class GpuNodePool(pulumi.ComponentResource):
    spec: GpuPoolSpec
    pool_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:gpu_node_pool:GpuNodePool", name, None, opts)
        spec = args.spec
        if not 0 <= spec.min_size <= spec.desired_size <= spec.max_size:
            raise ValueError(f"GPU pool {spec.name}: need 0 <= min <= desired <= max")
        if isinstance(args.cluster, PublicCluster):
            self.pool_name = self._eks(name, spec, args.cluster)
        else:
            self.pool_name = self._gke(name, spec, args.cluster)
        self.spec = spec
        self.register_outputs({"poolName": self.pool_name, "labels": spec.labels})

    def _eks(self, name: str, spec: GpuPoolSpec, cluster: PublicCluster) -> pulumi.Output[str]:
        group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_role_arn=cluster.node_role_arn,
            subnet_ids=list(cluster.subnet_ids),
            ami_type="AL2023_x86_64_NVIDIA",
            capacity_type="SPOT" if spec.spot else "ON_DEMAND",
            instance_types=[spec.machine_type],
            scaling_config={
                "min_size": spec.min_size,
                "max_size": spec.max_size,
                "desired_size": spec.desired_size,
            },
            labels=spec.labels,
            taints=[{"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": "NO_SCHEDULE"}],
            launch_template=eks_launch_template(name, spec.disk_gib, self),
            update_config={"max_unavailable": 1},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=cluster.core_addons,
                # The cluster autoscaler owns the current size once the group exists.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        return group.node_group_name

    def _gke(self, name: str, spec: GpuPoolSpec, cluster: PrivateCluster) -> pulumi.Output[str]:
        if spec.gcp_accelerator is None:
            raise ValueError(f"GPU pool {spec.name}: {spec.accelerator} has no GCE accelerator")
        pool = gcp.container.NodePool(
            f"{name}-nodes",
            cluster=cluster.cluster_id,
            location=cluster.location,
            # Per zone; the autoscaler takes over from there.
            initial_node_count=math.ceil(spec.desired_size / GKE_ZONES_PER_REGION),
            autoscaling={
                "total_min_node_count": spec.min_size,
                "total_max_node_count": spec.max_size,
                # Spot capacity is wherever it is; on-demand nodes are spread evenly.
                "location_policy": "ANY" if spec.spot else "BALANCED",
            },
            node_config=gke_node_config(
                spec.machine_type,
                cluster.node_service_account,
                labels=spec.labels,
                taints=[{"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": "NO_SCHEDULE"}],
                accelerators=[
                    {
                        "type": spec.gcp_accelerator,
                        "count": spec.gpus_per_node,
                        "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
                    }
                ],
                spot=spec.spot,
                disk_gb=spec.disk_gib,
            ),
            management={"auto_repair": True, "auto_upgrade": True},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["initialNodeCount"]),
        )
        return pool.name
