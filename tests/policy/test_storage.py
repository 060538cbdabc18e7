"""S3 (stack policy over split resources), KMS rotation and GCS rules."""

import json

import pytest

from infra.offline import MockedResource
from policy.storage import GCS_BUCKET_HARDENED, KMS_KEY_ROTATION, S3_BUCKET_HARDENED
from tests.policy.builders import REMOVE, changed, messages, resource

KEY_ARN = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TLS_ONLY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::models", "arn:aws:s3:::models/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
)
ENCRYPTION = {
    "bucket": "models",
    "rules": [
        {
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": KEY_ARN,
            },
            "bucketKeyEnabled": True,
        }
    ],
}
PUBLIC_ACCESS_BLOCK = {
    "bucket": "models",
    "blockPublicAcls": True,
    "blockPublicPolicy": True,
    "ignorePublicAcls": True,
    "restrictPublicBuckets": True,
}
VERSIONING = {"bucket": "models", "versioningConfiguration": {"status": "Enabled"}}


def s3_bucket(**companions: dict | None) -> list[MockedResource]:
    """A bucket named 'models' and its four companions (pass ``name=None`` to drop one)."""
    shapes: dict[str, tuple[str, dict]] = {
        "encryption": ("BucketServerSideEncryptionConfiguration", ENCRYPTION),
        "public_access": ("BucketPublicAccessBlock", PUBLIC_ACCESS_BLOCK),
        "versioning": ("BucketVersioning", VERSIONING),
        "policy": ("BucketPolicy", {"bucket": "models", "policy": TLS_ONLY}),
    }
    resources = [
        resource("aws:s3/bucket:Bucket", "models-bucket", {}, outputs={"bucket": "models"})
    ]
    for role, (kind, default) in shapes.items():
        props = companions.get(role, default)
        if props is not None:
            token = f"aws:s3/{kind[0].lower()}{kind[1:]}:{kind}"
            resources.append(resource(token, f"models-{role}", props))
    return resources


def s3_messages(**companions: dict | None) -> list[str]:
    return messages(S3_BUCKET_HARDENED, *s3_bucket(**companions))


def test_a_fully_configured_bucket_passes() -> None:
    assert s3_messages() == []


def test_a_bare_bucket_fails_every_rule() -> None:
    assert s3_messages(encryption=None, public_access=None, versioning=None, policy=None) == [
        "S3 bucket 'models-bucket': no BucketServerSideEncryptionConfiguration; add one with "
        "sseAlgorithm 'aws:kms' and kmsMasterKeyId set to a customer-managed KMS key",
        "S3 bucket 'models-bucket': no BucketPublicAccessBlock; add one with all four flags true",
        "S3 bucket 'models-bucket': no BucketVersioning; add one with "
        "versioningConfiguration.status 'Enabled'",
        "S3 bucket 'models-bucket': no BucketPolicy; add one that denies requests with "
        "aws:SecureTransport false",
    ]


@pytest.mark.parametrize(
    ("encryption", "reason"),
    [
        (
            changed(
                ENCRYPTION, "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256"
            ),
            "rules[].applyServerSideEncryptionByDefault must use sseAlgorithm 'aws:kms' with "
            "kmsMasterKeyId set to a customer-managed KMS key",
        ),
        (
            changed(
                ENCRYPTION, "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", REMOVE
            ),
            "rules[].applyServerSideEncryptionByDefault must use sseAlgorithm 'aws:kms' with "
            "kmsMasterKeyId set to a customer-managed KMS key",
        ),
        (
            changed(
                ENCRYPTION,
                "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId",
                "alias/aws/s3",
            ),
            "kmsMasterKeyId is the AWS-managed key alias/aws/s3; use a customer key",
        ),
    ],
)
def test_encryption_needs_a_customer_kms_key(encryption: dict, reason: str) -> None:
    assert s3_messages(encryption=encryption) == [f"S3 bucket 'models-bucket': {reason}"]


