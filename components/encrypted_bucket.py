"""A bucket encrypted with a customer-managed key of its own: one class per cloud.

S3: SSE-KMS with a rotating CMK and an S3 bucket key, versioning, every public-access
block on, ACLs disabled (BucketOwnerEnforced), a policy that refuses plain HTTP and any
upload asking for other encryption, and server access logs to a separate log bucket.

GCS: a CMEK key with rotation, the project's storage service agent granted on it
*before* the bucket exists (GCS checks the key at creation), uniform bucket-level
access, public access prevention enforced, versioning and soft delete.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.aws_policies import aws_account, kms_key_policy
from components.gcp_kms import agent_key
from hybrid.bucket_access import (
    s3_bucket_policy,
    s3_encrypted_uploads_statements,
    s3_log_delivery_statements,
)

SseDefault = (
    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict
)


TYPE = "hybrid:encrypted_bucket:EncryptedBucket"
"""The concept's token, shared by both clouds' classes (see ``components/__init__.py``)."""


@dataclass(frozen=True)
class AwsEncryptedBucketArgs:
    deletion_protection: bool = True
    """Protect bucket and key from deletion; without it the bucket is emptied on destroy."""
    log_retention_days: int = 90
    """How long server access logs are kept."""


class AwsEncryptedBucket(pulumi.ComponentResource):
    """An S3 bucket under its own KMS CMK, with a separate bucket for its access logs."""

    bucket_name: pulumi.Output[str]
    url: pulumi.Output[str]
    """``s3://<bucket>``."""
    kms_key_id: pulumi.Output[str]
    """The CMK's ARN."""
    arn: pulumi.Output[str]
    log_bucket_name: pulumi.Output[str]
    """Where the server access logs go."""
    object_prerequisites: list[pulumi.Resource]
    """What must exist before the first object is written: the default encryption and the
    bucket policy (an object written earlier escapes both)."""

    def __init__(
        self, name: str, args: AwsEncryptedBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protected = pulumi.ResourceOptions(parent=self, protect=args.deletion_protection)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the objects of bucket {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=kms_key_policy(self, lambda account: []),
            opts=protected,
        )
        aws.kms.Alias(
            f"{name}-key", name_prefix=f"alias/{name}-", target_key_id=key.key_id, opts=child
        )

        log_bucket = aws.s3.Bucket(
            f"{name}-logs", force_destroy=not args.deletion_protection, opts=protected
        )
        # S3 server access logging only delivers to a target encrypted with SSE-S3
        # (SSE-KMS targets are not supported), so the log bucket uses AES256.
        log_block, _ = self._baseline(f"{name}-logs", log_bucket, {"sse_algorithm": "AES256"})
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-logs-lifecycle",
            bucket=log_bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": args.log_retention_days},
                    "noncurrent_version_expiration": {"noncurrent_days": 1},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=child,
        )

        bucket = aws.s3.Bucket(
            f"{name}-bucket", force_destroy=not args.deletion_protection, opts=protected
        )
        log_prefix = f"{name}/"
        log_delivery = pulumi.Output.all(log_bucket.arn, bucket.arn, aws_account(self)).apply(
            lambda values: s3_log_delivery_statements(
                values[0], log_prefix, values[1], values[2].account_id
            )
        )
        self._policy(f"{name}-logs", log_bucket, log_delivery, log_block)
        block, default_encryption = self._baseline(
            name, bucket, {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn}
        )
        encrypted_uploads = pulumi.Output.all(bucket.arn, key.arn).apply(
            lambda arns: s3_encrypted_uploads_statements(*arns)
        )
        policy = self._policy(name, bucket, encrypted_uploads, block)
        aws.s3.BucketLogging(
            f"{name}-access-logs",
            bucket=bucket.id,
            target_bucket=log_bucket.id,
            target_prefix=log_prefix,
            opts=child,
        )
        self.bucket_name = bucket.bucket
        self.url = pulumi.Output.concat("s3://", bucket.bucket)
        self.kms_key_id = key.arn
        self.arn = bucket.arn
        self.log_bucket_name = log_bucket.bucket
        self.object_prerequisites = [default_encryption, policy]
        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "url": self.url,
                "kmsKeyId": self.kms_key_id,
                "arn": self.arn,
            }
        )

    def _baseline(
        self,
        name: str,
        bucket: aws.s3.Bucket,
        encryption: "SseDefault",
    ) -> tuple[aws.s3.BucketPublicAccessBlock, aws.s3.BucketServerSideEncryptionConfiguration]:
        """Default encryption, versioning, no public access of any kind, no ACLs."""
        child = pulumi.ResourceOptions(parent=self)
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        default_encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": encryption,
                    # One data key per bucket instead of per object: far fewer KMS calls.
                    "bucket_key_enabled": encryption["sse_algorithm"] == "aws:kms",
                }
            ],
            opts=child,
        )
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        return public_access_block, default_encryption

    def _policy(
        self,
        name: str,
        bucket: aws.s3.Bucket,
        statements: pulumi.Output[list[dict[str, Any]]],
        public_access_block: aws.s3.BucketPublicAccessBlock,
    ) -> aws.s3.BucketPolicy:
        """Deny plain HTTP, plus ``statements``."""
        policy = pulumi.Output.all(bucket.arn, statements).apply(
            lambda values: json.dumps(s3_bucket_policy(values[0], values[1]))
        )
        return aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=policy,
            # S3 rejects a policy written while the public access block is being set.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )


