"""Every stack, judged on the requests its real clients send (policy.client_requests)."""

import dataclasses
import json
import time

import pytest

from hybrid.triton import NAMESPACE, SERVICE_ACCOUNT
from infra.offline import StackEvaluation
from policy.client_requests import access_violations, client_requests
from tests.conftest import STACKS, evaluated


@pytest.mark.parametrize("stack", STACKS)
def test_every_client_request_gets_its_decision(stack: str) -> None:
    evaluation = evaluated(stack)
    started = time.perf_counter()
    violations = access_violations(evaluation)
    seconds = time.perf_counter() - started
    assert not violations, "\n".join(violations)
    assert seconds < 2, f"stack {stack}: judging the client requests took {seconds:.2f} s"


REQUIRED = [
    # (site, request name starts with, expected decision)
    ("public", "Triton HeadBucket", True),
    ("public", "Triton ListObjectsV2 prefix=repo/", True),
    ("public", "Triton GetObject repo/", True),
    ("public", "Triton kms:Decrypt via S3", True),
    ("public", "Triton ListObjectsV2 prefix=logs/", False),
    ("public", "Triton PutObject", False),
    ("public", "Triton GetObject secrets/", False),
    (
        "public",
        f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT} assumes the Triton role",
        True,
    ),
    ("public", "system:serviceaccount:default:x assumes the Triton role", False),
    ("public", "another account's admin reads the repository", False),
    ("public", "PutObject of ", True),
    ("public", "log delivery on behalf of another account", False),
    ("private", "Triton GetBucketMetadata", True),
    ("private", "Triton ListObjects", True),
    ("private", "Triton ReadObject", True),
    ("private", "Triton InsertObject", False),
    ("private", "default/x impersonates", False),
]


@pytest.mark.parametrize("stack", STACKS)
def test_the_catalog_sends_what_the_clients_send(stack: str) -> None:
    """Not vacuous: every stack's catalog holds the requests the brief of each client implies."""
    catalog = {(r.site.split()[0], r.name, r.allowed) for r in client_requests(evaluated(stack))}
    for site, name, allowed in REQUIRED:
        assert any(s == site and n.startswith(name) and a == allowed for s, n, a in catalog), (
            f"stack {stack}: the catalog has no {site} request '{name}...' expected "
            f"{'ALLOWED' if allowed else 'DENIED'}"
        )


def test_the_plan_jobs_are_judged_where_the_stack_builds_plans() -> None:
    """prod builds TensorRT plans on both sites: each Job's copies are in the catalog."""
    evaluation = evaluated("prod")
    jobs = {j.inputs["metadata"]["name"] for j in evaluation.of_type("kubernetes:batch/v1:Job")}
    assert jobs, "prod enables TensorRT plans, so it must have plan Jobs"
    catalog = client_requests(evaluation)
    for job in jobs:
        judged = [r for r in catalog if f"Job {job}," in r.client]
        assert any(r.allowed and ".plan" in r.name for r in judged), f"{job}: no plan upload judged"
        assert any(not r.allowed and "model.onnx" in r.name for r in judged), job


def with_triton_policy(evaluation: StackEvaluation, statements: list[dict]) -> StackEvaluation:
    """``evaluation`` with the Triton role's inline policy replaced by ``statements``."""
    resources = [
        dataclasses.replace(
            r,
            inputs=r.inputs
            | {"policy": json.dumps({"Version": "2012-10-17", "Statement": statements})},
        )
        if r.name == "public-triton-identity-policy"
        else r
        for r in evaluation.resources
    ]
    return dataclasses.replace(evaluation, resources=resources)


def test_a_prefix_only_listing_grant_is_caught_with_the_deciding_statements() -> None:
    """The shape that passed review and crash-looped Triton: ListBucket only with s3:prefix."""
    evaluation = evaluated("dev")
    bucket = next(
        r.outputs["arn"]
        for r in evaluation.of_type("aws:s3/bucket:Bucket")
        if r.name == "public-models-bucket"
    )
    prefix_only = {
        "Sid": "ListModelRepository",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket,
        "Condition": {"StringLike": {"s3:prefix": "repo/*"}},
    }
    (violation,) = [
        v
        for v in access_violations(with_triton_policy(evaluation, [prefix_only]))
        if "HeadBucket" in v
    ]
    assert violation.startswith("stack dev, public site")
    assert "S3FileSystem::CheckClient" in violation
    assert "must be ALLOWED, got DENY (implicit deny of s3:ListBucket" in violation


def test_a_missing_identity_is_reported_not_raised() -> None:
    evaluation = evaluated("dev")
    without = dataclasses.replace(
        evaluation,
        resources=[r for r in evaluation.resources if r.name != "public-triton-identity-role"],
    )
    assert access_violations(without) == [
        f"stack dev: the stack has no IRSA role for {NAMESPACE}/{SERVICE_ACCOUNT}"
    ]


def test_a_preview_is_refused_not_judged() -> None:
    with pytest.raises(ValueError, match="preview"):
        access_violations(dataclasses.replace(evaluated("dev"), preview=True))
