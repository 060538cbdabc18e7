"""The GCP evaluator: predefined roles as Google lists them, inheritance, the CEL the stack
writes, and loud refusals of what it does not implement."""

import pytest

from policy.decision import UnsupportedPolicy
from policy.gcp_iam import ROLES, Binding, Request, condition_holds, evaluate

ROLES_PAGE = "https://cloud.google.com/storage/docs/access-control/iam-roles"
SA = "serviceAccount:reader@acme.iam.gserviceaccount.com"
BUCKET = "projects/_/buckets/models"
PROJECT = "projects/acme"
OBJECT = f"{BUCKET}/objects/repo/abc/m/1/model.plan"
PLANS = {
    "title": "plans",
    "expression": f'resource.name.startsWith("{BUCKET}/objects/repo/abc/") '
    '&& resource.name.endsWith(".plan")',
}


def on_object(permission: str, name: str = OBJECT, member: str = SA) -> Request:
    return Request(member, permission, name, (BUCKET, PROJECT))


def on_bucket(permission: str, member: str = SA) -> Request:
    return Request(member, permission, BUCKET, (PROJECT,))


def grant(role: str, resource: str = BUCKET, condition: dict[str, str] | None = None) -> Binding:
    return Binding(f"grant {role}", resource, role, SA, condition)


ROLE_FACTS = {
    # Google's table: objectViewer reads and lists objects, but not the bucket's metadata.
    "roles/storage.objectViewer": (
        {"storage.objects.get", "storage.objects.list"},
        {"storage.buckets.get"},
    ),
    "roles/storage.legacyBucketReader": (
        {"storage.buckets.get", "storage.objects.list"},
        {"storage.objects.get"},
    ),
    "roles/storage.objectCreator": (
        {"storage.objects.create"},
        {"storage.objects.delete", "storage.objects.get"},
    ),
    "roles/iam.workloadIdentityUser": (
        {"iam.serviceAccounts.getAccessToken"},
        {"iam.serviceAccounts.actAs"},
    ),
    "roles/cloudkms.cryptoKeyEncrypterDecrypter": (
        {"cloudkms.cryptoKeyVersions.useToDecrypt", "cloudkms.cryptoKeyVersions.useToEncrypt"},
        {"cloudkms.cryptoKeys.get"},
    ),
}
"""Role -> (permissions it has, permissions it must not have)."""


@pytest.mark.parametrize("role", list(ROLE_FACTS))
def test_predefined_roles_as_google_lists_them(role: str) -> None:
    has, lacks = ROLE_FACTS[role]
    assert has <= ROLES[role], f"{role} ({ROLES_PAGE}) lacks {has - ROLES[role]}"
    assert not lacks & ROLES[role], f"{role} ({ROLES_PAGE}) must not include {lacks & ROLES[role]}"


def test_a_bucket_grant_covers_its_objects_and_names_the_binding() -> None:
    decision = evaluate(on_object("storage.objects.get"), [grant("roles/storage.objectViewer")])
    assert decision.allowed, decision
    assert "grant roles/storage.objectViewer" in decision.reason


def test_a_project_grant_is_inherited() -> None:
    assert evaluate(
        on_object("storage.objects.get"), [grant("roles/storage.objectViewer", PROJECT)]
    ).allowed


def test_a_grant_on_another_bucket_or_to_another_member_does_not_apply() -> None:
    elsewhere = grant("roles/storage.objectViewer", "projects/_/buckets/other")
    assert not evaluate(on_object("storage.objects.get"), [elsewhere]).allowed
    stranger = "serviceAccount:x@other.iam.gserviceaccount.com"
    decision = evaluate(
        on_object("storage.objects.get", member=stranger), [grant("roles/storage.objectViewer")]
    )
    assert not decision.allowed
    assert "no binding" in decision.reason and stranger in decision.reason


def test_object_viewer_alone_cannot_read_bucket_metadata() -> None:
    """Why Triton's GCS filesystem needs more than objectViewer (it reads the bucket first)."""
    assert not evaluate(
        on_bucket("storage.buckets.get"), [grant("roles/storage.objectViewer")]
    ).allowed
    assert evaluate(
        on_bucket("storage.buckets.get"), [grant("roles/storage.legacyBucketReader")]
    ).allowed


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        (OBJECT, True),
        (f"{BUCKET}/objects/repo/abc/m/1/model.onnx", False),
        (f"{BUCKET}/objects/repo/other/m/1/model.plan", False),
    ],
)
def test_a_conditional_grant_holds_only_where_its_condition_does(name: str, allowed: bool) -> None:
    binding = grant("roles/storage.objectCreator", condition=PLANS)
    decision = evaluate(on_object("storage.objects.create", name), [binding])
    assert decision.allowed == allowed, decision


def test_a_conditional_object_grant_does_not_reach_the_bucket() -> None:
    binding = grant("roles/storage.objectViewer", condition=PLANS)
    assert not evaluate(on_bucket("storage.objects.list"), [binding]).allowed


@pytest.mark.parametrize(
    "expression",
    [
        'resource.name.startsWith("a") || resource.name.endsWith("b")',
        'resource.name.startsWith("a") && request.time < timestamp("2030-01-01T00:00:00Z")',
        'resource.type == "storage.googleapis.com/Object"',
        'resource.name.startsWith("a\\"b")',
        "",
    ],
)
def test_other_cel_raises(expression: str) -> None:
    with pytest.raises(UnsupportedPolicy):
        condition_holds(expression, OBJECT)


def test_a_role_not_in_the_data_raises() -> None:
    with pytest.raises(UnsupportedPolicy, match=r"roles/storage\.admin"):
        evaluate(on_object("storage.objects.get"), [grant("roles/storage.admin")])


@pytest.mark.parametrize(
    "member", ["allUsers", "allAuthenticatedUsers", "group:ops@acme.com", "domain:acme.com"]
)
def test_members_whose_membership_is_unknown_raise(member: str) -> None:
    binding = Binding("public", BUCKET, "roles/storage.objectViewer", member)
    with pytest.raises(UnsupportedPolicy, match="cannot be resolved"):
        evaluate(on_object("storage.objects.get"), [binding])
