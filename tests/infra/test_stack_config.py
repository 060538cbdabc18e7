"""Bad stack configs: each is refused up front, naming the key to fix and saying why."""

from typing import Any

import pulumi
import pytest

from hybrid.config import (
    AddonsConfig,
    ConfigError,
    load_stack_config,
    parse_stack_config,
    read_stack_file,
)


def _dev(**changes: Any) -> dict[str, Any]:
    """dev's raw config with ``changes`` applied (``None`` removes a key)."""
    raw = read_stack_file("dev")
    for key, value in changes.items():
        key = "hybrid:" + key if ":" not in key else key
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def _pool(**changes: Any) -> list[dict[str, Any]]:
    pool = {
        "name": "gpu",
        "gpuType": "l4",
        "machineType": "g2-standard-8",
        "minSize": 0,
        "maxSize": 2,
        "desiredSize": 1,
    }
    return [pool | changes]


def _public_pool(**changes: Any) -> list[dict[str, Any]]:
    return _pool(**({"machineType": "g6.xlarge"} | changes))


BAD_CONFIGS = {
    "no-eks-admins": (
        _dev(eksAdminPrincipals=[]),
        "hybrid:eksAdminPrincipals",
        "list at least one IAM role ARN (e.g. the CI deploy role and a break-glass role); "
        "without access entries only the cluster's creator can ever reach the EKS API",
    ),
    "eks-admin-not-an-arn": (
        _dev(eksAdminPrincipals=["ci-deploy"]),
        "hybrid:eksAdminPrincipals",
        "'ci-deploy' is not an IAM role or user ARN "
        "(arn:aws:iam::<12-digit account>:role/<name> or :user/<name>)",
    ),
    "eks-admin-twice": (
        _dev(eksAdminPrincipals=["arn:aws:iam::111122223333:role/a"] * 2),
        "hybrid:eksAdminPrincipals",
        "lists a principal twice; EKS allows one access entry per principal",
    ),
    "overlapping-cidrs-across-clouds": (
        _dev(awsVpcCidr="10.20.0.0/16"),
        "hybrid:gcpSubnetCidr",
        "10.20.0.0/20 overlaps hybrid:awsVpcCidr (10.20.0.0/16); "
        "every range across both clouds must be distinct",
    ),
    "control-plane-not-a-28": (
        _dev(gkeControlPlaneCidr="172.16.0.0/27"),
        "hybrid:gkeControlPlaneCidr",
        "172.16.0.0/27 is a /27; GKE needs exactly a /28",
    ),
    "public-asn": (
        _dev(awsAsn=13335),
        "hybrid:awsAsn",
        "13335 is not a private ASN (64512-65534 or 4200000000-4294967294)",
    ),
    "equal-asns": (
        _dev(gcpAsn=64512),
        "hybrid:gcpAsn",
        "equals hybrid:awsAsn (64512); use two ASNs",
    ),
    "open-control-plane-without-opt-in": (
        _dev(adminCidrs=["0.0.0.0/0"]),
        "hybrid:adminCidrs",
        "0.0.0.0/0 opens the control planes to the internet; "
        "set hybrid:allowPublicControlPlane: true to opt in explicitly",
    ),
    "unknown-gpu-type": (
        _dev(privateGpuPools=_pool(gpuType="rtx4090")),
        "hybrid:privateGpuPools[0].gpuType",
        "unknown GPU type 'rtx4090'; known: ['a100-40gb', 'a100-80gb', 'a10g', 'h100-80gb', "
        "'l4', 'l40s', 't4', 'v100']",
    ),
    "l4-on-an-n1-machine": (
        _dev(privateGpuPools=_pool(machineType="n1-standard-8")),
        "hybrid:privateGpuPools[0].machineType",
        "'n1-standard-8' is an N1 machine type, which cannot attach l4 GPUs; use one of: "
        "g2-standard-4, g2-standard-8, g2-standard-12, g2-standard-16, g2-standard-32 "
        "(1 GPU each); g2-standard-24 (2 GPUs); g2-standard-48 (4 GPUs); g2-standard-96 (8 GPUs)",
    ),
    "t4-on-a-g5-instance": (
        _dev(publicGpuPools=_public_pool(gpuType="t4", machineType="g5.xlarge")),
        "hybrid:publicGpuPools[0].machineType",
        "'g5.xlarge' carries a10g GPUs, not t4; use one of: g4dn.xlarge, g4dn.2xlarge, "
        "g4dn.4xlarge, g4dn.8xlarge, g4dn.16xlarge (1 GPU each); g4dn.12xlarge (4 GPUs); "
        "g4dn.metal (8 GPUs)",
    ),
    "t4-on-a-g2-machine": (
        _dev(privateGpuPools=_pool(gpuType="t4")),
        "hybrid:privateGpuPools[0].machineType",
        "'g2-standard-8' carries l4 GPUs, not t4; use an N1 machine type "
        "(n1-highcpu-*, n1-highmem-*, n1-standard-*) with gpusPerNode 1, 2 or 4",
    ),
    "instance-size-that-does-not-exist": (
        _dev(publicGpuPools=_public_pool(gpuType="t4", machineType="g4dn.huge")),
        "hybrid:publicGpuPools[0].machineType",
        "'g4dn.huge' is not an EC2 instance type that carries t4 GPUs; use one of: g4dn.xlarge, "
        "g4dn.2xlarge, g4dn.4xlarge, g4dn.8xlarge, g4dn.16xlarge (1 GPU each); g4dn.12xlarge "
        "(4 GPUs); g4dn.metal (8 GPUs)",
    ),
    "machine-size-that-does-not-exist": (
        _dev(privateGpuPools=_pool(gpuType="a100-80gb", machineType="a2-ultragpu-16g")),
        "hybrid:privateGpuPools[0].machineType",
        "'a2-ultragpu-16g' is not a GCE machine type that carries a100-80gb GPUs; use one of: "
        "a2-ultragpu-1g (1 GPU); a2-ultragpu-2g (2 GPUs); a2-ultragpu-4g (4 GPUs); "
        "a2-ultragpu-8g (8 GPUs)",
    ),
    "more-gpus-per-node-than-a-g2-machine-carries": (
        _dev(privateGpuPools=_pool(gpusPerNode=4)),
        "hybrid:privateGpuPools[0].gpusPerNode",
        "pool 'gpu': 'g2-standard-8' carries exactly 1 l4 GPU, not 4; remove gpusPerNode, which "
        "follows from the machine type, or use a machine type that carries 4: g2-standard-48",
    ),
    "gpus-per-node-on-eks": (
        _dev(publicGpuPools=_public_pool(gpusPerNode=4)),
        "hybrid:publicGpuPools[0].gpusPerNode",
        "pool 'gpu': 'g6.xlarge' carries exactly 1 l4 GPU, not 4; remove gpusPerNode, which "
        "follows from the machine type, or use a machine type that carries 4: g6.12xlarge, "
        "g6.24xlarge",
    ),
    "gpus-per-node-no-machine-carries": (
        _dev(privateGpuPools=_pool(gpusPerNode=3)),
        "hybrid:privateGpuPools[0].gpusPerNode",
        "pool 'gpu': 'g2-standard-8' carries exactly 1 l4 GPU, not 3; remove gpusPerNode, which "
        "follows from the machine type (no GCP machine type carries 3 l4 GPUs)",
    ),
    "n1-cannot-attach-that-many": (
        _dev(privateGpuPools=_pool(gpuType="t4", machineType="n1-standard-8", gpusPerNode=8)),
        "hybrid:privateGpuPools[0].gpusPerNode",
        "pool 'gpu': an N1 machine attaches 1, 2 or 4 t4 GPUs, not 8; 'n1-standard-8' takes "
        "1, 2 or 4",
    ),
    "n1-too-large-for-the-default-one-gpu": (
        _dev(privateGpuPools=_pool(gpuType="t4", machineType="n1-standard-64")),
        "hybrid:privateGpuPools[0].gpusPerNode",
        "pool 'gpu': 'n1-standard-64' has 64 vCPUs, and GCP allows at most 48 with 1 t4 GPU "
        "(the default); set gpusPerNode to 4, or use an N1 machine type with at most 48 vCPUs",
    ),
    "n1-too-large-for-two-v100s": (
        _dev(privateGpuPools=_pool(gpuType="v100", machineType="n1-highmem-32", gpusPerNode=2)),
        "hybrid:privateGpuPools[0].gpusPerNode",
        "pool 'gpu': 'n1-highmem-32' has 32 vCPUs, and GCP allows at most 24 with 2 v100 GPUs; "
        "set gpusPerNode to 4 or 8, or use an N1 machine type with at most 24 vCPUs",
    ),
    "negative-min-size": (
        _dev(publicGpuPools=_public_pool(minSize=-1)),
        "hybrid:publicGpuPools[0].minSize",
        "must be 0 or more, got -1",
    ),
    "misspelt-pool-field": (
        _dev(
            publicGpuPools=[
                {
                    "name": "gpu",
                    "gpuType": "l4",
                    "machinType": "g6.xlarge",
                    "minSize": 0,
                    "maxSize": 2,
                    "desiredSize": 1,
                }
            ]
        ),
        "hybrid:publicGpuPools[0].machinType",
        "unknown field; did you mean 'machineType'?",
    ),
    "unknown-pool-field": (
        _dev(publicGpuPools=_public_pool(colour="green")),
        "hybrid:publicGpuPools[0].colour",
        "unknown field; known fields: ['name', 'gpuType', 'machineType', 'minSize', 'maxSize', "
        "'desiredSize', 'spot', 'gpusPerNode']",
    ),
    "gpu-not-offered-on-gcp": (
        _dev(privateGpuPools=_pool(gpuType="a10g", machineType="g2-standard-8")),
        "hybrid:privateGpuPools[0].machineType",
        "GPU 'a10g' is not offered on GCP",
    ),
    "min-above-max": (
        _dev(publicGpuPools=_public_pool(minSize=3, maxSize=2, desiredSize=2)),
        "hybrid:publicGpuPools[0].minSize",
        "minSize 3 is above maxSize 2",
    ),
    "desired-outside-range": (
        _dev(privateGpuPools=_pool(desiredSize=5)),
        "hybrid:privateGpuPools[0].desiredSize",
        "desiredSize 5 is outside minSize..maxSize (0..2)",
    ),
    "aws-reserved-inside-range": (
        _dev(
            vpnInsideCidrs=[
                "169.254.1.0/30",
                "169.254.21.4/30",
                "169.254.22.0/30",
                "169.254.22.4/30",
            ]
        ),
        "hybrid:vpnInsideCidrs",
        "169.254.1.0/30 is reserved by AWS; pick another /30",
    ),
    "three-inside-ranges": (
        _dev(vpnInsideCidrs=["169.254.21.0/30", "169.254.21.4/30", "169.254.22.0/30"]),
        "hybrid:vpnInsideCidrs",
        "needs exactly 4 ranges (one per tunnel), got 3",
    ),
    "inside-range-not-link-local": (
        _dev(
            vpnInsideCidrs=["10.0.0.0/30", "169.254.21.4/30", "169.254.22.0/30", "169.254.22.4/30"]
        ),
        "hybrid:vpnInsideCidrs",
        "10.0.0.0/30 must be a /30 inside 169.254.0.0/16",
    ),
    "zone-outside-region": (
        _dev(awsAvailabilityZones=["us-east-1a", "us-west-2b"]),
        "hybrid:awsAvailabilityZones",
        "zone 'us-west-2b' is not in aws:region 'us-east-1'",
    ),
    "unknown-release-channel": (
        _dev(gkeReleaseChannel="NIGHTLY"),
        "hybrid:gkeReleaseChannel",
        "'NIGHTLY' is not one of ['RAPID', 'REGULAR', 'STABLE']",
    ),
    "log-retention-not-offered-by-cloudwatch": (
        _dev(logRetentionDays=42),
        "hybrid:logRetentionDays",
        "42 is not a CloudWatch Logs retention period; pick one of [1, 3, 5, 7, 14, 30, 60, 90, "
        "120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]",
    ),
    "vpc-too-small": (
        _dev(awsVpcCidr="10.10.0.0/24"),
        "hybrid:awsVpcCidr",
        "10.10.0.0/24 is a /24; use a /16 to /20 (AWS allows at most a /16, "
        "and smaller VPCs leave the EKS subnets too few addresses)",
    ),
    "malformed-cidr": (
        _dev(gkeServicesCidr="10.28.0.0/33"),
        "hybrid:gkeServicesCidr",
        "'10.28.0.0/33' is not a valid IPv4 CIDR ('33' is not a valid netmask)",
    ),
    "misspelt-key": (
        _dev(deletionProtecton=True),
        "hybrid:deletionProtecton",
        "unknown key; did you mean 'hybrid:deletionProtection'?",
    ),
    "misspelt-required-key": (
        _dev(publicGpuPols=read_stack_file("dev")["hybrid:publicGpuPools"], publicGpuPools=None),
        "hybrid:publicGpuPols",
        "unknown key; did you mean 'hybrid:publicGpuPools'?",  # and no "is required" after it
    ),
    "misspelt-key-in-another-case": (
        _dev(EksAdminPrincipals=["arn:aws:iam::111122223333:role/a"], eksAdminPrincipals=None),
        "hybrid:EksAdminPrincipals",
        "unknown key; did you mean 'hybrid:eksAdminPrincipals'?",
    ),
    "unknown-key-like-no-other": (
        _dev(colourScheme="dark"),
        "hybrid:colourScheme",
        "unknown key; see Pulumi.yaml, which declares the known keys, or README.md's "
        "Configuration reference",
    ),
    "addon-switch-not-a-boolean": (
        _dev(installClusterAutoscaler="maybe"),
        "hybrid:installClusterAutoscaler",
        "must be true or false, got 'maybe'",
    ),
    "latency-slo-for-an-unknown-model": (
        _dev(latencySloMs={"text_search": 200}),
        "hybrid:latencySloMs.text_search",
        "unknown model; known models: ['ctr_ranker', 'text_embedding']",
    ),
    "latency-slo-not-positive": (
        _dev(latencySloMs={"text_embedding": 0}),
        "hybrid:latencySloMs.text_embedding",
        "must be an integer of ms in 1..60000, got 0",
    ),
    "int8-on-a-gpu-target": (
        _dev(encoderPrecision={"public": "int8"}),
        "hybrid:encoderPrecision.public",
        "'int8' is not one of ['fp16']: a GPU target serves TensorRT FP16 plans (the FP32 ONNX "
        "graph until hybrid:tensorrtPlans has built them); INT8 is a CPU format here",
    ),
    "precision-the-cpu-target-cannot-serve": (
        _dev(encoderPrecision={"local": "int4"}),
        "hybrid:encoderPrecision.local",
        "'int4' is not one of ['fp32', 'int8']: a CPU target serves onnxruntime FP32 or the "
        "gated INT8 variant",
    ),
    "precision-for-an-unknown-target": (
        _dev(encoderPrecision={"edge": "int8"}),
        "hybrid:encoderPrecision.edge",
        "unknown target; known targets: ['local', 'public', 'private']",
    ),
    "precision-not-a-map": (
        _dev(encoderPrecision="int8"),
        "hybrid:encoderPrecision",
        "must map a target ['local', 'public', 'private'] to a precision",
    ),
    "asn-not-a-number": (
        _dev(awsAsn="sixty-four"),
        "hybrid:awsAsn",
        "must be an integer, got 'sixty-four'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_a_bad_config_names_the_key_and_the_fix(case: str) -> None:
    raw, key, message = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("dev", raw)
    problems = [(p.key, p.message) for p in caught.value.problems]
    assert problems == [(key, message)]
    assert "Pulumi.dev.yaml" in str(caught.value)


def test_product_search_has_a_200_ms_slo_by_default() -> None:
    assert load_stack_config("dev").serving.latency_slo_ms == {"text_embedding": 200}
    slos = parse_stack_config("dev", _dev(latencySloMs='{"text_embedding": 150}'))
    assert slos.serving.latency_slo_ms == {"text_embedding": 150}, "JSON text, as the engine"


def test_each_target_serves_its_precision() -> None:
    defaults = parse_stack_config("dev", _dev(encoderPrecision=None)).serving.encoder_precision
    assert defaults == {"local": "fp32", "public": "fp16", "private": "fp16"}
    engine = parse_stack_config("dev", _dev(encoderPrecision='{"local": "fp32"}'))
    assert engine.serving.encoder_precision["local"] == "fp32", "JSON text, as the engine"


def test_prod_needs_three_zones() -> None:
    raw = read_stack_file("prod") | {"hybrid:awsAvailabilityZones": ["us-east-1a", "us-east-1b"]}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("prod", raw)
    assert [(p.key, p.message) for p in caught.value.problems] == [
        (
            "hybrid:awsAvailabilityZones",
            "needs at least 3 distinct zones for stack 'prod', got ['us-east-1a', 'us-east-1b']",
        )
    ]


def test_every_problem_is_reported_at_once() -> None:
    raw = _dev(gcpAsn=64512, gkeControlPlaneCidr="172.16.0.0/24", adminCidrs=["0.0.0.0/0"])
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("dev", raw)
    keys = sorted(p.key for p in caught.value.problems)
    assert keys == ["hybrid:adminCidrs", "hybrid:gcpAsn", "hybrid:gkeControlPlaneCidr"]
    assert str(caught.value).startswith("Stack 'dev' has 3 configuration problem(s)")


def test_every_problem_in_a_pool_is_reported_at_once() -> None:
    many_mistakes = {
        "nmae": "gpu", "gpuType": "rtx4090", "machineType": "g6.huge", "minSize": -1,
        "maxSize": "two", "desiredSize": 1, "spot": "maybe", "gpusPerNode": 0,
    }  # fmt: skip
    second = _public_pool(name="l4", machineType="g6.xlarge", desiredSize=3)[0]
    again = _public_pool(name="l4", gpusPerNode=2)[0]
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("dev", _dev(publicGpuPools=[many_mistakes, second, again]))
    assert [(p.key, p.message) for p in caught.value.problems] == [
        ("hybrid:publicGpuPools[0].nmae", "unknown field; did you mean 'name'?"),
        (
            "hybrid:publicGpuPools[0].gpuType",
            "unknown GPU type 'rtx4090'; known: ['a100-40gb', 'a100-80gb', 'a10g', 'h100-80gb', "
            "'l4', 'l40s', 't4', 'v100']",
        ),
        ("hybrid:publicGpuPools[0].gpusPerNode", "must be 1 or more, got 0"),
        ("hybrid:publicGpuPools[0].maxSize", "must be an integer, got 'two'"),
        ("hybrid:publicGpuPools[0].minSize", "must be 0 or more, got -1"),
        ("hybrid:publicGpuPools[0].spot", "must be true or false, got 'maybe'"),
        (
            "hybrid:publicGpuPools[1].desiredSize",
            "desiredSize 3 is outside minSize..maxSize (0..2)",
        ),
        ("hybrid:publicGpuPools[2].name", "pool name 'l4' is used twice"),
        (
            "hybrid:publicGpuPools[2].gpusPerNode",
            "pool 'l4': 'g6.xlarge' carries exactly 1 l4 GPU, not 2; remove gpusPerNode, which "
            "follows from the machine type (no AWS machine type carries 2 l4 GPUs)",
        ),
    ]


@pytest.mark.parametrize(
    ("site", "pool", "gpus_per_node"),
    [
        ("public", {"machineType": "g6.12xlarge"}, 4),
        ("public", {"gpuType": "t4", "machineType": "g4dn.metal"}, 8),
        ("public", {"gpuType": "h100-80gb", "machineType": "p5.4xlarge"}, 1),
        ("private", {"machineType": "g2-standard-48"}, 4),
        ("private", {"machineType": "g2-standard-48", "gpusPerNode": 4}, 4),
        ("private", {"gpuType": "a100-40gb", "machineType": "a2-megagpu-16g"}, 16),
        ("private", {"gpuType": "t4", "machineType": "n1-standard-8"}, 1),
        ("private", {"gpuType": "t4", "machineType": "n1-standard-8", "gpusPerNode": 2}, 2),
        ("private", {"gpuType": "v100", "machineType": "n1-highmem-96", "gpusPerNode": 8}, 8),
    ],
)
def test_the_machine_type_decides_the_gpus_per_node(
    site: str, pool: dict[str, Any], gpus_per_node: int
) -> None:
    """Fixed-count machines carry what they carry; N1 machines attach what gpusPerNode asks."""
    pools = _public_pool(**pool) if site == "public" else _pool(**pool)
    config = parse_stack_config("dev", _dev(**{f"{site}GpuPools": pools}))
    [parsed] = config.public.gpu_pools if site == "public" else config.private.gpu_pools
    assert parsed.gpus_per_node == gpus_per_node


def test_opting_in_to_a_public_control_plane_is_accepted() -> None:
    raw = _dev(adminCidrs=["0.0.0.0/0"], allowPublicControlPlane=True)
    assert parse_stack_config("dev", raw).admin_cidrs == ("0.0.0.0/0",)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_committed_stacks_are_valid(stack: str) -> None:
    config = load_stack_config(stack)
    assert config.public.gpu_pools and config.private.gpu_pools
    assert config.deletion_protection is (stack == "prod")


def test_every_addon_is_installed_unless_switched_off() -> None:
    for stack in ("dev", "staging", "prod"):
        assert load_stack_config(stack).addons == AddonsConfig(True, True, True)
    # The engine passes booleans as text.
    raw = _dev(installKubePrometheusStack="false", installPrometheusAdapter="false")
    assert parse_stack_config("dev", raw).addons == AddonsConfig(
        kube_prometheus_stack=False, prometheus_adapter=False, cluster_autoscaler=True
    )


def test_the_engine_reader_turns_problems_into_a_plain_run_error() -> None:
    """Under ``pulumi up`` a bad config ends the run with the list, not a traceback."""
    from pulumi.runtime import settings
    from pulumi.runtime.config import set_all_config

    from infra.config import read_stack_config

    raw = _dev(gcpAsn=64512)
    settings.reset_options(project="hybrid", stack="dev")
    set_all_config({k: v if isinstance(v, str) else _json(v) for k, v in raw.items()})
    try:
        with pytest.raises(pulumi.RunError) as caught:
            read_stack_config()
    finally:
        set_all_config({})
    assert "hybrid:gcpAsn: equals hybrid:awsAsn (64512); use two ASNs" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
