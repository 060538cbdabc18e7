"""A GPU node pool from one cloud-neutral spec: one class per cloud.

Both clouds get the same contract: nodes carry the taint ``nvidia.com/gpu=present:
NoSchedule`` (only pods that ask for GPUs land there) and the labels
``hybrid.dev/accelerator`` and ``hybrid.dev/compute-capability``, which Triton's
Deployment uses to pick the TensorRT plans built for that architecture.

- EKS: a managed node group on the AL2023 NVIDIA AMI (driver and container toolkit
  baked in), IMDSv2-only launch template, spot or on-demand. Its Auto Scaling group
  carries the Cluster Autoscaler's node-template tags (labels, taint, GPUs), so that the
  autoscaler can scale it up from zero nodes: with none running, the tags are all it
  knows of the nodes it would add.
- GKE: a node pool with ``guest_accelerators`` and GKE-managed driver installation,
  the GKE metadata server, shielded VMs, spot or on-demand, autoscaled over the region.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.private_cluster import PrivateCluster, gke_node_config
from components.public_cluster import PublicCluster, eks_launch_template
from components.values import required
from hybrid.config import GpuPoolConfig
from hybrid.gpu_scheduling import (
    ACCELERATOR_LABEL,
    CAPACITY_LABEL,
    COMPUTE_CAPABILITY_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_EFFECT,
    GPU_TAINT_EFFECT_CLOUD,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
)
from hybrid.gpus import GPU_TYPES

EKS_GPU_LABEL = "k8s.amazonaws.com/accelerator"
"""The label by which the Cluster Autoscaler on AWS knows a node has GPUs: until the device
plugin advertises them it treats the node as not ready yet, instead of adding another."""
NODE_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
GKE_ZONES_PER_REGION = 3
"""A regional GKE pool spreads over the region's zones (three in every GPU region)."""
TYPE = "hybrid:gpu_node_pool:GpuNodePool"
"""The concept's token, shared by both clouds' classes (see ``components/__init__.py``)."""


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
    disk_gib: int = 200
    """Room for the Triton image and the model repository cache."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"GPU pool {self.name}: need 0 <= min <= desired <= max")

    @classmethod
    def of(cls, pool: GpuPoolConfig) -> "GpuPoolSpec":
        """The spec of a pool as the stack config declares it."""
        return cls(
            name=pool.name,
            accelerator=pool.gpu.name,
            compute_capability=pool.gpu.compute_capability,
            machine_type=pool.machine_type,
            min_size=pool.min_size,
            max_size=pool.max_size,
            desired_size=pool.desired_size,
            spot=pool.spot,
            gpus_per_node=pool.gpus_per_node,
        )

    @property
    def labels(self) -> dict[str, str]:
        return {
            ACCELERATOR_LABEL: self.accelerator,
            COMPUTE_CAPABILITY_LABEL: self.compute_capability,
            CAPACITY_LABEL: "spot" if self.spot else "on-demand",
        }


@dataclass(frozen=True)
class AwsGpuNodePoolArgs:
    spec: GpuPoolSpec
    cluster: PublicCluster


class AwsGpuNodePool(pulumi.ComponentResource):
    """An EKS managed node group, its Auto Scaling group tagged for scaling up from zero."""

    spec: GpuPoolSpec
    pool_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: AwsGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self.spec = spec = args.spec
        self.pool_name = self._node_group(name, spec, args.cluster)
        self.register_outputs({"poolName": self.pool_name, "labels": spec.labels})

    def _node_group(
        self, name: str, spec: GpuPoolSpec, cluster: PublicCluster
    ) -> pulumi.Output[str]:
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
            labels=eks_labels(spec),
            taints=[
                {"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": GPU_TAINT_EFFECT_CLOUD}
            ],
            launch_template=eks_launch_template(name, spec.disk_gib, self),
            update_config={"max_unavailable": 1},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=cluster.core_addons,
                # The cluster autoscaler owns the current size once the group exists.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        group_name = group.resources.apply(_auto_scaling_group).apply(
            required("EKS node group's Auto Scaling group")
        )
        for key, value in node_template_tags(spec).items():
            aws.autoscaling.Tag(
                f"{name}-{_slug(key.removeprefix(NODE_TEMPLATE + '/'))}",
                autoscaling_group_name=group_name,
                # A hint for the autoscaler, not a tag the instances need.
                tag={"key": key, "value": value, "propagate_at_launch": False},
                opts=pulumi.ResourceOptions(parent=self),
            )
        return group.node_group_name


@dataclass(frozen=True)
class GcpGpuNodePoolArgs:
    spec: GpuPoolSpec
    cluster: PrivateCluster


class GcpGpuNodePool(pulumi.ComponentResource):
    """A GKE node pool with guest accelerators and GKE-managed drivers, autoscaled."""

    spec: GpuPoolSpec
    pool_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: GcpGpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self.spec = spec = args.spec
        cluster = args.cluster
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
                taints=[
                    {
                        "key": GPU_TAINT_KEY,
                        "value": GPU_TAINT_VALUE,
                        "effect": GPU_TAINT_EFFECT_CLOUD,
                    }
                ],
                accelerators=[
                    {
                        "type": gce_accelerator(spec),
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
        self.pool_name = pool.name
        self.register_outputs({"poolName": self.pool_name, "labels": spec.labels})


def gce_accelerator(spec: GpuPoolSpec) -> str:
    """The GCE accelerator type of the spec's GPU (``nvidia-l4``), from the GPU table."""
    gpu = GPU_TYPES.get(spec.accelerator)
    if gpu is None or gpu.gcp_accelerator is None:
        raise ValueError(f"GPU pool {spec.name}: GCP offers no {spec.accelerator} accelerator")
    return gpu.gcp_accelerator


def eks_labels(spec: GpuPoolSpec) -> dict[str, str]:
    return {**spec.labels, EKS_GPU_LABEL: spec.accelerator}


def node_template_tags(spec: GpuPoolSpec) -> dict[str, str]:
    """The Cluster Autoscaler's view of a node the EKS pool would add: its labels, taint
    and GPUs (``k8s.io/cluster-autoscaler/node-template/...`` ASG tags)."""
    return {
        **{f"{NODE_TEMPLATE}/label/{key}": value for key, value in eks_labels(spec).items()},
        f"{NODE_TEMPLATE}/taint/{GPU_TAINT_KEY}": f"{GPU_TAINT_VALUE}:{GPU_TAINT_EFFECT}",
        f"{NODE_TEMPLATE}/resources/{GPU_RESOURCE}": str(spec.gpus_per_node),
    }


def _auto_scaling_group(resources: Sequence[aws.eks.outputs.NodeGroupResource]) -> str | None:
    groups = resources[0].autoscaling_groups if resources else None
    return groups[0].name if groups else None


def _slug(tag_key: str) -> str:
    """``label/hybrid.dev/accelerator`` -> ``label-hybrid-dev-accelerator``."""
    return tag_key.replace("/", "-").replace(".", "-")
