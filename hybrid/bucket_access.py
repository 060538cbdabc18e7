"""Who may do what on a model bucket: the IAM documents, as plain data.

The stack applies them to the real buckets and identities; the local mode applies the same
documents to its emulated buckets; the policy checks evaluate them on the requests real
clients send. One source, so the three cannot drift.
"""

from typing import Any

PLAN_SUFFIX = ".plan"
"""TensorRT plans are the only objects a cluster may write into a model bucket."""
REPO_ROOT = "repo/"
"""Every repository version lives under ``repo/<content_hash>/``; nothing else is in the bucket."""

Document = dict[str, Any]


def s3_access_policy(
    bucket_arn: str,
    kms_key_arn: str,
    region: str,
    *,
    read_prefix: str,
    write_prefix: str | None = None,
) -> Document:
    """Read objects under ``read_prefix``; optionally create ``*.plan`` under ``write_prefix``.

    Triton's S3 client sends HeadBucket before its listings and reads. S3 authorises it as
    ``s3:ListBucket`` with no ``s3:prefix`` in the request, so the prefix condition must hold
    when the key is absent (``IfExists``); a listing without a prefix passes with it, which
    shows no more than the keys under ``repo/``, the only ones the bucket holds.
    """
    via_s3 = _via_s3(region)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadModelRepository",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{bucket_arn}/{read_prefix}*"],
        },
        {
            "Sid": "ListModelRepository",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": {"StringLikeIfExists": {"s3:prefix": [f"{read_prefix}*"]}},
        },
        {
            "Sid": "DecryptModelRepository",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [kms_key_arn],
            "Condition": via_s3,
        },
    ]
    if write_prefix is not None:
        statements += [
            {
                "Sid": "WriteTensorrtPlans",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [f"{bucket_arn}/{write_prefix}*{PLAN_SUFFIX}"],
            },
            {
                "Sid": "EncryptTensorrtPlans",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey"],
                "Resource": [kms_key_arn],
                "Condition": via_s3,
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def s3_upload_policy(bucket_arn: str, kms_key_arn: str, region: str, *, prefix: str) -> Document:
    """The deployer's upload rights: write and read back objects under ``prefix``, nothing else.

    Reading back is how an upload is verified before anything serves it; a multipart upload
    under SSE-KMS needs ``kms:Decrypt`` as well as ``kms:GenerateDataKey``.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UploadModelRepository",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": [f"{bucket_arn}/{prefix}*"],
            },
            {
                "Sid": "ListModelRepository",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [bucket_arn],
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
            {
                "Sid": "EncryptModelRepository",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": [kms_key_arn],
                "Condition": _via_s3(region),
            },
        ],
    }


def s3_bucket_policy(bucket_arn: str, statements: list[dict[str, Any]]) -> Document:
    """A bucket policy: plain HTTP refused for everyone, plus ``statements``."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            *statements,
        ],
    }


def s3_encrypted_uploads_statements(bucket_arn: str, key_arn: str) -> list[dict[str, Any]]:
    """Refuse uploads that ask for anything but SSE-KMS under this bucket's key.

    Uploads that name no encryption get the bucket default (the same key), so every
    object ends up under the CMK without breaking clients that rely on the default.
    """
    return [
        {
            "Sid": "DenyOtherEncryption",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": {
                "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}
            },
        },
        {
            # Naming aws:kms without a key ID would select the AWS managed key.
            "Sid": "DenyKmsWithoutThisKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": {
                "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
            },
        },
        {
            "Sid": "DenyOtherKmsKeys",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": {
                "StringNotEqualsIfExists": {
                    "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn
                }
            },
        },
    ]


def s3_log_delivery_statements(log_bucket_arn: str, account_id: str) -> list[dict[str, Any]]:
    """With ACLs disabled, S3's log delivery service writes through the bucket policy,
    and only on behalf of this account."""
    return [
        {
            "Sid": "S3ServerAccessLogDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{log_bucket_arn}/*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    ]


def gcs_plan_condition(bucket: str, write_prefix: str) -> dict[str, str]:
    """An IAM condition: object creation only for ``*.plan`` under the served prefix."""
    name = f"projects/_/buckets/{bucket}/objects/{write_prefix}"
    return {
        "title": "tensorrt-plans-only",
        "description": f"Create *{PLAN_SUFFIX} objects under {write_prefix} only",
        "expression": (
            f'resource.name.startsWith("{name}") && resource.name.endsWith("{PLAN_SUFFIX}")'
        ),
    }


def _via_s3(region: str) -> dict[str, Any]:
    """The CMK is used only by S3 on the caller's behalf, never called directly."""
    return {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
