"""Buckets and keys: customer-key encryption, no public access, versions kept, keys rotated.

S3 settings live on separate resources in pulumi-aws 7 (encryption, versioning, public
access block and policy each point at the bucket), so the S3 rules are a stack policy that
joins them to their bucket; GCS and KMS settings sit on the resource itself.

One exception, forced by AWS: S3 server access logs can only be delivered to a bucket
encrypted with SSE-S3, so a bucket that is the ``targetBucket`` of a ``BucketLogging``
may use AES256 instead of a customer KMS key. Every other rule still applies to it.
"""

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, Severity

from policy.props import as_number, get, items, json_document
from policy.rules import ResourcePolicy, ResourceRule, StackPolicy, StackRule, of_type

S3_BUCKET = "aws:s3/bucket:Bucket"
S3_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
S3_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
S3_LOGGING = "aws:s3/bucketLogging:BucketLogging"
AWS_KMS_KEY = "aws:kms/key:Key"
GCP_CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
GCS_BUCKET = "gcp:storage/bucket:Bucket"

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
AWS_MANAGED_S3_KEY = re.compile(r"(^|:)alias/aws/s3$")
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
MAX_GCP_ROTATION_SECONDS = 365 * 24 * 3600


# --- S3 (stack policy: settings live on companion resources) -------------------------


def _attached(
    bucket: PolicyResource, resources: Sequence[PolicyResource], kind: str, key: str = "bucket"
) -> list[PolicyResource]:
    """Resources of ``kind`` whose ``key`` names ``bucket`` (by value, or by the engine's graph)."""
    names = {get(bucket.props, "bucket"), get(bucket.props, "id")} - {None}
    return [
        r
        for r in of_type(resources, kind)
        if get(r.props, key) in names or bucket in r.property_dependencies.get(key, [])
    ]


Problem = Callable[[Mapping[str, Any] | None], str | None]
"""A companion's props (None: no companion at all) -> what is wrong, or None when fine."""


def _s3_rule(
    summary: str, kind: str, problem: Problem, log_target_problem: Problem | None = None
) -> StackRule:
    """A rule that passes when some companion of ``kind`` satisfies the bucket.

    ``log_target_problem`` replaces ``problem`` for buckets that receive access logs.
    """

    def check(
        resources: Sequence[PolicyResource], _config: Mapping[str, Any]
    ) -> Iterator[tuple[str, str | None]]:
        for bucket in of_type(resources, S3_BUCKET):
            judge = problem
            if log_target_problem and _attached(bucket, resources, S3_LOGGING, "targetBucket"):
                judge = log_target_problem
            companions = _attached(bucket, resources, kind)
            if not any(judge(c.props) is None for c in companions):
                reason = judge(companions[0].props) if companions else judge(None)
                yield f"S3 bucket '{bucket.name}': {reason}", bucket.urn

    return StackRule("aws", summary, check)


def _encryption_problem(props: Mapping[str, Any] | None) -> str | None:
    if props is None:
        return (
            "no BucketServerSideEncryptionConfiguration; add one with sseAlgorithm 'aws:kms' "
            "and kmsMasterKeyId set to a customer-managed KMS key"
        )
    for rule in items(get(props, "rules")):
        default = get(rule, "applyServerSideEncryptionByDefault", default={})
        key = get(default, "kmsMasterKeyId")
        if get(default, "sseAlgorithm") in KMS_ALGORITHMS and key:
            if AWS_MANAGED_S3_KEY.search(str(key)):
                return "kmsMasterKeyId is the AWS-managed key alias/aws/s3; use a customer key"
            return None
    return (
        "rules[].applyServerSideEncryptionByDefault must use sseAlgorithm 'aws:kms' "
        "with kmsMasterKeyId set to a customer-managed KMS key"
    )


def _log_target_encryption_problem(props: Mapping[str, Any] | None) -> str | None:
    """Access-log targets: SSE-S3 is all S3 log delivery supports; a customer key is fine too."""
    if props is None:
        return (
            "receives access logs but has no BucketServerSideEncryptionConfiguration; add one "
            "with sseAlgorithm 'AES256' (the only one S3 log delivery supports)"
        )
    algorithms = {
        get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        for rule in items(get(props, "rules"))
    }
    if "AES256" in algorithms or _encryption_problem(props) is None:
        return None
    return "receives access logs; rules[].applyServerSideEncryptionByDefault must be AES256"


def _public_access_problem(props: Mapping[str, Any] | None) -> str | None:
    if props is None:
        return "no BucketPublicAccessBlock; add one with all four flags true"
    missing = [flag for flag in PUBLIC_ACCESS_FLAGS if get(props, flag) is not True]
    if missing:
        return f"BucketPublicAccessBlock leaves {', '.join(missing)} unset or false"
    return None


