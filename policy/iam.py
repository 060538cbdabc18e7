"""Least privilege: customer policies never grant every action or every resource.

AWS-managed policies attached to roles are out of scope (AWS writes them); what we write
is checked: managed policies, inline role/user/group policies and a role's inline
policies. The one ``Resource: "*"`` allowed is a statement made only of actions AWS
authorizes on nothing narrower (Describe calls without resource types). GCP has no
wildcard in IAM; its equivalent is the basic roles (owner, editor), which grant every
permission on every resource in the project.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from hybrid.aws_unscoped_actions import CLUSTER_AUTOSCALER_READS
from policy.props import get, items, json_document
from policy.rules import ResourcePolicy, ResourceRule

AWS_POLICY = "aws:iam/policy:Policy"
AWS_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
AWS_USER_POLICY = "aws:iam/userPolicy:UserPolicy"
AWS_GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
AWS_ROLE = "aws:iam/role:Role"
GCP_PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
GCP_PROJECT_BINDING = "gcp:projects/iAMBinding:IAMBinding"

WILDCARDS = ("*", "*:*")
STAR_ONLY_ACTIONS = frozenset(CLUSTER_AUTOSCALER_READS)
"""Actions a policy can grant only on ``*`` (``hybrid.aws_unscoped_actions``)."""
BASIC_ROLES = ("roles/owner", "roles/editor")


def wildcard_grants(document: Any) -> list[str]:
    """What each Allow statement opens to everything, e.g. ``Action '*'`` (Deny is fine)."""
    found = []
    for index, statement in enumerate(items(get(document, "Statement"))):
        if get(statement, "Effect") != "Allow":
            continue
        label = get(statement, "Sid") or f"#{index}"
        if any(str(a) in WILDCARDS for a in items(get(statement, "Action"))):
            found.append(f"statement {label} allows Action '*'")
        if get(statement, "NotAction") is not None:
            found.append(f"statement {label} allows everything but NotAction")
        actions = {str(a) for a in items(get(statement, "Action"))}
        star_only = bool(actions) and actions <= STAR_ONLY_ACTIONS
        if any(str(r) == "*" for r in items(get(statement, "Resource"))) and not star_only:
            found.append(f"statement {label} allows Resource '*'")
        if get(statement, "NotResource") is not None:
            found.append(f"statement {label} allows every resource but NotResource")
    return found


def _policy_document(props: Mapping[str, Any], name: str) -> Iterator[str]:
    for grant in wildcard_grants(json_document(get(props, "policy"))):
        yield f"IAM policy '{name}': {grant}; name the actions and ARNs it needs"


def _role_inline_policies(props: Mapping[str, Any], name: str) -> Iterator[str]:
    for inline in items(get(props, "inlinePolicies")):
        for grant in wildcard_grants(json_document(get(inline, "policy"))):
            yield (
                f"IAM role '{name}' inline policy '{get(inline, 'name')}': {grant}; "
                "name the actions and ARNs it needs"
            )


def _basic_roles(props: Mapping[str, Any], name: str) -> Iterator[str]:
    role = get(props, "role")
    if role in BASIC_ROLES:
        yield (
            f"Project IAM grant '{name}': {role} is a basic role (every permission on every "
            "resource); grant a predefined or custom role instead"
        )


IAM_NO_WILDCARDS = ResourcePolicy(
    "iam-no-wildcards",
    "Customer IAM policies never allow every action or every resource.",
    Severity.HIGH,
    [
        ResourceRule(
            "aws",
            "no Allow of Action '*' or Resource '*' in customer policies",
            {
                AWS_POLICY: _policy_document,
                AWS_ROLE_POLICY: _policy_document,
                AWS_USER_POLICY: _policy_document,
                AWS_GROUP_POLICY: _policy_document,
                AWS_ROLE: _role_inline_policies,
            },
        ),
        ResourceRule(
            "gcp",
            "no basic roles (owner, editor) granted on the project",
            {GCP_PROJECT_MEMBER: _basic_roles, GCP_PROJECT_BINDING: _basic_roles},
        ),
    ],
)