@dataclass(frozen=True)
class GcpEncryptedBucketArgs:
    project: str
    location: str
    """The GCS location (a region keeps data next to the cluster)."""
    deletion_protection: bool = True
    """Protect bucket and key from deletion; without it the bucket is emptied on destroy."""
    soft_delete_days: int = 7
    """How long deleted objects stay restorable."""
    data_access_logs: bool = True
    """Cloud Audit Logs record every read and write of objects (DATA_READ and DATA_WRITE for
    storage.googleapis.com; this configures the project's storage audit)."""
    lifecycle_rules: Sequence[gcp.storage.BucketLifecycleRuleArgsDict] = ()
    """Lifecycle rules, which GCS keeps on the bucket itself (``repository_retention``)."""


class GcpEncryptedBucket(pulumi.ComponentResource):
    """A GCS bucket under its own CMEK key, granted to the storage service agent first."""

    bucket_name: pulumi.Output[str]
    url: pulumi.Output[str]
    """``gs://<bucket>``."""
    kms_key_id: pulumi.Output[str]
    """The CryptoKey's ID."""
    object_prerequisites: list[pulumi.Resource]
    """Nothing: the bucket enforces its key and access rules from creation."""

    def __init__(
        self, name: str, args: GcpEncryptedBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        agent = gcp.storage.get_project_service_account_output(
            project=args.project, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        key, grant = agent_key(
            self,
            ring=f"{name}-keys",
            key=f"{name}-key",
            grant=f"{name}-storage-agent-key",
            location=args.location,
            agent=agent.email_address.apply(lambda email: f"serviceAccount:{email}"),
            protect=args.deletion_protection,
        )
        bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            project=args.project,
            location=args.location.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            soft_delete_policy={"retention_duration_seconds": args.soft_delete_days * 86400},
            lifecycle_rules=list(args.lifecycle_rules),
            encryption={"default_kms_key_name": key.id},
            force_destroy=not args.deletion_protection,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.deletion_protection, depends_on=[grant]
            ),
        )
        if args.data_access_logs:
            gcp.projects.IAMAuditConfig(
                f"{name}-data-access-logs",
                project=args.project,
                service="storage.googleapis.com",
                audit_log_configs=[{"log_type": "DATA_READ"}, {"log_type": "DATA_WRITE"}],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.bucket_name = bucket.name
        self.url = bucket.url
        self.kms_key_id = key.id
        self.object_prerequisites = []
        self.register_outputs(
            {"bucketName": self.bucket_name, "url": self.url, "kmsKeyId": self.kms_key_id}
        )
