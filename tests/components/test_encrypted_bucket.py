"""Each cloud's encrypted bucket alone, under the mocks: its own rotating key, no public
access, and on S3 a policy that refuses plain HTTP and other keys, with access logs kept
apart; on GCS the storage agent holds the key before the bucket exists."""

import json
import re

import pytest

from components.encrypted_bucket import (
    AwsEncryptedBucket,
    AwsEncryptedBucketArgs,
    GcpEncryptedBucket,
    GcpEncryptedBucketArgs,
)
from infra.offline import MockedResource, StackEvaluation, evaluate_component

SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
KEY_HEADER = "s3:x-amz-server-side-encryption-aws-kms-key-id"
LOG_DAYS = 30
RULES = ({"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 1}},)


@pytest.fixture(scope="module")
def s3() -> StackEvaluation:
    return evaluate_component(
        lambda: AwsEncryptedBucket(
            "models", AwsEncryptedBucketArgs(deletion_protection=False, log_retention_days=LOG_DAYS)
        )
    )


@pytest.fixture(scope="module")
def gcs() -> StackEvaluation:
    return evaluate_component(
        lambda: GcpEncryptedBucket(
            "models",
            GcpEncryptedBucketArgs(
                project="hybrid-x", location="europe-west4", lifecycle_rules=RULES
            ),
        )
    )


def named(ev: StackEvaluation, type_: str) -> dict[str, MockedResource]:
    return {r.name: r for r in ev.of_type(type_)}


def test_s3_objects_are_encrypted_with_the_bucket_key(s3: StackEvaluation) -> None:
    (key,) = s3.of_type("aws:kms/key:Key")
    bucket = s3.one("aws:s3/bucket:Bucket", "models-bucket")
    encryption = named(s3, SSE)["models-encryption"]
    rule = encryption.inputs["rules"][0]
    assert encryption.inputs["bucket"] == bucket.id
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key.outputs["arn"],
    }
    assert rule["bucketKeyEnabled"] is True
    assert key.inputs["enableKeyRotation"] is True


@pytest.mark.parametrize("name", ["models", "models-logs"])
def test_s3_buckets_are_private_versioned_and_owner_enforced(
    s3: StackEvaluation, name: str
) -> None:
    block = named(s3, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(block[f"{name}-public-access"].inputs[flag] is True for flag in flags)
    ownership = named(s3, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership[f"{name}-ownership"].inputs["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"
    }
    versioning = named(s3, "aws:s3/bucketVersioning:BucketVersioning")[f"{name}-versioning"]
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"


def test_the_s3_policy_refuses_plain_http_and_other_keys(s3: StackEvaluation) -> None:
    bucket = s3.one("aws:s3/bucket:Bucket", "models-bucket")
    (key,) = s3.of_type("aws:kms/key:Key")
    policy = json.loads(
        s3.one("aws:s3/bucketPolicy:BucketPolicy", "models-policy").inputs["policy"]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    insecure = statements["DenyInsecureTransport"]
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert insecure["Resource"] == [bucket.outputs["arn"], f"{bucket.outputs['arn']}/*"]
    assert statements["DenyKmsWithoutThisKey"]["Condition"]["Null"] == {KEY_HEADER: "true"}
    # Only a header that is present and names another key is refused; no header = the default.
    assert statements["DenyOtherKmsKeys"]["Condition"] == {
        "StringNotEquals": {KEY_HEADER: key.outputs["arn"]},
        "Null": {KEY_HEADER: "false"},
    }


def test_s3_access_logs_go_to_an_sse_s3_bucket_that_expires_them(s3: StackEvaluation) -> None:
    bucket = s3.one("aws:s3/bucket:Bucket", "models-bucket")
    log_bucket = s3.one("aws:s3/bucket:Bucket", "models-logs")
    logging = s3.one("aws:s3/bucketLogging:BucketLogging", "models-access-logs")
    assert logging.inputs["bucket"] == bucket.id
    assert logging.inputs["targetBucket"] == log_bucket.id
    log_sse = named(s3, SSE)["models-logs-encryption"].inputs["rules"][0]
    assert log_sse["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    lifecycle = s3.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "models-logs-lifecycle"
    )
    assert lifecycle.inputs["bucket"] == log_bucket.id
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": LOG_DAYS}


def test_an_unprotected_s3_bucket_is_emptied_on_destroy(s3: StackEvaluation) -> None:
    for bucket in s3.of_type("aws:s3/bucket:Bucket"):
        assert bucket.inputs["forceDestroy"] is True, bucket.name


def test_the_gcs_bucket_uses_a_key_its_agent_holds_first(gcs: StackEvaluation) -> None:
    (key,) = gcs.of_type("gcp:kms/cryptoKey:CryptoKey")
    (bucket,) = gcs.of_type("gcp:storage/bucket:Bucket")
    (grant,) = gcs.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert bucket.inputs["encryption"] == {"defaultKmsKeyName": key.id}
    assert grant.inputs["cryptoKeyId"] == key.id
    assert re.fullmatch(
        r"serviceAccount:service-\d+@gs-project-accounts\.iam\.gserviceaccount\.com",
        grant.inputs["member"],
    )
    assert grant.urn in bucket.dependencies, "the agent must hold the key first"
    assert key.inputs["rotationPeriod"] == "7776000s"


def test_the_gcs_bucket_is_private_versioned_and_keeps_its_rules(gcs: StackEvaluation) -> None:
    (bucket,) = gcs.of_type("gcp:storage/bucket:Bucket")
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.inputs["versioning"] == {"enabled": True}
    assert bucket.inputs["softDeletePolicy"]["retentionDurationSeconds"] == 7 * 86400
    assert bucket.inputs["location"] == "EUROPE-WEST4"
    assert [r["action"]["type"] for r in bucket.inputs["lifecycleRules"]] == [
        "AbortIncompleteMultipartUpload"
    ]
    assert bucket.inputs["forceDestroy"] is False


def test_gcs_data_access_is_audited(gcs: StackEvaluation) -> None:
    (audit,) = gcs.of_type("gcp:projects/iAMAuditConfig:IAMAuditConfig")
    assert audit.inputs["service"] == "storage.googleapis.com"
    assert {c["logType"] for c in audit.inputs["auditLogConfigs"]} == {"DATA_READ", "DATA_WRITE"}