def test_an_access_log_target_may_use_sse_s3_but_nothing_weaker() -> None:
    sse_s3 = changed(
        ENCRYPTION, "rules.0.applyServerSideEncryptionByDefault", {"sseAlgorithm": "AES256"}
    )
    logging = resource(
        "aws:s3/bucketLogging:BucketLogging",
        "data-access-logs",
        {"bucket": "data", "targetBucket": "models", "targetPrefix": "data/"},
    )
    assert messages(S3_BUCKET_HARDENED, *s3_bucket(encryption=sse_s3), logging) == []
    assert messages(S3_BUCKET_HARDENED, *s3_bucket(encryption=None), logging) == [
        "S3 bucket 'models-bucket': receives access logs but has no "
        "BucketServerSideEncryptionConfiguration; add one with sseAlgorithm 'AES256' "
        "(the only one S3 log delivery supports)"
    ]
    # Logging *from* the bucket does not make it a log target.
    source = changed(logging.inputs, "targetBucket", "elsewhere")
    assert s3_messages(encryption=sse_s3) == messages(
        S3_BUCKET_HARDENED,
        *s3_bucket(encryption=sse_s3),
        resource("aws:s3/bucketLogging:BucketLogging", "models-access-logs", source),
    )


def test_every_public_access_flag_must_be_on() -> None:
    block = changed(PUBLIC_ACCESS_BLOCK, "restrictPublicBuckets", False)
    block = changed(block, "ignorePublicAcls", REMOVE)
    assert s3_messages(public_access=block) == [
        "S3 bucket 'models-bucket': BucketPublicAccessBlock leaves ignorePublicAcls, "
        "restrictPublicBuckets unset or false"
    ]


def test_suspended_versioning_fails() -> None:
    suspended = changed(VERSIONING, "versioningConfiguration.status", "Suspended")
    assert s3_messages(versioning=suspended) == [
        "S3 bucket 'models-bucket': BucketVersioning versioningConfiguration.status is "
        "'Suspended', not 'Enabled'"
    ]


def test_a_policy_without_the_tls_deny_fails() -> None:
    allow_only = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::1:root"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::models/*",
                }
            ]
        }
    )
    assert s3_messages(policy={"bucket": "models", "policy": allow_only}) == [
        "S3 bucket 'models-bucket': BucketPolicy has no Deny statement for s3:* when "
        "aws:SecureTransport is false (TLS-only access)"
    ]


def test_companions_of_another_bucket_do_not_count() -> None:
    other = [
        resource(r.type, r.name, changed(r.inputs, "bucket", "other")) if r.inputs else r
        for r in s3_bucket()
    ]
    assert len(messages(S3_BUCKET_HARDENED, *other)) == 4


# --- KMS ---------------------------------------------------------------------------------


def test_kms_keys_rotate() -> None:
    good_aws = resource("aws:kms/key:Key", "key", {"enableKeyRotation": True})
    good_gcp = resource("gcp:kms/cryptoKey:CryptoKey", "ck", {"rotationPeriod": "7776000s"})
    signing = resource("aws:kms/key:Key", "signing", {"keySpec": "RSA_2048"})
    assert messages(KMS_KEY_ROTATION, good_aws, good_gcp, signing) == []

    assert messages(
        KMS_KEY_ROTATION,
        resource("aws:kms/key:Key", "key", {"enableKeyRotation": False}),
        resource("gcp:kms/cryptoKey:CryptoKey", "never", {}),
        resource("gcp:kms/cryptoKey:CryptoKey", "slow", {"rotationPeriod": "63072000s"}),
    ) == [
        "KMS key 'key': enableKeyRotation must be true",
        "Cloud KMS key 'never': rotationPeriod is not set (e.g. '7776000s' for 90 days)",
        "Cloud KMS key 'slow': rotationPeriod 63072000s is longer than one year",
    ]


# --- GCS ---------------------------------------------------------------------------------

GCS = {
    "location": "US-CENTRAL1",
    "encryption": {"defaultKmsKeyName": "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"},
    "uniformBucketLevelAccess": True,
    "publicAccessPrevention": "enforced",
}


def test_gcs_bucket_hardened() -> None:
    assert messages(GCS_BUCKET_HARDENED, resource("gcp:storage/bucket:Bucket", "b", GCS)) == []
    weak = changed(GCS, "encryption", REMOVE)
    weak = changed(weak, "uniformBucketLevelAccess", False)
    weak = changed(weak, "publicAccessPrevention", "inherited")
    assert messages(GCS_BUCKET_HARDENED, resource("gcp:storage/bucket:Bucket", "b", weak)) == [
        "GCS bucket 'b': encryption.defaultKmsKeyName must name a Cloud KMS key (CMEK)",
        "GCS bucket 'b': uniformBucketLevelAccess must be true (no object ACLs)",
        "GCS bucket 'b': publicAccessPrevention is 'inherited', must be 'enforced'",
    ]
