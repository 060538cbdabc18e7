"""The typed stack configuration: what a validated ``Pulumi.<stack>.yaml`` holds.

Frozen and without defaults: ``Pulumi.yaml`` holds the defaults, ``hybrid.config.parse``
fills every field.
"""

from dataclasses import dataclass

from hybrid.gpus import GpuType
from hybrid.triton import triton_image


class ConfigError(Exception):
    """Every problem found in a stack's config, each naming the key to fix."""

    def __init__(self, stack: str, problems: list["Problem"]) -> None:
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"Stack '{stack}' has {len(problems)} configuration problem(s); "
            f"fix them in Pulumi.{stack}.yaml (or with `pulumi config set`):\n{lines}"
        )


@dataclass(frozen=True)
class Problem:
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


@dataclass(frozen=True)
class GpuPoolConfig:
    """One GPU node pool; the same shape on both clouds."""

    name: str
    gpu: GpuType
    machine_type: str
    """EC2 instance type on the public site, GCE machine type on the private site."""
    min_size: int
    max_size: int
    desired_size: int
    spot: bool
    gpus_per_node: int
    """What the machine type carries; on a GCP N1 machine, the GPUs chosen to attach."""


@dataclass(frozen=True)
class PublicSiteConfig:
    """The AWS site: EKS in its own VPC."""

    region: str
    availability_zones: tuple[str, ...]
    vpc_cidr: str
    asn: int
    kubernetes_version: str
    gpu_pools: tuple[GpuPoolConfig, ...]


@dataclass(frozen=True)
class PrivateSiteConfig:
    """The GCP site: private GKE in a custom-mode VPC."""

    project: str
    region: str
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    control_plane_cidr: str
    asn: int
    release_channel: str
    gpu_pools: tuple[GpuPoolConfig, ...]


@dataclass(frozen=True)
class ServingConfig:
    """Triton on both clusters (the same settings on each site)."""

    triton_image_tag: str
    """NGC release of ``nvcr.io/nvidia/tritonserver:<tag>-py3`` (and of the TensorRT builder)."""
    min_replicas: int
    max_replicas: int
    source_ranges: tuple[str, ...]
    """Networks allowed to reach the public site's load balancer."""
    allow_public_serving: bool
    queue_slo_ms: int
    """Average queue time per request above which the SLO alert fires (the HPA aims at half)."""
    startup_seconds_per_gib: int
    """Startup-probe budget per GiB of model repository, on top of a fixed base."""
    retention_days: int
    """Age after which a retired repository prefix is deleted by the bucket lifecycle rule."""
    tensorrt: bool
    """Build TensorRT plans on each GPU pool and serve them instead of ONNX."""
    monitoring_namespace: str
    """Where Prometheus, prometheus-adapter and Grafana run on each cluster."""
    repository_dir: str
    """Rendered repositories (``make models``), relative to the project root."""
    latency_slo_ms: dict[str, int]
    """Model name -> end-to-end latency SLO in ms, as the clients see it (burst routing)."""
    encoder_precision: dict[str, str]
    """Target (local, public, private) -> the precision its encoder serves (hybrid.precision)."""

    @property
    def triton_image(self) -> str:
        return triton_image(self.triton_image_tag)


@dataclass(frozen=True)
class AddonsConfig:
    """The cluster add-ons the stack installs; switch one off where a cluster already runs it."""

    kube_prometheus_stack: bool
    """Prometheus Operator (and its CRDs), Prometheus, Grafana, kube-state-metrics."""
    prometheus_adapter: bool
    """Serves the HPA's queue-time-per-request metric."""
    cluster_autoscaler: bool
    """Scales the EKS node groups (GKE's node pools scale by themselves)."""


@dataclass(frozen=True)
class StackConfig:
    stack: str
    public: PublicSiteConfig
    private: PrivateSiteConfig
    vpn_inside_cidrs: tuple[str, ...]
    admin_cidrs: tuple[str, ...]
    eks_admin_principals: tuple[str, ...]
    """IAM roles or users given EKS cluster-admin access entries, besides the creator."""
    allow_public_control_plane: bool
    deletion_protection: bool
    models: dict[str, tuple[str, ...]]
    """Model name -> the sites it is placed on."""
    log_retention_days: int
    """How long VPC flow logs and EKS control-plane logs are kept."""
    gpu_budget_usd_per_month: int
    """Monthly GPU spend the policy cost guard warns above (at max scale)."""
    serving: ServingConfig
    addons: AddonsConfig

    def models_on(self, site: str) -> tuple[str, ...]:
        return tuple(name for name, sites in self.models.items() if site in sites)

    def private_only_models(self) -> tuple[str, ...]:
        return tuple(name for name, sites in self.models.items() if sites == ("private",))

    def gpu_types_on(self, site: str) -> tuple[GpuType, ...]:
        pools = self.public.gpu_pools if site == "public" else self.private.gpu_pools
        return tuple(dict.fromkeys(pool.gpu for pool in pools))
