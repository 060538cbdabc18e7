"""IAM and KMS policy documents shared by the public site's components.

Every CMK here keeps the account root as administrator (so IAM policies decide who
may use it, and the key can never be locked out) and adds only the service grants
its users need, scoped by encryption context to the one resource that uses it.
Roles trust exactly one service, or one Kubernetes service account through IRSA.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class AwsAccount:
    """Where the provider deploys: what ARNs and service principals are built from."""

    partition: str
    account_id: str
    region: str

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"


def aws_account(parent: pulumi.Resource) -> pulumi.Output[AwsAccount]:
    """The account, partition and region of the provider that ``parent`` uses."""
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    return pulumi.Output.all(
        aws.get_partition_output(opts=invoke).partition,
        aws.get_caller_identity_output(opts=invoke).account_id,
        aws.get_region_output(opts=invoke).region,
    ).apply(lambda values: AwsAccount(*values))


def kms_key_policy(
    parent: pulumi.Resource, grants: Callable[[AwsAccount], list[dict[str, Any]]]
) -> pulumi.Output[str]:
    """A key policy: root administration plus ``grants(account)``."""

    def render(account: AwsAccount) -> str:
        root = {
            "Sid": "AccountAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{account.partition}:iam::{account.account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
        return json.dumps({"Version": "2012-10-17", "Statement": [root, *grants(account)]})

    return aws_account(parent).apply(render)


def logs_key_policy(log_group_name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A key policy that lets CloudWatch Logs encrypt exactly one log group."""

    def grants(account: AwsAccount) -> list[dict[str, Any]]:
        return [
            {
                "Sid": "CloudWatchLogsForOneGroup",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{account.region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": account.arn(
                            "logs", f"log-group:{log_group_name}"
                        )
                    }
                },
            }
        ]

    return kms_key_policy(parent, grants)


def service_trust_policy(service: str) -> str:
    """A role trust policy for one AWS service principal (``eks.amazonaws.com``)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def irsa_trust_policy(
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """A role trust policy for exactly one Kubernetes service account (IRSA).

    ``oidc_issuer`` is the issuer without ``https://``, as IAM condition keys spell it.
    """
    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(
        lambda values: json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": values[0]},
                        "Action": "sts:AssumeRoleWithWebIdentity",
                        "Condition": {
                            "StringEquals": {
                                f"{values[1]}:sub": (
                                    f"system:serviceaccount:{namespace}:{service_account}"
                                ),
                                f"{values[1]}:aud": "sts.amazonaws.com",
                            }
                        },
                    }
                ],
            }
        )
    )


def managed_policy_arn(parent: pulumi.Resource, policy: str) -> pulumi.Output[str]:
    """The ARN of an AWS managed policy in the provider's partition."""
    return aws_account(parent).apply(lambda a: f"arn:{a.partition}:iam::aws:policy/{policy}")
