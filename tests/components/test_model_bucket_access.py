"""The bucket identities under the real program: who may assume them, and that they only read
the model prefix (no ``*`` anywhere, nothing outside ``repo/``, the bucket's own key only).

These check the documents' shape; ``tests/policy/test_client_requests.py`` checks what they
decide on the requests Triton really sends."""

import json

import pytest

from hybrid.config import load_stack_config
from hybrid.triton import NAMESPACE, SERVICE_ACCOUNT
from tests.components.serving_support import STACKS, evaluation, k8s_object, on_site

pytestmark = pytest.mark.usefixtures("rendered_repositories")

TRITON_SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"


def triton_role(stack: str):
    (role,) = [
        r
        for r in evaluation(stack).of_type("aws:iam/role:Role")
        if r.name == "public-triton-identity-role"
    ]
    return role


def role_policies(stack: str, role) -> list[dict]:
    return [
        json.loads(p.inputs["policy"])
        for p in evaluation(stack).of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role.outputs["name"] or p.inputs["role"] == role.outputs.get("id")
    ]


def public_bucket(stack: str):
    (obj, *_) = [r for r in evaluation(stack).of_type("aws:s3/bucketObjectv2:BucketObjectv2")]
    (bucket,) = [
        b
        for b in evaluation(stack).of_type("aws:s3/bucket:Bucket")
        if b.outputs["bucket"] == obj.inputs["bucket"]
    ]
    return bucket


@pytest.mark.parametrize("stack", STACKS)
def test_irsa_role_trusts_only_the_triton_service_account_of_its_cluster(stack):
    ev = evaluation(stack)
    (oidc,) = ev.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = oidc.inputs["url"].removeprefix("https://")
    trust = json.loads(triton_role(stack).inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": oidc.outputs["arn"]}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {f"{issuer}:sub": TRITON_SUBJECT, f"{issuer}:aud": "sts.amazonaws.com"}
    }


@pytest.mark.parametrize("stack", STACKS)
def test_irsa_policy_reads_the_model_prefix_and_decrypts_with_the_bucket_cmk_only(stack):
    role = triton_role(stack)
    (policy,) = role_policies(stack, role)
    bucket_arn = public_bucket(stack).outputs["arn"]
    encryption = [
        r
        for r in evaluation(stack).of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        if bucket_arn.endswith(":" + r.inputs["bucket"])
    ]
    (rule,) = encryption[0].inputs["rules"]
    cmk = rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    grants = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert {sid: _listed(g["Action"]) for sid, g in grants.items()} == {
        "ReadModelRepository": ["s3:GetObject"],
        "ListModelRepository": ["s3:ListBucket"],
        "HeadModelBucket": ["s3:ListBucket"],
        "DecryptModelRepository": ["kms:Decrypt"],
    }
    assert _listed(grants["ReadModelRepository"]["Resource"]) == [f"{bucket_arn}/repo/*"]
    listing = grants["ListModelRepository"]
    assert _listed(listing["Resource"]) == [bucket_arn]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["repo/*"]}}
    # HeadBucket is s3:ListBucket without any s3:prefix (policy.client_requests judges it).
    assert _listed(grants["HeadModelBucket"]["Resource"]) == [bucket_arn]
    assert grants["HeadModelBucket"]["Condition"] == {"Null": {"s3:prefix": "true"}}
    assert _listed(grants["DecryptModelRepository"]["Resource"]) == [cmk]
    region = load_stack_config(stack).public.region
    assert grants["DecryptModelRepository"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}
    }


@pytest.mark.parametrize("stack", STACKS)
def test_no_wildcard_action_or_resource_in_any_serving_policy(stack):
    role = triton_role(stack)
    documents = [json.loads(role.inputs["assumeRolePolicy"]), *role_policies(stack, role)]
    for document in documents:
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            for action in _listed(statement["Action"]):
                assert "*" not in action, (action, statement)
            for resource in _listed(statement.get("Resource", [])):
                assert resource != "*", statement
                # The only wildcard allowed is the object suffix of the model prefix.
                assert "*" not in resource or resource.endswith("/repo/*"), resource


@pytest.mark.parametrize("stack", STACKS)
def test_triton_service_account_carries_the_role(stack):
    account = k8s_object(evaluation(stack), "public", "ServiceAccount", SERVICE_ACCOUNT)
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": triton_role(stack).outputs["arn"]
    }
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_gcp_service_account_is_bound_to_the_triton_ksa_and_reads_the_model_bucket_only(stack):
    ev = evaluation(stack)
    config = load_stack_config(stack)
    (account,) = [
        a
        for a in ev.of_type("gcp:serviceaccount/account:Account")
        if a.name.startswith("private-triton")
    ]
    email = account.outputs["email"]
    member = f"serviceAccount:{email}"
    (binding,) = [
        b
        for b in ev.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if b.inputs["serviceAccountId"] == account.outputs["name"]
    ]
    assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert binding.inputs["member"] == (
        f"serviceAccount:{config.private.project}.svc.id.goog[{NAMESPACE}/{SERVICE_ACCOUNT}]"
    )
    grants = [r for r in ev.resources if r.inputs.get("member") == member]
    # objectViewer reads objects; legacyBucketReader adds the bucket metadata Triton reads first.
    assert sorted((g.type, g.inputs["role"]) for g in grants) == [
        ("gcp:storage/bucketIAMMember:BucketIAMMember", "roles/storage.legacyBucketReader"),
        ("gcp:storage/bucketIAMMember:BucketIAMMember", "roles/storage.objectViewer"),
    ]
    (object_,) = ev.of_type("gcp:storage/bucketObject:BucketObject")[:1]
    assert {g.inputs["bucket"] for g in grants} == {object_.inputs["bucket"]}
    ksa = k8s_object(ev, "private", "ServiceAccount", SERVICE_ACCOUNT)
    assert ksa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": email}


@pytest.mark.parametrize("stack", STACKS)
def test_no_private_only_model_in_any_public_site_resource(stack):
    private_only = load_stack_config(stack).private_only_models()
    for resource in on_site(evaluation(stack), "public"):
        text = json.dumps([resource.name, resource.inputs], default=str)
        for model in private_only:
            assert model not in text, f"{model} appears in public resource {resource.name}"


def _listed(value) -> list:
    return [value] if isinstance(value, str) else list(value)
