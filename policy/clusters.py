"""Clusters and GPU pools: encrypted secrets, closed control planes, audit logs, GPU taints."""

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from hybrid.gpu_scheduling import GPU_TAINT_KEY
from hybrid.gpus import GPU_TYPES
from policy.props import as_number, get, is_anywhere, items
from policy.rules import ResourcePolicy, ResourceRule

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"

EKS_REQUIRED_LOGS = ("api", "audit", "authenticator")
BLOCKING_EFFECTS = ("NO_SCHEDULE", "NO_EXECUTE")
GPU_AMI_MARKERS = ("NVIDIA", "GPU")
AWS_GPU_FAMILIES = frozenset(f for gpu in GPU_TYPES.values() for f in gpu.aws_instance_families)
# Accelerator-optimized GCE machines (a2-, a3-, g2-) always carry GPUs; n1- only with
# guestAccelerators, so it is left out.
GCP_GPU_MACHINE_PREFIXES = tuple(
    sorted({p for gpu in GPU_TYPES.values() for p in gpu.gcp_machine_prefixes} - {"n1-"})
)


# --- EKS -----------------------------------------------------------------------------------


def _eks_secrets_encryption(props: Mapping[str, Any], name: str) -> Iterator[str]:
    config = get(props, "encryptionConfig", default={})
    if "secrets" not in items(get(config, "resources")) or not get(config, "provider", "keyArn"):
        yield (
            f"EKS cluster '{name}': encryptionConfig must encrypt 'secrets' with a KMS key "
            "(provider.keyArn)"
        )


def _eks_endpoint(props: Mapping[str, Any], name: str) -> Iterator[str]:
    vpc = get(props, "vpcConfig", default={})
    if get(vpc, "endpointPublicAccess", default=True) is False:
        return
    cidrs = items(get(vpc, "publicAccessCidrs"))
    if not cidrs:
        yield (
            f"EKS cluster '{name}': the public endpoint is on and vpcConfig.publicAccessCidrs "
            "is empty, which AWS reads as 0.0.0.0/0; list the admin networks or turn "
            "endpointPublicAccess off"
        )
    elif any(is_anywhere(c) for c in cidrs):
        yield f"EKS cluster '{name}': vpcConfig.publicAccessCidrs opens the API to 0.0.0.0/0"


def _eks_logs(props: Mapping[str, Any], name: str) -> Iterator[str]:
    enabled = set(items(get(props, "enabledClusterLogTypes")))
    missing = [log for log in EKS_REQUIRED_LOGS if log not in enabled]
    if missing:
        yield f"EKS cluster '{name}': enabledClusterLogTypes is missing {', '.join(missing)}"


EKS_CLUSTER_HARDENED = ResourcePolicy(
    "eks-cluster-hardened",
    "EKS clusters encrypt secrets with KMS, never expose the API endpoint to 0.0.0.0/0, "
    "and ship api, audit and authenticator logs.",
    Severity.HIGH,
    [
        ResourceRule(
            "aws", "secrets encrypted with a KMS key", {EKS_CLUSTER: _eks_secrets_encryption}
        ),
        ResourceRule("aws", "no 0.0.0.0/0 public endpoint", {EKS_CLUSTER: _eks_endpoint}),
        ResourceRule("aws", "api, audit and authenticator logs", {EKS_CLUSTER: _eks_logs}),
    ],
)


# --- GKE -----------------------------------------------------------------------------------


