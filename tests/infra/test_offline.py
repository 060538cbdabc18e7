"""The mocks harness itself: reusable in one process, deterministic, realistic, strict."""

import ipaddress
import re

import pytest

from hybrid.config import ConfigError
from infra.offline import StackEvaluation, evaluate_stack

pytestmark = pytest.mark.usefixtures("rendered_repositories")


def test_stacks_evaluate_one_after_another_without_leaking(evaluate) -> None:  # type: ignore[no-untyped-def]
    dev: StackEvaluation = evaluate("dev")
    staging: StackEvaluation = evaluate("staging")
    assert all(r.urn.startswith("urn:pulumi:dev::hybrid::") for r in dev.resources)
    assert all(r.urn.startswith("urn:pulumi:staging::") for r in staging.resources)
    again = evaluate_stack("dev")
    # RPCs finish in any order, but the graph and every fabricated ID are the same.
    assert sorted((r.urn, r.id) for r in again.resources) == sorted(
        (r.urn, r.id) for r in dev.resources
    )


def test_config_overrides_change_the_graph() -> None:
    pools = [
        {"name": "l4", "gpuType": "l4", "machineType": "g2-standard-8",
         "minSize": 0, "maxSize": 2, "desiredSize": 0},
        {"name": "t4", "gpuType": "t4", "machineType": "n1-standard-8",
         "minSize": 0, "maxSize": 1, "desiredSize": 0, "spot": True},
    ]  # fmt: skip
    evaluation = evaluate_stack("dev", config_overrides={"hybrid:privateGpuPools": pools})
    gpu_pools = [
        p.name
        for p in evaluation.of_type("gcp:container/nodePool:NodePool")
        if p.inputs["nodeConfig"]["guestAccelerators"]
    ]
    assert sorted(gpu_pools) == ["private-l4-nodes", "private-t4-nodes"]


def test_a_bad_config_raises_config_error_before_running() -> None:
    with pytest.raises(ConfigError) as caught:
        evaluate_stack("staging", config_overrides={"hybrid:adminCidrs": None})
    assert [p.key for p in caught.value.problems] == ["hybrid:adminCidrs", "hybrid:adminCidrs"]
    assert caught.value.problems[0].message == "is required"


def test_fabricated_outputs_look_like_the_real_ones(evaluate) -> None:  # type: ignore[no-untyped-def]
    ev: StackEvaluation = evaluate("dev")
    arn = re.compile(r"^arn:aws:[a-z0-9-]+:(us-east-1)?:\d{12}:.+$")
    for resource in ev.resources:
        if "arn" in resource.outputs and resource.type != "aws:s3/bucket:Bucket":
            assert arn.match(resource.outputs["arn"]), (resource.type, resource.outputs["arn"])
    cluster = ev.of_type("aws:eks/cluster:Cluster")[0]
    issuer = cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert re.fullmatch(r"https://oidc\.eks\.us-east-1\.amazonaws\.com/id/[0-9A-F]{32}", issuer)
    ha = ev.of_type("gcp:compute/haVpnGateway:HaVpnGateway")[0].outputs["vpnInterfaces"]
    assert [i["id"] for i in ha] == [0, 1]
    assert all(ipaddress.IPv4Address(i["ipAddress"]).is_global for i in ha)
    for connection in ev.of_type("aws:ec2/vpnConnection:VpnConnection"):
        for t in (1, 2):
            outside = ipaddress.IPv4Address(connection.outputs[f"tunnel{t}Address"])
            inside = ipaddress.IPv4Network(connection.inputs[f"tunnel{t}InsideCidr"])
            assert outside.is_global
            assert connection.outputs[f"tunnel{t}VgwInsideAddress"] == str(inside[1])
            assert connection.outputs[f"tunnel{t}CgwInsideAddress"] == str(inside[2])
    bucket = ev.of_type("gcp:storage/bucket:Bucket")[0]
    assert bucket.outputs["url"] == f"gs://{bucket.outputs['name']}"


def test_components_and_providers_are_recorded(evaluate) -> None:  # type: ignore[no-untyped-def]
    ev: StackEvaluation = evaluate("dev")
    components = {r.type for r in ev.resources if not r.custom}
    assert {
        "hybrid:aws_network:AwsNetwork",
        "hybrid:gcp_network:GcpNetwork",
        "hybrid:hybrid_vpn:HybridVpn",
        "hybrid:public_cluster:PublicCluster",
        "hybrid:private_cluster:PrivateCluster",
        "hybrid:gpu_node_pool:GpuNodePool",
        "hybrid:encrypted_bucket:EncryptedBucket",
        "hybrid:serving_pki:ServingPki",
    } <= components
    vpn = ev.one("hybrid:hybrid_vpn:HybridVpn", "vpn")
    providers = {ev.by_urn(c.provider).type for c in ev.children_of(vpn) if c.provider}
    assert providers == {"pulumi:providers:aws", "pulumi:providers:gcp"}
    assert ev.counts_by_type()["gcp:compute/vPNTunnel:VPNTunnel"] == 4


def test_an_opted_in_open_control_plane_opens_eks_but_never_gke() -> None:
    evaluation = evaluate_stack(
        "dev",
        config_overrides={
            "hybrid:adminCidrs": ["0.0.0.0/0"],
            "hybrid:allowPublicControlPlane": True,
        },
    )
    eks = evaluation.of_type("aws:eks/cluster:Cluster")[0]
    gke = evaluation.of_type("gcp:container/cluster:Cluster")[0]
    assert eks.inputs["vpcConfig"]["publicAccessCidrs"] == ["0.0.0.0/0"]
    blocks = gke.inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]
    assert [b["cidrBlock"] for b in blocks] == [evaluation.config.public.vpc_cidr]
    assert gke.inputs["privateClusterConfig"]["enablePrivateEndpoint"] is True
