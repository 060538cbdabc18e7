"""Google Cloud IAM allow policies, evaluated for one request: which binding grants it.

A request is allowed when a binding on the resource or on one of its ancestors (an object's
bucket and project, a service account's project) names the member, grants a role whose
permissions include the one asked for, and its IAM condition, if any, holds
(https://cloud.google.com/iam/docs/overview#cel). The stack writes no deny policies.

Predefined roles are data here, as Google lists them; a role that is not listed, a member
type whose membership cannot be known here (groups, domains, allUsers) and any condition
outside the CEL the stack writes raise ``UnsupportedPolicy`` instead of guessing.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from policy.decision import Decision, UnsupportedPolicy

ROLES: Mapping[str, frozenset[str]] = {
    # https://cloud.google.com/storage/docs/access-control/iam-roles
    "roles/storage.objectViewer": frozenset(
        {
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
            "storage.folders.get",
            "storage.folders.list",
            "storage.managedFolders.get",
            "storage.managedFolders.list",
            "storage.objects.get",
            "storage.objects.list",
        }
    ),
    "roles/storage.legacyBucketReader": frozenset(
        {"storage.buckets.get", "storage.multipartUploads.list", "storage.objects.list"}
    ),
    "roles/storage.objectCreator": frozenset(
        {
            "orgpolicy.policy.get",
            "resourcemanager.projects.get",
            "resourcemanager.projects.list",
            "storage.folders.create",
            "storage.managedFolders.create",
            "storage.multipartUploads.abort",
            "storage.multipartUploads.create",
            "storage.multipartUploads.listParts",
            "storage.objects.create",
            "storage.objects.createContext",
        }
    ),
    # https://cloud.google.com/iam/docs/understanding-roles (IAM and Cloud KMS roles)
    "roles/iam.workloadIdentityUser": frozenset(
        {
            "iam.serviceAccounts.get",
            "iam.serviceAccounts.getAccessToken",
            "iam.serviceAccounts.getOpenIdToken",
            "iam.serviceAccounts.list",
        }
    ),
    "roles/cloudkms.cryptoKeyEncrypterDecrypter": frozenset(
        {
            "cloudkms.cryptoKeyVersions.useToDecrypt",
            "cloudkms.cryptoKeyVersions.useToEncrypt",
            "cloudkms.locations.get",
            "cloudkms.locations.list",
            "resourcemanager.projects.get",
        }
    ),
}
"""Predefined role -> its permissions, as Google's role pages list them (cross-checked with
``gcloud iam roles describe`` output mirrored in iann0036/iam-dataset, gcp/roles/)."""

_KNOWN_MEMBERS = ("serviceAccount:", "user:")
_CEL_TERM = re.compile(r'resource\.name\.(startsWith|endsWith)\("([^"\\]*)"\)')


@dataclass(frozen=True)
class Binding:
    """One member granted one role on one resource (an ``*IAMMember`` resource)."""

    name: str
    """Where it comes from, for the reasons: ``BucketIAMMember private-triton-identity-viewer``."""
    resource: str
    """The full resource name it is granted on: ``projects/_/buckets/<bucket>``."""
    role: str
    member: str
    condition: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Request:
    member: str
    permission: str
    resource: str
    """The full resource name, as an IAM condition sees it (``resource.name``)."""
    ancestors: tuple[str, ...] = ()
    """The resources above it, whose bindings it inherits (bucket, project)."""


def role_permissions(role: str) -> frozenset[str]:
    if role not in ROLES:
        raise UnsupportedPolicy(
            f"role {role} is not in policy.gcp_iam.ROLES; add it from Google's docs"
        )
    return ROLES[role]


def evaluate(request: Request, bindings: Sequence[Binding]) -> Decision:
    """Allowed by the first binding in scope that grants the permission to the member."""
    scopes = (request.resource, *request.ancestors)
    for binding in bindings:
        if binding.resource not in scopes:
            continue
        if not binding.member.startswith(_KNOWN_MEMBERS):
            raise UnsupportedPolicy(
                f"{binding.name}: member {binding.member} cannot be resolved here"
            )
        if binding.member != request.member:
            continue
        if request.permission not in role_permissions(binding.role):
            continue
        condition = binding.condition
        if condition and not condition_holds(condition["expression"], request.resource):
            continue
        when = f" (condition {condition['title']!r} holds)" if condition else ""
        return Decision(
            True, f"allowed by {binding.name}: {binding.role} on {binding.resource}{when}"
        )
    return Decision(
        False,
        f"no binding on {', '.join(scopes)} grants {request.permission} to {request.member}",
    )


def condition_holds(expression: str, resource_name: str) -> bool:
    """The CEL the stack writes: ``resource.name.startsWith("…")`` / ``endsWith("…")`` terms
    joined by ``&&``. Anything else raises."""
    results = []
    for term in expression.split("&&"):
        match = _CEL_TERM.fullmatch(term.strip())
        if match is None:
            raise UnsupportedPolicy(
                f"IAM condition {expression!r}: {term.strip()!r} is not implemented"
            )
        method, literal = match.groups()
        results.append(
            resource_name.startswith(literal)
            if method == "startsWith"
            else resource_name.endswith(literal)
        )
    return all(results)
