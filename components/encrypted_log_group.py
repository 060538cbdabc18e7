"""A CloudWatch log group under a rotating CMK of its own, which only that group may use."""

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws_policies import logs_key_policy


@dataclass(frozen=True)
class EncryptedLogGroup:
    key: aws.kms.Key
    group: aws.cloudwatch.LogGroup


def encrypted_log_group(
    *,
    key_name: str,
    group_name: str,
    log_group_name: str,
    description: str,
    retention_days: int,
    parent: pulumi.Resource,
    key_opts: pulumi.ResourceOptions,
) -> EncryptedLogGroup:
    """The key (``key_name``) and the group (``group_name``, called ``log_group_name``)."""
    key = aws.kms.Key(
        key_name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=logs_key_policy(log_group_name, parent=parent),
        opts=key_opts,
    )
    group = aws.cloudwatch.LogGroup(
        group_name,
        name=log_group_name,
        kms_key_id=key.arn,
        retention_in_days=retention_days,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return EncryptedLogGroup(key, group)