def _gke_private_nodes(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if get(props, "privateClusterConfig", "enablePrivateNodes") is not True:
        yield f"GKE cluster '{name}': privateClusterConfig.enablePrivateNodes must be true"


def _node_pool_private_nodes(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if get(props, "networkConfig", "enablePrivateNodes") is False:
        yield f"GKE node pool '{name}': networkConfig.enablePrivateNodes is false (public node IPs)"


def _gke_private_endpoint(props: Mapping[str, Any], name: str) -> Iterator[str]:
    private_ip = get(props, "privateClusterConfig", "enablePrivateEndpoint") is True
    dns_only = get(props, "controlPlaneEndpointsConfig", "ipEndpointsConfig", "enabled") is False
    if not (private_ip or dns_only):
        yield (
            f"GKE cluster '{name}': the control plane has a public IP endpoint; set "
            "privateClusterConfig.enablePrivateEndpoint or reach it through the DNS endpoint "
            "with controlPlaneEndpointsConfig.ipEndpointsConfig.enabled false"
        )


def _gke_authorized_networks(props: Mapping[str, Any], name: str) -> Iterator[str]:
    for block in items(get(props, "masterAuthorizedNetworksConfig", "cidrBlocks")):
        if is_anywhere(get(block, "cidrBlock")):
            label = get(block, "displayName", default="unnamed")
            yield (
                f"GKE cluster '{name}': masterAuthorizedNetworksConfig.cidrBlocks "
                f"entry '{label}' is 0.0.0.0/0"
            )


def _gke_workload_identity(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if not get(props, "workloadIdentityConfig", "workloadPool"):
        yield (
            f"GKE cluster '{name}': workloadIdentityConfig.workloadPool must be set "
            "('<project>.svc.id.goog')"
        )


def _gke_shielded_nodes(props: Mapping[str, Any], name: str) -> Iterator[str]:
    # The provider defaults enableShieldedNodes to true; only an explicit false turns it off.
    if get(props, "enableShieldedNodes") is False:
        yield f"GKE cluster '{name}': enableShieldedNodes is false"


def _gke_database_encryption(props: Mapping[str, Any], name: str) -> Iterator[str]:
    encryption = get(props, "databaseEncryption", default={})
    if get(encryption, "state") != "ENCRYPTED" or not get(encryption, "keyName"):
        yield (
            f"GKE cluster '{name}': databaseEncryption must be state 'ENCRYPTED' with keyName "
            "set to a Cloud KMS key (CMEK for etcd secrets)"
        )


GKE_CLUSTER_HARDENED = ResourcePolicy(
    "gke-cluster-hardened",
    "GKE clusters have private nodes, no public control-plane endpoint, no 0.0.0.0/0 "
    "authorized network, workload identity, shielded nodes and CMEK database encryption.",
    Severity.HIGH,
    [
        ResourceRule("gcp", "private nodes", {GKE_CLUSTER: _gke_private_nodes}),
        ResourceRule(
            "gcp", "node pools keep private nodes", {GKE_NODE_POOL: _node_pool_private_nodes}
        ),
        ResourceRule(
            "gcp",
            "private or DNS-only control-plane endpoint",
            {GKE_CLUSTER: _gke_private_endpoint},
        ),
        ResourceRule(
            "gcp", "authorized networks never 0.0.0.0/0", {GKE_CLUSTER: _gke_authorized_networks}
        ),
        ResourceRule("gcp", "workload identity", {GKE_CLUSTER: _gke_workload_identity}),
        ResourceRule("gcp", "shielded nodes", {GKE_CLUSTER: _gke_shielded_nodes}),
        ResourceRule("gcp", "CMEK database encryption", {GKE_CLUSTER: _gke_database_encryption}),
    ],
)


# --- GPU pools -----------------------------------------------------------------------------


def is_eks_gpu_group(props: Mapping[str, Any]) -> bool:
    """A GPU AMI, or an instance family from the GPU catalog."""
    ami = str(get(props, "amiType", default=""))
    families = {str(t).split(".", 1)[0] for t in items(get(props, "instanceTypes"))}
    return any(marker in ami for marker in GPU_AMI_MARKERS) or bool(families & AWS_GPU_FAMILIES)


def is_gke_gpu_pool(props: Mapping[str, Any]) -> bool:
    """Guest accelerators attached, or an accelerator-optimized machine type."""
    accelerators = items(get(props, "nodeConfig", "guestAccelerators"))
    machine = str(get(props, "nodeConfig", "machineType", default=""))
    return any(
        as_number(get(a, "count", default=1)) > 0 for a in accelerators
    ) or machine.startswith(GCP_GPU_MACHINE_PREFIXES)


def _has_gpu_taint(taints: Any) -> bool:
    return any(
        get(t, "key") == GPU_TAINT_KEY and get(t, "effect") in BLOCKING_EFFECTS
        for t in items(taints)
    )


def _eks_gpu_taint(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if is_eks_gpu_group(props) and not _has_gpu_taint(get(props, "taints")):
        yield (
            f"EKS GPU node group '{name}': taints must include key '{GPU_TAINT_KEY}' with "
            "effect NO_SCHEDULE, so only pods that ask for a GPU land there"
        )


def _gke_gpu_taint(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if is_gke_gpu_pool(props) and not _has_gpu_taint(get(props, "nodeConfig", "taints")):
        yield (
            f"GKE GPU node pool '{name}': nodeConfig.taints must include key "
            f"'{GPU_TAINT_KEY}' with effect NO_SCHEDULE, so only pods that ask for a GPU land there"
        )


GPU_POOL_TAINTED = ResourcePolicy(
    "gpu-pool-tainted",
    "GPU node pools carry the nvidia.com/gpu NoSchedule taint so CPU workloads never take "
    "the expensive nodes.",
    Severity.MEDIUM,
    [
        ResourceRule("aws", "EKS GPU node groups tainted", {EKS_NODE_GROUP: _eks_gpu_taint}),
        ResourceRule("gcp", "GKE GPU node pools tainted", {GKE_NODE_POOL: _gke_gpu_taint}),
    ],
)
