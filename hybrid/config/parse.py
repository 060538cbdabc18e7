"""Stack configuration parsed once and validated up front, with every problem reported at once.

No Pulumi here, so the model build and the offline policy review read the same
``StackConfig`` from ``Pulumi.<stack>.yaml`` as ``pulumi up`` does (``infra/config.py``
hands it the engine's values instead).
"""

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hybrid.config.schema import (
    AddonsConfig,
    ConfigError,
    GpuPoolConfig,
    PrivateSiteConfig,
    Problem,
    PublicSiteConfig,
    ServingConfig,
    StackConfig,
)
from hybrid.config.stack_file import declared_keys, read_stack_file
from hybrid.gpus import GPU_TYPES, N1_MACHINE_VCPUS, GpuType, carried_by
from hybrid.models import DEFAULT_LATENCY_SLO_MS, DEFAULT_MODEL_PLACEMENT, refused_on
from hybrid.paths import PROJECT_ROOT
from hybrid.precision import ALLOWED_PRECISIONS, CPU_TARGETS, DEFAULT_PRECISION
from hybrid.sites import SITES

RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE")
# AWS refuses these tunnel inside ranges (VPN User Guide, "Tunnel options").
AWS_RESERVED_INSIDE_CIDRS = tuple(
    ipaddress.IPv4Network(c)
    for c in (
        "169.254.0.0/30",
        "169.254.1.0/30",
        "169.254.2.0/30",
        "169.254.3.0/30",
        "169.254.4.0/30",
        "169.254.5.0/30",
        "169.254.169.252/30",
    )
)
LINK_LOCAL = ipaddress.IPv4Network("169.254.0.0/16")
PRIVATE_ASN_RANGES = ((64512, 65534), (4200000000, 4294967294))
ANYWHERE = ipaddress.IPv4Network("0.0.0.0/0")
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)  # fmt: skip
# An AWS VPC is at most a /16; below a /20 the per-AZ subnets get too small for EKS.
AWS_VPC_PREFIXES = range(16, 21)
IAM_PRINCIPAL_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}")
TRITON_TAG = re.compile(r"^\d{2}\.\d{2}$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SIZE_FIELDS = ("minSize", "maxSize", "desiredSize")
POOL_FIELDS = ("name", "gpuType", "machineType", *SIZE_FIELDS, "spot", "gpusPerNode")
CLOUDS = {"aws": "AWS", "gcp": "GCP"}
MACHINE_NOUNS = {"aws": "an EC2 instance type", "gcp": "a GCE machine type"}


def load_stack_config(stack: str, root: Path = PROJECT_ROOT) -> StackConfig:
    """Read ``Pulumi.<stack>.yaml`` (with the project's defaults) into a StackConfig."""
    return parse_stack_config(stack, read_stack_file(stack, root))


def parse_stack_config(stack: str, raw: Mapping[str, Any]) -> StackConfig:
    """Turn raw values (native, or strings as the engine passes them) into a StackConfig.

    Raises ConfigError listing every problem; never returns a half-valid config.
    """
    reader = _Reader(raw)
    reader.unknown_keys(
        [key for key in raw if key.startswith("hybrid:")],
        declared_keys(),
        "unknown key",
        "see Pulumi.yaml, which declares the known keys, or README.md's Configuration reference",
    )

    region = reader.string("aws:region")
    azs = tuple(reader.string_list("hybrid:awsAvailabilityZones"))
    public = PublicSiteConfig(
        region=region,
        availability_zones=azs,
        vpc_cidr=reader.string("hybrid:awsVpcCidr"),
        asn=reader.integer("hybrid:awsAsn"),
        kubernetes_version=reader.string("hybrid:eksVersion"),
        gpu_pools=_gpu_pools(reader, "hybrid:publicGpuPools", "aws"),
    )
    private = PrivateSiteConfig(
        project=reader.string("gcp:project"),
        region=reader.string("gcp:region"),
        subnet_cidr=reader.string("hybrid:gcpSubnetCidr"),
        pods_cidr=reader.string("hybrid:gkePodsCidr"),
        services_cidr=reader.string("hybrid:gkeServicesCidr"),
        control_plane_cidr=reader.string("hybrid:gkeControlPlaneCidr"),
        asn=reader.integer("hybrid:gcpAsn"),
        release_channel=reader.string("hybrid:gkeReleaseChannel"),
        gpu_pools=_gpu_pools(reader, "hybrid:privateGpuPools", "gcp"),
    )
    config = StackConfig(
        stack=stack,
        public=public,
        private=private,
        vpn_inside_cidrs=tuple(reader.string_list("hybrid:vpnInsideCidrs")),
        admin_cidrs=tuple(reader.string_list("hybrid:adminCidrs")),
        eks_admin_principals=tuple(reader.string_list("hybrid:eksAdminPrincipals")),
        allow_public_control_plane=reader.boolean("hybrid:allowPublicControlPlane"),
        deletion_protection=reader.boolean("hybrid:deletionProtection"),
        models=_models(reader),
        log_retention_days=reader.integer("hybrid:logRetentionDays"),
        gpu_budget_usd_per_month=reader.integer("hybrid:gpuBudgetUsdPerMonth"),
        serving=_serving(reader),
        addons=AddonsConfig(
            kube_prometheus_stack=reader.boolean("hybrid:installKubePrometheusStack"),
            prometheus_adapter=reader.boolean("hybrid:installPrometheusAdapter"),
            cluster_autoscaler=reader.boolean("hybrid:installClusterAutoscaler"),
        ),
    )
    _check_sites(reader, config)
    _check_networks(reader, config)
    _check_serving(reader, config)
    _check_asns(reader, config)
    _check_admin_principals(reader, config)
    _check_retention(reader, config)
    _check_budget(reader, config)
    if reader.problems:
        raise ConfigError(stack, reader.problems)
    return config


# --- validation --------------------------------------------------------------


def _check_sites(reader: "_Reader", config: StackConfig) -> None:
    azs = config.public.availability_zones
    minimum = 3 if config.stack == "prod" else 2
    if len(set(azs)) < minimum:
        reader.problem(
            "hybrid:awsAvailabilityZones",
            f"needs at least {minimum} distinct zones for stack '{config.stack}', got {list(azs)}",
        )
    for az in azs:
        if config.public.region and not az.startswith(config.public.region):
            reader.problem(
                "hybrid:awsAvailabilityZones",
                f"zone '{az}' is not in aws:region '{config.public.region}'",
            )
    if config.private.release_channel and config.private.release_channel not in RELEASE_CHANNELS:
        reader.problem(
            "hybrid:gkeReleaseChannel",
            f"'{config.private.release_channel}' is not one of {list(RELEASE_CHANNELS)}",
        )


def _check_networks(reader: "_Reader", config: StackConfig) -> None:
    ranges = {
        "hybrid:awsVpcCidr": config.public.vpc_cidr,
        "hybrid:gcpSubnetCidr": config.private.subnet_cidr,
        "hybrid:gkePodsCidr": config.private.pods_cidr,
        "hybrid:gkeServicesCidr": config.private.services_cidr,
        "hybrid:gkeControlPlaneCidr": config.private.control_plane_cidr,
    }
    networks = {key: reader.network(key, value) for key, value in ranges.items() if value}
    parsed = {key: net for key, net in networks.items() if net is not None}
    keys = list(parsed)
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            if parsed[first].overlaps(parsed[second]):
                reader.problem(
                    second,
                    f"{parsed[second]} overlaps {first} ({parsed[first]}); "
                    "every range across both clouds must be distinct",
                )
    vpc = parsed.get("hybrid:awsVpcCidr")
    if vpc is not None and vpc.prefixlen not in AWS_VPC_PREFIXES:
        reader.problem(
            "hybrid:awsVpcCidr",
            f"{vpc} is a /{vpc.prefixlen}; use a /16 to /20 (AWS allows at most a /16, "
            "and smaller VPCs leave the EKS subnets too few addresses)",
        )
    control_plane = parsed.get("hybrid:gkeControlPlaneCidr")
    if control_plane is not None and control_plane.prefixlen != 28:
        reader.problem(
            "hybrid:gkeControlPlaneCidr",
            f"{control_plane} is a /{control_plane.prefixlen}; GKE needs exactly a /28",
        )

    inside = [reader.network("hybrid:vpnInsideCidrs", c) for c in config.vpn_inside_cidrs]
    if len(config.vpn_inside_cidrs) != 4:
        reader.problem(
            "hybrid:vpnInsideCidrs",
            f"needs exactly 4 ranges (one per tunnel), got {len(config.vpn_inside_cidrs)}",
        )
    for net in (n for n in inside if n is not None):
        if net.prefixlen != 30 or not net.subnet_of(LINK_LOCAL):
            reader.problem("hybrid:vpnInsideCidrs", f"{net} must be a /30 inside 169.254.0.0/16")
        elif net in AWS_RESERVED_INSIDE_CIDRS:
            reader.problem("hybrid:vpnInsideCidrs", f"{net} is reserved by AWS; pick another /30")
    if len({str(n) for n in inside if n is not None}) != len(inside):
        reader.problem("hybrid:vpnInsideCidrs", "the four ranges must be distinct")

    _check_allowed_sources(
        reader,
        "hybrid:adminCidrs",
        config.admin_cidrs,
        "the control planes",
        "hybrid:allowPublicControlPlane",
        config.allow_public_control_plane,
        example=" (e.g. your office or CI runner range)",
    )


def _check_admin_principals(reader: "_Reader", config: StackConfig) -> None:
    key = "hybrid:eksAdminPrincipals"
    principals = config.eks_admin_principals
    if not principals and not reader.problems_for(key):
        reader.problem(
            key,
            "list at least one IAM role ARN (e.g. the CI deploy role and a break-glass role); "
            "without access entries only the cluster's creator can ever reach the EKS API",
        )
    for arn in principals:
        if not IAM_PRINCIPAL_ARN.fullmatch(arn):
            reader.problem(
                key,
                f"'{arn}' is not an IAM role or user ARN "
                "(arn:aws:iam::<12-digit account>:role/<name> or :user/<name>)",
            )
    if len(set(principals)) != len(principals):
        reader.problem(key, "lists a principal twice; EKS allows one access entry per principal")


def _check_retention(reader: "_Reader", config: StackConfig) -> None:
    if config.log_retention_days not in LOG_RETENTION_DAYS:
        reader.problem(
            "hybrid:logRetentionDays",
            f"{config.log_retention_days} is not a CloudWatch Logs retention period; "
            f"pick one of {list(LOG_RETENTION_DAYS)}",
        )


def _check_budget(reader: "_Reader", config: StackConfig) -> None:
    if config.gpu_budget_usd_per_month < 1:
        reader.problem("hybrid:gpuBudgetUsdPerMonth", "must be a positive number of US dollars")


def _serving(reader: "_Reader") -> ServingConfig:
    return ServingConfig(
        triton_image_tag=reader.string("hybrid:tritonImageTag"),
        min_replicas=reader.integer("hybrid:tritonMinReplicas"),
        max_replicas=reader.integer("hybrid:tritonMaxReplicas"),
        source_ranges=tuple(reader.string_list("hybrid:servingSourceRanges")),
        allow_public_serving=reader.boolean("hybrid:allowPublicServing"),
        queue_slo_ms=reader.integer("hybrid:queueTimeSloMs"),
        startup_seconds_per_gib=reader.integer("hybrid:startupSecondsPerGib"),
        retention_days=reader.integer("hybrid:repositoryRetentionDays"),
        tensorrt=reader.boolean("hybrid:tensorrtPlans"),
        monitoring_namespace=reader.string("hybrid:monitoringNamespace"),
        repository_dir=reader.string("hybrid:modelRepositoryDir"),
        latency_slo_ms=_latency_slos(reader),
        encoder_precision=_encoder_precision(reader),
    )


def _latency_slos(reader: "_Reader") -> dict[str, int]:
    key = "hybrid:latencySloMs"
    try:
        raw = _decoded(reader.value(key, default=None))
    except ValueError:
        raw = "(not JSON)"
    if raw is None:
        return dict(DEFAULT_LATENCY_SLO_MS)
    if not isinstance(raw, dict):
        reader.problem(key, "must map a model name to its end-to-end latency SLO in ms")
        return {}
    slos: dict[str, int] = {}
    for name, value in raw.items():
        if name not in DEFAULT_MODEL_PLACEMENT:
            reader.problem(
                f"{key}.{name}", f"unknown model; known models: {sorted(DEFAULT_MODEL_PLACEMENT)}"
            )
        elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 60_000:
            reader.problem(f"{key}.{name}", f"must be an integer of ms in 1..60000, got {value!r}")
        else:
            slos[name] = value
    return slos


def _encoder_precision(reader: "_Reader") -> dict[str, str]:
    key = "hybrid:encoderPrecision"
    try:
        raw = _decoded(reader.value(key, default=None))
    except ValueError:
        raw = "(not JSON)"
    if raw is None:
        return dict(DEFAULT_PRECISION)
    if not isinstance(raw, dict):
        reader.problem(key, f"must map a target {list(ALLOWED_PRECISIONS)} to a precision")
        return dict(DEFAULT_PRECISION)
    precision: dict[str, str] = dict(DEFAULT_PRECISION)
    for target, value in raw.items():
        allowed = ALLOWED_PRECISIONS.get(target)
        if allowed is None:
            reader.problem(
                f"{key}.{target}", f"unknown target; known targets: {list(ALLOWED_PRECISIONS)}"
            )
        elif value not in allowed:
            why = (
                "a CPU target serves onnxruntime FP32 or the gated INT8 variant"
                if target in CPU_TARGETS
                else "a GPU target serves TensorRT FP16 plans (the FP32 ONNX graph until "
                "hybrid:tensorrtPlans has built them); INT8 is a CPU format here"
            )
            reader.problem(f"{key}.{target}", f"{value!r} is not one of {list(allowed)}: {why}")
        else:
            precision[target] = value
    return precision


def _check_serving(reader: "_Reader", config: StackConfig) -> None:
    serving = config.serving
    if serving.triton_image_tag and not TRITON_TAG.match(serving.triton_image_tag):
        reader.problem(
            "hybrid:tritonImageTag",
            f"'{serving.triton_image_tag}' is not an NGC release like 24.10 "
            "(the image is nvcr.io/nvidia/tritonserver:<tag>-py3)",
        )
    minimum = 2 if config.stack == "prod" else 1
    if serving.min_replicas < minimum:
        reader.problem(
            "hybrid:tritonMinReplicas",
            f"must be at least {minimum} for stack '{config.stack}'"
            + (" so that draining a node never takes a site down" if minimum > 1 else ""),
        )
    if serving.max_replicas < serving.min_replicas:
        reader.problem(
            "hybrid:tritonMaxReplicas",
            f"{serving.max_replicas} is below hybrid:tritonMinReplicas ({serving.min_replicas})",
        )
    _check_allowed_sources(
        reader,
        "hybrid:servingSourceRanges",
        serving.source_ranges,
        "the public Triton endpoint",
        "hybrid:allowPublicServing",
        serving.allow_public_serving,
    )
    for key, value, low, high in (
        ("hybrid:queueTimeSloMs", serving.queue_slo_ms, 1, 60_000),
        ("hybrid:startupSecondsPerGib", serving.startup_seconds_per_gib, 1, 3600),
        ("hybrid:repositoryRetentionDays", serving.retention_days, 1, 3650),
    ):
        if not low <= value <= high:
            reader.problem(key, f"{value} is outside {low}..{high}")
    if not DNS_LABEL.match(serving.monitoring_namespace):
        reader.problem(
            "hybrid:monitoringNamespace",
            f"'{serving.monitoring_namespace}' is not a Kubernetes namespace name",
        )


def _check_allowed_sources(
    reader: "_Reader",
    key: str,
    cidrs: tuple[str, ...],
    what: str,
    opt_in_key: str,
    opted_in: bool,
    example: str = "",
) -> None:
    """An allow-list must name someone, and names everyone only with a visible opt-in."""
    if not cidrs:
        reader.problem(key, f"list at least one network allowed to reach {what}{example}")
    for cidr in cidrs:
        if reader.network(key, cidr) == ANYWHERE and not opted_in:
            reader.problem(
                key,
                f"0.0.0.0/0 opens {what} to the internet; "
                f"set {opt_in_key}: true to opt in explicitly",
            )


def _check_asns(reader: "_Reader", config: StackConfig) -> None:
    for key, asn in (("hybrid:awsAsn", config.public.asn), ("hybrid:gcpAsn", config.private.asn)):
        if asn and not any(low <= asn <= high for low, high in PRIVATE_ASN_RANGES):
            reader.problem(
                key, f"{asn} is not a private ASN (64512-65534 or 4200000000-4294967294)"
            )
    if config.public.asn and config.public.asn == config.private.asn:
        reader.problem("hybrid:gcpAsn", f"equals hybrid:awsAsn ({config.public.asn}); use two ASNs")


def _gpu_pools(reader: "_Reader", key: str, cloud: str) -> tuple[GpuPoolConfig, ...]:
    pools: list[GpuPoolConfig] = []
    names: set[str] = set()
    for index, item in enumerate(reader.object_list(key)):
        pool_reader = _Reader(item, prefix=f"{key}[{index}].")
        pool = _gpu_pool(pool_reader, cloud, names)
        reader.problems.extend(pool_reader.problems)
        if pool is not None:
            pools.append(pool)
    if not pools and not reader.problems_for(key):
        reader.problem(key, "declare at least one GPU pool for this site")
    return tuple(pools)


def _gpu_pool(reader: "_Reader", cloud: str, names: set[str]) -> GpuPoolConfig | None:
    """One pool, with every problem in it: a mistake in one field hides none in another."""
    reader.unknown_keys(
        [str(field) for field in reader.raw],
        POOL_FIELDS,
        "unknown field",
        f"known fields: {list(POOL_FIELDS)}",
    )
    name = reader.string("name")
    if name and name in names:
        reader.problem("name", f"pool name '{name}' is used twice")
    names.add(name)
    gpu = _gpu_type(reader)
    machine = reader.string("machineType")
    counts = _machine_gpus(reader, cloud, gpu, machine) if gpu and machine else ()
    per_node = _gpus_per_node(reader, cloud, name, gpu, machine, counts)
    min_size, max_size, desired = _sizes(reader)
    spot = reader.boolean("spot", default=False)
    if reader.problems or gpu is None:
        return None
    return GpuPoolConfig(name, gpu, machine, min_size, max_size, desired, spot, per_node)


def _gpu_type(reader: "_Reader") -> GpuType | None:
    gpu_name = reader.string("gpuType")
    gpu = GPU_TYPES.get(gpu_name)
    if gpu is None and reader.ok("gpuType"):
        reader.problem("gpuType", f"unknown GPU type '{gpu_name}'; known: {sorted(GPU_TYPES)}")
    return gpu


def _machine_gpus(reader: "_Reader", cloud: str, gpu: GpuType, machine: str) -> tuple[int, ...]:
    """The GPU counts ``machine`` may carry of ``gpu``; when none, the problem and the fix."""
    counts = gpu.gpu_counts(cloud, machine)
    if counts:
        return counts
    if not (gpu.aws_instances if cloud == "aws" else gpu.gcp_accelerator):
        reader.problem("machineType", f"GPU '{gpu.name}' is not offered on {CLOUDS[cloud]}")
        return ()
    carried = carried_by(cloud, machine)
    if carried is not None:
        why = f"carries {carried[0].name} GPUs, not {gpu.name}"
    elif machine in N1_MACHINE_VCPUS:
        why = f"is an N1 machine type, which cannot attach {gpu.name} GPUs"
    else:
        why = f"is not {MACHINE_NOUNS[cloud]} that carries {gpu.name} GPUs"
    reader.problem("machineType", f"'{machine}' {why}; use {_machines_of(gpu, cloud)}")
    return ()


def _machines_of(gpu: GpuType, cloud: str) -> str:
    """The machine types that carry ``gpu`` on ``cloud``, grouped by GPUs per machine."""
    machines = gpu.aws_instances if cloud == "aws" else gpu.gcp_machines
    by_count: dict[int, list[str]] = {}
    for machine, count in machines.items():
        by_count.setdefault(count, []).append(machine)
    choices = []
    if by_count:
        groups = (
            f"{', '.join(ms)} ({_gpus(count)}{' each' if len(ms) > 1 else ''})"
            for count, ms in by_count.items()
        )
        choices.append(f"one of: {'; '.join(groups)}")
    if cloud == "gcp" and gpu.n1_max_vcpus:
        series = sorted({m.rsplit("-", 1)[0] + "-*" for m in N1_MACHINE_VCPUS})
        choices.append(
            f"an N1 machine type ({', '.join(series)}) with gpusPerNode "
            f"{_either(list(gpu.n1_max_vcpus))}"
        )
    return " or ".join(choices)


def _gpus_per_node(
    reader: "_Reader",
    cloud: str,
    name: str,
    gpu: GpuType | None,
    machine: str,
    counts: tuple[int, ...],
) -> int:
    """GPUs per node: what a fixed-count machine type carries (gpusPerNode may only repeat
    it), or the chosen number of GPUs attached to an N1 machine."""
    given = reader.optional_integer("gpusPerNode")
    if gpu is None or not counts:
        if given is not None and given < 1:
            reader.problem("gpusPerNode", f"must be 1 or more, got {given}")
        return given or 1
    pool = f"pool '{name}': " if name else ""
    if machine not in N1_MACHINE_VCPUS:
        (carried,) = counts
        if given is not None and given != carried:
            machines = gpu.aws_instances if cloud == "aws" else gpu.gcp_machines
            fits = [m for m, n in machines.items() if n == given]
            fix = (
                f", or use a machine type that carries {given}: {', '.join(fits)}"
                if fits
                else f" (no {CLOUDS[cloud]} machine type carries {given} {gpu.name} GPUs)"
            )
            reader.problem(
                "gpusPerNode",
                f"{pool}'{machine}' carries exactly {_gpus(carried, gpu)}, not {given}; "
                f"remove gpusPerNode, which follows from the machine type{fix}",
            )
        return carried
    per_node = 1 if given is None else given
    most = gpu.n1_max_vcpus.get(per_node)
    if most is None:
        reader.problem(
            "gpusPerNode",
            f"{pool}an N1 machine attaches {_either(list(gpu.n1_max_vcpus))} {gpu.name} GPUs, "
            f"not {per_node}; '{machine}' takes {_either(list(counts))}",
        )
    elif per_node not in counts:
        default = " (the default)" if given is None else ""
        reader.problem(
            "gpusPerNode",
            f"{pool}'{machine}' has {N1_MACHINE_VCPUS[machine]} vCPUs, and GCP allows at most "
            f"{most} with {_gpus(per_node, gpu)}{default}; set gpusPerNode to "
            f"{_either(list(counts))}, or use an N1 machine type with at most {most} vCPUs",
        )
    return per_node


def _sizes(reader: "_Reader") -> tuple[int, int, int]:
    """minSize, maxSize, desiredSize; each pair compared only where both are valid."""
    min_size, max_size, desired = (reader.integer(k) for k in SIZE_FIELDS)
    valid = {k for k in SIZE_FIELDS if reader.ok(k)}
    if "minSize" in valid and min_size < 0:
        reader.problem("minSize", f"must be 0 or more, got {min_size}")
    if {"minSize", "maxSize"} <= valid and min_size > max_size:
        reader.problem("minSize", f"minSize {min_size} is above maxSize {max_size}")
    elif valid == set(SIZE_FIELDS) and not min_size <= desired <= max_size:
        reader.problem(
            "desiredSize",
            f"desiredSize {desired} is outside minSize..maxSize ({min_size}..{max_size})",
        )
    return min_size, max_size, desired


def _gpus(count: int, gpu: GpuType | None = None) -> str:
    """``1 GPU``, ``4 GPUs``; ``1 l4 GPU`` with the GPU named."""
    return f"{count} {gpu.name + ' ' if gpu else ''}GPU{'s' if count != 1 else ''}"


def _either(options: list[int]) -> str:
    """``1``, ``1 or 2``, ``1, 2 or 4``."""
    words = [str(o) for o in options]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _models(reader: "_Reader") -> dict[str, tuple[str, ...]]:
    try:
        raw = _decoded(reader.value("hybrid:models", default=None))
    except ValueError:
        raw = "(not JSON)"
    if raw is None:
        return dict(DEFAULT_MODEL_PLACEMENT)
    if not isinstance(raw, dict):
        reader.problem("hybrid:models", "must map a model name to the list of sites it runs on")
        return {}
    models: dict[str, tuple[str, ...]] = {}
    for name, sites in raw.items():
        key = f"hybrid:models.{name}"
        if name not in DEFAULT_MODEL_PLACEMENT:
            reader.problem(key, f"unknown model; known models: {sorted(DEFAULT_MODEL_PLACEMENT)}")
            continue
        if not isinstance(sites, list) or not sites or not set(sites) <= set(SITES):
            reader.problem(key, f"must be a non-empty list drawn from {list(SITES)}, got {sites!r}")
            continue
        refused = refused_on("public", [name]) if "public" in sites else {}
        if refused:
            reader.problem(
                key,
                f"'{name}' may only run on the private site ({refused[name]}); "
                "remove 'public' from its list",
            )
            continue
        models[name] = tuple(site for site in SITES if site in sites)
    return models


class _Reader:
    """Typed getters over raw config that record problems instead of raising."""

    def __init__(self, raw: Mapping[str, Any], prefix: str = "") -> None:
        self.raw = raw
        self.prefix = prefix
        self.problems: list[Problem] = []
        self.misspelt: set[str] = set()
        """Keys absent because they were misspelt: their problems follow from the typo."""

    def problem(self, key: str, message: str) -> None:
        if not any(key == k or key.startswith((f"{k}.", f"{k}[")) for k in self.misspelt):
            self.problems.append(Problem(self.prefix + key, message))

    def problems_for(self, key: str) -> list[Problem]:
        return [p for p in self.problems if p.key.startswith(self.prefix + key)]

    def unknown_keys(
        self, keys: Iterable[str], known: Sequence[str], what: str, otherwise: str
    ) -> None:
        """One problem per unknown key, suggesting the closest known one; a key absent only
        because it was misspelt gets no problems of its own (no "is required" for it)."""
        for key in keys:
            if key in known:
                continue
            intended = _closest(key, known)
            if intended is None:
                self.problem(key, f"{what}; {otherwise}")
                continue
            self.problem(key, f"{what}; did you mean '{intended}'?")
            if self.raw.get(intended) is None:
                self.misspelt.add(intended)

    def ok(self, key: str) -> bool:
        """``key`` is set and has no problem: safe to compare with other values."""
        return self.raw.get(key) is not None and not self.problems_for(key)

    def value(self, key: str, default: Any = ...) -> Any:
        if key in self.raw and self.raw[key] is not None:
            return self.raw[key]
        if default is ...:
            self.problem(key, "is required")
        return default

    def _typed(self, key: str, default: Any, kind: str, convert: Callable[[Any], Any]) -> Any:
        """The converted value; ``default`` when absent (``...`` marks it required)."""
        raw = self.value(key, default)
        if raw is ... or raw is default:
            return None if raw is ... else default
        try:
            return convert(raw)
        except (TypeError, ValueError):
            self.problem(key, f"must be {kind}, got {raw!r}")
            return None

    def string(self, key: str) -> str:
        return self._typed(key, ..., "a string", _as_string) or ""

    def integer(self, key: str, default: Any = ...) -> int:
        value = self._typed(key, default, "an integer", _as_int)
        return 0 if value is None else value

    def optional_integer(self, key: str) -> int | None:
        return self._typed(key, None, "an integer", _as_int)

    def boolean(self, key: str, default: Any = ...) -> bool:
        return bool(self._typed(key, default, "true or false", _as_bool))

    def string_list(self, key: str) -> list[str]:
        return self._typed(key, ..., "a list of strings", _as_string_list) or []

    def object_list(self, key: str) -> list[dict[str, Any]]:
        return self._typed(key, ..., "a list of objects", _as_object_list) or []

    def network(self, key: str, cidr: str) -> ipaddress.IPv4Network | None:
        try:
            return ipaddress.IPv4Network(cidr)
        except ValueError as error:
            self.problem(key, f"'{cidr}' is not a valid IPv4 CIDR ({error})")
            return None


def _closest(key: str, known: Sequence[str]) -> str | None:
    """The known key ``key`` most likely misspells: same namespace, similar name (compared
    without the shared ``hybrid:`` prefix, which would make every pair look alike)."""
    namespace, _, name = key.rpartition(":")
    names = {k.rpartition(":")[2].casefold(): k for k in known if k.rpartition(":")[0] == namespace}
    close = difflib.get_close_matches(name.casefold(), names, n=1)
    return names[close[0]] if close else None


def _decoded(raw: Any) -> Any:
    """The engine passes non-string config as JSON text; files pass native values."""
    return json.loads(raw) if isinstance(raw, str) else raw


def _as_string(raw: Any) -> str:
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise TypeError
    return str(raw)


def _as_int(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise TypeError
    return int(raw)


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ValueError


def _as_string_list(raw: Any) -> list[str]:
    value = _decoded(raw)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError
    return value


def _as_object_list(raw: Any) -> list[dict[str, Any]]:
    value = _decoded(raw)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TypeError
    return value