def _versioning_problem(props: Mapping[str, Any] | None) -> str | None:
    if props is None:
        return "no BucketVersioning; add one with versioningConfiguration.status 'Enabled'"
    status = get(props, "versioningConfiguration", "status")
    if status != "Enabled":
        return f"BucketVersioning versioningConfiguration.status is {status!r}, not 'Enabled'"
    return None


def _tls_problem(props: Mapping[str, Any] | None) -> str | None:
    if props is None:
        return "no BucketPolicy; add one that denies requests with aws:SecureTransport false"
    document = json_document(get(props, "policy"))
    if not any(_denies_plain_http(s) for s in items(get(document, "Statement"))):
        return (
            "BucketPolicy has no Deny statement for s3:* when aws:SecureTransport is false "
            "(TLS-only access)"
        )
    return None


def _denies_plain_http(statement: Any) -> bool:
    secure = get(statement, "Condition", "Bool", "aws:SecureTransport")
    actions = {str(a) for a in items(get(statement, "Action"))}
    return (
        get(statement, "Effect") == "Deny"
        and str(secure).lower() == "false"
        and bool(actions & {"s3:*", "*"})
    )


S3_BUCKET_HARDENED = StackPolicy(
    "s3-bucket-hardened",
    "Every S3 bucket has SSE-KMS with a customer key, a full public access block, "
    "versioning and a TLS-only bucket policy.",
    Severity.CRITICAL,
    [
        _s3_rule(
            "SSE-KMS default encryption with a customer key (SSE-S3 for access-log targets)",
            S3_ENCRYPTION,
            _encryption_problem,
            _log_target_encryption_problem,
        ),
        _s3_rule(
            "all four public access block flags on", S3_PUBLIC_ACCESS_BLOCK, _public_access_problem
        ),
        _s3_rule("versioning enabled", S3_VERSIONING, _versioning_problem),
        _s3_rule("bucket policy denies non-TLS requests", S3_POLICY, _tls_problem),
    ],
)


# --- KMS ---------------------------------------------------------------------------------


def _aws_key_rotation(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if get(props, "keySpec", default="SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return  # AWS rotates only symmetric keys
    if get(props, "enableKeyRotation") is not True:
        yield f"KMS key '{name}': enableKeyRotation must be true"


def _gcp_key_rotation(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if get(props, "purpose", default="ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        return  # Cloud KMS rotates only symmetric encryption keys
    period = get(props, "rotationPeriod")
    if not period:
        yield f"Cloud KMS key '{name}': rotationPeriod is not set (e.g. '7776000s' for 90 days)"
    elif as_number(str(period).rstrip("s"), default=float("inf")) > MAX_GCP_ROTATION_SECONDS:
        yield f"Cloud KMS key '{name}': rotationPeriod {period} is longer than one year"


KMS_KEY_ROTATION = ResourcePolicy(
    "kms-key-rotation",
    "Customer-managed encryption keys rotate automatically (at least yearly).",
    Severity.HIGH,
    [
        ResourceRule("aws", "KMS key rotation enabled", {AWS_KMS_KEY: _aws_key_rotation}),
        ResourceRule(
            "gcp",
            "Cloud KMS rotation period of at most a year",
            {GCP_CRYPTO_KEY: _gcp_key_rotation},
        ),
    ],
)


# --- GCS ---------------------------------------------------------------------------------


def _gcs_cmek(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if not get(props, "encryption", "defaultKmsKeyName"):
        yield f"GCS bucket '{name}': encryption.defaultKmsKeyName must name a Cloud KMS key (CMEK)"


def _gcs_uniform_access(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if get(props, "uniformBucketLevelAccess") is not True:
        yield f"GCS bucket '{name}': uniformBucketLevelAccess must be true (no object ACLs)"


def _gcs_public_access_prevention(props: Mapping[str, Any], name: str) -> Iterator[str]:
    value = get(props, "publicAccessPrevention")
    if value != "enforced":
        yield f"GCS bucket '{name}': publicAccessPrevention is {value!r}, must be 'enforced'"


GCS_BUCKET_HARDENED = ResourcePolicy(
    "gcs-bucket-hardened",
    "Every GCS bucket uses a customer-managed key, uniform bucket-level access and "
    "enforced public access prevention.",
    Severity.CRITICAL,
    [
        ResourceRule("gcp", "CMEK default key", {GCS_BUCKET: _gcs_cmek}),
        ResourceRule("gcp", "uniform bucket-level access", {GCS_BUCKET: _gcs_uniform_access}),
        ResourceRule(
            "gcp", "public access prevention enforced", {GCS_BUCKET: _gcs_public_access_prevention}
        ),
    ],
)
