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
        "'n1-standard-8' cannot attach nvidia-l4 (l4); use g2-*",
    ),
    "t4-on-a-g5-instance": (
        _dev(publicGpuPools=_public_pool(gpuType="t4", machineType="g5.xlarge")),
        "hybrid:publicGpuPools[0].machineType",
        "'g5.xlarge' does not carry a t4; use g4dn.*",
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
        None,  # the message lists every known key; checked separately below
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
    assert [k for k, _ in problems] == [key], problems
    if message is not None:
        assert problems[0][1] == message
    else:
        assert problems[0][1].startswith("unknown key; known hybrid keys: [")
        assert "'hybrid:deletionProtection'" in problems[0][1]
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
