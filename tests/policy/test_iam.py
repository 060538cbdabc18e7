"""IAM: no wildcard grants in customer policies, no basic roles on GCP projects."""

import json

from infra.offline import MockedResource
from policy.iam import IAM_NO_WILDCARDS
from tests.policy.builders import messages, resource

SCOPED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadModels",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::models", "arn:aws:s3:::models/*"],
        },
        # Deny statements may use wildcards: they only take away.
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ],
}  # fmt: skip
WIDE = {
    "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::models"},
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"},
        {"Sid": "Inverse", "Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:x"},
    ]
}


def test_scoped_policies_pass() -> None:
    assert (
        messages(
            IAM_NO_WILDCARDS,
            resource("aws:iam/policy:Policy", "read", {"policy": json.dumps(SCOPED)}),
            resource(
                "aws:iam/role:Role",
                "triton",
                {
                    "assumeRolePolicy": "{}",
                    "inlinePolicies": [{"name": "read", "policy": json.dumps(SCOPED)}],
                },
            ),
            resource(
                "gcp:projects/iAMMember:IAMMember",
                "logs",
                {
                    "role": "roles/logging.logWriter",
                    "member": "serviceAccount:n@p.iam.gserviceaccount.com",
                    "project": "p",
                },
            ),
        )
        == []
    )


def test_wildcards_fail() -> None:
    grants = [
        "statement Admin allows Action '*'",
        "statement #1 allows Resource '*'",
        "statement Inverse allows everything but NotAction",
        "statement Inverse allows every resource but NotResource",
    ]
    advice = "name the actions and ARNs it needs"
    assert messages(
        IAM_NO_WILDCARDS,
        resource(
            "aws:iam/rolePolicy:RolePolicy", "wide", {"role": "r", "policy": json.dumps(WIDE)}
        ),
        resource(
            "aws:iam/role:Role",
            "role",
            {
                "assumeRolePolicy": "{}",
                "inlinePolicies": [
                    {"name": "inline", "policy": json.dumps({"Statement": WIDE["Statement"][:1]})}
                ],
            },
        ),
        resource(
            "gcp:projects/iAMBinding:IAMBinding",
            "owners",
            {"role": "roles/owner", "members": ["user:a@b.c"], "project": "p"},
        ),
    ) == [
        *(f"IAM policy 'wide': {grant}; {advice}" for grant in grants),
        f"IAM role 'role' inline policy 'inline': statement Admin allows Action '*'; {advice}",
        "Project IAM grant 'owners': roles/owner is a basic role (every permission on every "
        "resource); grant a predefined or custom role instead",
    ]


DESCRIBE = {
    "Sid": "DescribeScalingGroups",
    "Effect": "Allow",
    "Action": ["autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstanceTypes"],
    "Resource": "*",
}


def test_describe_calls_without_resource_types_may_use_resource_star() -> None:
    policy = {"Statement": [DESCRIBE]}
    assert messages(IAM_NO_WILDCARDS, _role_policy("reads", policy)) == []


def test_one_scopable_action_among_them_needs_its_arns() -> None:
    widened = {**DESCRIBE, "Action": [*DESCRIBE["Action"], "autoscaling:SetDesiredCapacity"]}
    assert messages(IAM_NO_WILDCARDS, _role_policy("scales", {"Statement": [widened]})) == [
        "IAM policy 'scales': statement DescribeScalingGroups allows Resource '*'; "
        "name the actions and ARNs it needs"
    ]


def _role_policy(name: str, document: dict) -> MockedResource:
    return resource(
        "aws:iam/rolePolicy:RolePolicy", name, {"role": "r", "policy": json.dumps(document)}
    )
