"""The policies against the real stack program: they see its objects, and they bite.

Each case takes the mocked dev stack, breaks one real object the way a careless change
would, and expects exactly one new violation from the policy that guards it. A policy
that silently stopped matching the program's resource shapes fails here.
"""

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.offline import MockedResource, StackEvaluation
from policy import POLICIES
from policy.engine import Violation
from policy.engine import evaluate as run_policies
from policy.pack_config import load_pack_config
from policy.workloads import is_triton
from tests.policy.builders import changed

Mutation = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def dev(evaluate: Callable[..., StackEvaluation]) -> StackEvaluation:
    return evaluate("dev")


def judge(resources: list[MockedResource]) -> list[Violation]:
    return run_policies(resources, POLICIES, load_pack_config("dev"))


def broken(dev: StackEvaluation, type_: str, name: str, mutate: Mutation) -> list[Violation]:
    """Violations that appear when the one resource ``name`` is changed by ``mutate``."""
    target = dev.one(type_, name)
    inputs = mutate(target.inputs)
    changed_one = dataclasses.replace(target, inputs=inputs, outputs={**target.outputs, **inputs})
    resources = [changed_one if r is target else r for r in dev.resources]
    before = {(v.policy, v.urn, v.message) for v in judge(dev.resources)}
    return [v for v in judge(resources) if (v.policy, v.urn, v.message) not in before]


def test_the_triton_policies_see_both_sites_deployments(dev: StackEvaluation) -> None:
    deployments = dev.of_type("kubernetes:apps/v1:Deployment")
    triton = {
        d.name
        for d in deployments
        for c in d.inputs["spec"]["template"]["spec"]["containers"]
        if is_triton(c)
    }
    assert triton == {"public-triton-deployment", "private-triton-deployment"}


def _container(mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> Mutation:
    def apply(inputs: dict[str, Any]) -> dict[str, Any]:
        container = inputs["spec"]["template"]["spec"]["containers"][0]
        return changed(inputs, "spec.template.spec.containers.0", mutate(container))

    return apply


def _policy_document(mutate: Callable[[dict[str, Any]], None]) -> Mutation:
    def apply(inputs: dict[str, Any]) -> dict[str, Any]:
        document = json.loads(inputs["policy"])
        mutate(document)
        return {**inputs, "policy": json.dumps(document)}

    return apply


DEPLOYMENT = ("kubernetes:apps/v1:Deployment", "public-triton-deployment")
LOAD_BALANCER = ("kubernetes:core/v1:Service", "public-triton-load-balancer")
CASES: dict[str, tuple[tuple[str, str], Mutation, str]] = {
    "private model on the public site": (
        DEPLOYMENT,
        _container(lambda c: {**c, "args": [*c["args"], "--load-model=ctr_ranker"]}),
        "private-models-stay-private",
    ),
    "floating image tag": (
        DEPLOYMENT,
        _container(lambda c: {**c, "image": "nvcr.io/nvidia/tritonserver:latest"}),
        "triton-image-pinned",
    ),
    "no limits": (
        DEPLOYMENT,
        _container(lambda c: changed(c, "resources.limits", {"nvidia.com/gpu": "1"})),
        "triton-resource-limits",
    ),
    "writable root filesystem": (
        DEPLOYMENT,
        _container(lambda c: changed(c, "securityContext.readOnlyRootFilesystem", False)),
        "triton-security-context",
    ),
    "no liveness probe": (
        DEPLOYMENT,
        _container(lambda c: {k: v for k, v in c.items() if k != "livenessProbe"}),
        "triton-probes",
    ),
    "metrics on the load balancer": (
        LOAD_BALANCER,
        lambda i: changed(
            i, "spec.ports", [*i["spec"]["ports"], {"name": "metrics", "port": 8002}]
        ),
        "metrics-not-on-load-balancer",
    ),
    "load balancer open to everyone": (
        LOAD_BALANCER,
        lambda i: changed(i, "spec.loadBalancerSourceRanges", ["0.0.0.0/0"]),
        "no-open-ingress",
    ),
    "wildcard resource for Triton's bucket role": (
        ("aws:iam/rolePolicy:RolePolicy", "public-triton-identity-policy"),
        _policy_document(lambda d: d["Statement"][0].update(Resource="*")),
        "iam-no-wildcards",
    ),
    "cluster autoscaler may resize any Auto Scaling group": (
        ("aws:iam/rolePolicy:RolePolicy", "public-addons-cluster-autoscaler"),
        _policy_document(lambda d: d["Statement"][0]["Action"].extend(d["Statement"][2]["Action"])),
        "iam-no-wildcards",
    ),
    "basic role for the GKE nodes": (
        ("gcp:projects/iAMMember:IAMMember", "private-nodes-artifactregistry.reader"),
        lambda i: {**i, "role": "roles/editor"},
        "iam-no-wildcards",
    ),
    "private model object in the public bucket": (
        ("aws:s3/bucketObjectv2:BucketObjectv2", "public-repository-tokenizer/config.pbtxt"),
        lambda i: {**i, "key": i["key"].replace("tokenizer/", "ctr_ranker/")},
        "private-models-stay-private",
    ),
    "GKE authorized network opened to everyone": (
        ("gcp:container/cluster:Cluster", "private-gke"),
        lambda i: changed(i, "masterAuthorizedNetworksConfig.cidrBlocks.0.cidrBlock", "0.0.0.0/0"),
        "gke-cluster-hardened",
    ),
    "untainted GPU node group": (
        ("aws:eks/nodeGroup:NodeGroup", "public-t4-spot-nodes"),
        lambda i: {k: v for k, v in i.items() if k != "taints"},
        "gpu-pool-tainted",
    ),
    "EKS without audit logs": (
        ("aws:eks/cluster:Cluster", "public-eks"),
        lambda i: {**i, "enabledClusterLogTypes": ["api", "authenticator"]},
        "eks-cluster-hardened",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_breaking_a_real_object_trips_its_policy(dev: StackEvaluation, case: str) -> None:
    (type_, name), mutate, policy = CASES[case]
    new = broken(dev, type_, name, mutate)
    assert [v.policy for v in new] == [policy], [v.message for v in new]
    assert new[0].mandatory
    assert new[0].urn is not None and new[0].urn.endswith(f"::{name}")
