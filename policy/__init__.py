"""The hybrid-inference CrossGuard policy pack: every policy, importable without serving.

``POLICIES`` is the pack's content. Only ``policy/__main__.py`` builds the ``PolicyPack``
(its constructor serves forever); tests and the offline review call the policies
in-process through ``policy.engine``.
"""

from policy.clusters import EKS_CLUSTER_HARDENED, GKE_CLUSTER_HARDENED, GPU_POOL_TAINTED
from policy.cost import GPU_COST_BUDGET
from policy.iam import IAM_NO_WILDCARDS
from policy.network import NO_OPEN_INGRESS, VPN_IKEV2, VPN_PSK_NOT_PLAIN
from policy.placement import PRIVATE_MODELS_STAY_PRIVATE
from policy.rules import ResourcePolicy, StackPolicy
from policy.storage import GCS_BUCKET_HARDENED, KMS_KEY_ROTATION, S3_BUCKET_HARDENED
from policy.workloads import (
    METRICS_NOT_PUBLIC,
    TRITON_IMAGE_PINNED,
    TRITON_PROBES,
    TRITON_RESOURCE_LIMITS,
    TRITON_SECURITY_CONTEXT,
)

PACK_NAME = "hybrid-inference"

POLICIES: list[ResourcePolicy | StackPolicy] = [
    S3_BUCKET_HARDENED,
    KMS_KEY_ROTATION,
    GCS_BUCKET_HARDENED,
    EKS_CLUSTER_HARDENED,
    GKE_CLUSTER_HARDENED,
    GPU_POOL_TAINTED,
    VPN_IKEV2,
    VPN_PSK_NOT_PLAIN,
    NO_OPEN_INGRESS,
    IAM_NO_WILDCARDS,
    TRITON_IMAGE_PINNED,
    TRITON_RESOURCE_LIMITS,
    TRITON_SECURITY_CONTEXT,
    TRITON_PROBES,
    METRICS_NOT_PUBLIC,
    PRIVATE_MODELS_STAY_PRIVATE,
    GPU_COST_BUDGET,
]
