"""How GPU work finds GPU nodes: the labels, taint and toleration every pool and pod agree on.

The pools carry the taint and labels; Triton, the GPU plumbing and the TensorRT build Jobs
tolerate the taint and select on the labels. One definition, or scheduling breaks silently.
"""

GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource the NVIDIA device plugin advertises."""

GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "present"
GPU_TAINT_EFFECT = "NoSchedule"
"""As Kubernetes spells it; the EKS and GKE node-pool APIs spell it ``NO_SCHEDULE``."""
GPU_TAINT_EFFECT_CLOUD = "NO_SCHEDULE"

GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": GPU_TAINT_EFFECT}
"""What every GPU pod carries to land on a tainted GPU node."""

ACCELERATOR_LABEL = "hybrid.dev/accelerator"
"""The pool's GPU type (``l4``): Triton's node affinity selects on it."""
COMPUTE_CAPABILITY_LABEL = "hybrid.dev/compute-capability"
"""The GPU's compute capability (``8.9``): a TensorRT build Job selects on it."""
CAPACITY_LABEL = "hybrid.dev/capacity"
"""``spot`` or ``on-demand``."""
