"""The uploader against real emulators: every object is read back and checked, and a bucket
whose objects do not match the manifest (or are not encrypted as required) is refused.

On S3 the uploader is an IAM user holding the deployer's rendered upload rights, and moto
enforces them."""

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from hybrid.bucket_access import s3_encrypted_uploads_statements
from hybrid.manifest import Manifest
from serving.errors import AccessDeniedError, UploadVerificationError
from serving.local import emulators, iam
from serving.local.buckets import GcsBucket, S3Bucket, gcs_client
from serving.local.upload import publish, transfer_progress, verify
from tests.serving.conftest import Clouds


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, Manifest]:
    for name, body in {
        "echo/config.pbtxt": b'name: "echo"\n',
        "echo/1/model.py": b"# model\n" * 100,
        "other/config.pbtxt": b'name: "other"\n',
    }.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return tmp_path, Manifest.of_directory(tmp_path, target="local", stack="dev")


def new_bucket(kind: str, clouds: Clouds, name: str) -> S3Bucket | GcsBucket:
    """A bucket as the uploader sees it (on S3: an IAM user holding `uploader_policy`)."""
    if kind == "s3":
        return as_uploader(emulators.create_public_bucket(clouds.s3, clouds.admin, name))
    return emulators.create_private_bucket(clouds.gcs, name)


def as_uploader(bucket: S3Bucket) -> S3Bucket:
    policy = emulators.uploader_policy(bucket)
    uploader = iam.create_principal(bucket.endpoint, bucket.principal, f"up-{bucket.name}", policy)
    return replace(bucket, principal=uploader)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_publish_uploads_under_the_content_hash_and_verifies(
    kind: str, clouds: Clouds, repository: tuple[Path, Manifest]
) -> None:
    source, manifest = repository
    bucket = new_bucket(kind, clouds, f"publish-{kind}")
    sub = manifest.for_models(["echo"])
    with transfer_progress(disable=True) as progress:
        url = publish(bucket, source, sub, progress)
    assert url == f"{bucket.url}/repo/{sub.content_hash}/"
    assert set(bucket.sizes("repo/")) == {f"repo/{sub.content_hash}/{p}" for p in sub.files}
    key = f"repo/{sub.content_hash}/echo/1/model.py"
    assert (
        hashlib.sha256(b"".join(bucket.read(key))).hexdigest()
        == sub.files["echo/1/model.py"].sha256
    )


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_a_corrupted_object_is_refused(
    kind: str, clouds: Clouds, repository: tuple[Path, Manifest], tmp_path: Path
) -> None:
    source, manifest = repository
    bucket = new_bucket(kind, clouds, f"corrupt-{kind}")
    with transfer_progress(disable=True) as progress:
        publish(bucket, source, manifest, progress)
        key = f"repo/{manifest.content_hash}/echo/1/model.py"
        tampered = tmp_path / "tampered"
        tampered.write_bytes(b"import os; os.system('curl evil')\n")
        bucket.put(key, tampered, "not-checked", lambda _: None)
        with pytest.raises(UploadVerificationError) as raised:
            verify(bucket, manifest, progress)
    message = str(raised.value)
    assert f"refusing to serve {bucket.url}/repo/{manifest.content_hash}/" in message
    assert f"{bucket.url}/{key}: sha256 " in message
    assert "does not match the manifest" in message
    assert "make down-local && make up-local" in message


def test_missing_unexpected_and_unencrypted_objects_are_refused(
    clouds: Clouds, repository: tuple[Path, Manifest], tmp_path: Path
) -> None:
    source, manifest = repository
    bucket = as_uploader(emulators.create_public_bucket(clouds.s3, clouds.admin, "tampered"))
    prefix = manifest.prefix
    s3 = clouds.admin.client(clouds.s3)
    with transfer_progress(disable=True) as progress:
        publish(bucket, source, manifest, progress)
        s3.delete_object(Bucket=bucket.name, Key=f"{prefix}other/config.pbtxt")
        s3.put_object(Bucket=bucket.name, Key=f"{prefix}evil/config.pbtxt", Body=b"x")
        plain = (source / "echo/config.pbtxt").read_bytes()
        s3.put_object(
            Bucket=bucket.name,
            Key=f"{prefix}echo/config.pbtxt",
            Body=plain,
            ServerSideEncryption="AES256",
        )
        with pytest.raises(UploadVerificationError) as raised:
            verify(bucket, manifest, progress)
    message = str(raised.value)
    assert f"{prefix}other/config.pbtxt: missing" in message
    assert f"{prefix}evil/config.pbtxt: not in the manifest" in message
    assert "echo/config.pbtxt: encrypted with AES256" in message
    assert "3 object(s)" in message


def test_the_public_bucket_is_kms_encrypted_versioned_private_and_sealed(
    clouds: Clouds, repository: tuple[Path, Manifest]
) -> None:
    source, manifest = repository
    bucket = emulators.create_public_bucket(clouds.s3, clouds.admin, "sealed")
    s3 = clouds.admin.client(clouds.s3)
    rule = s3.get_bucket_encryption(Bucket="sealed")["ServerSideEncryptionConfiguration"]["Rules"][
        0
    ]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert (default["SSEAlgorithm"], default["KMSMasterKeyID"]) == ("aws:kms", bucket.kms_key_arn)
    assert s3.get_bucket_versioning(Bucket="sealed")["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket="sealed")["PublicAccessBlockConfiguration"]
    assert all(block.values())
    kms = clouds.admin.client(clouds.s3, "kms")
    assert kms.describe_key(KeyId=bucket.kms_key_arn)["KeyMetadata"]["Enabled"]
    uploader = as_uploader(bucket)
    with transfer_progress(disable=True) as progress:
        publish(uploader, source, manifest, progress)
    emulators.seal_public_bucket(bucket)
    sealed = json.loads(s3.get_bucket_policy(Bucket="sealed")["Policy"])["Statement"]
    assert sealed == s3_encrypted_uploads_statements(bucket.arn, bucket.kms_key_arn), (
        "sealed with the stack's own statements (less the plain-HTTP Deny)"
    )
    key = f"{manifest.prefix}echo/config.pbtxt"
    with pytest.raises(
        AccessDeniedError, match=rf"{uploader.principal.arn} was refused s3:PutObject"
    ):
        uploader.put(key, source / "echo/config.pbtxt", "sha", lambda _: None)
    assert b"".join(uploader.read(key)) == (source / "echo/config.pbtxt").read_bytes(), (
        "the seal refuses puts only: the prefix stays readable"
    )


def test_an_upload_refused_by_the_bucket_policy_says_who_and_leaves_nothing_servable(
    clouds: Clouds, repository: tuple[Path, Manifest]
) -> None:
    source, manifest = repository
    bucket = emulators.create_public_bucket(clouds.s3, clouds.admin, "refusing")
    refused = f"{bucket.arn}/{manifest.prefix}other/config.pbtxt"
    deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": refused}
    s3 = clouds.admin.client(clouds.s3)
    s3.put_bucket_policy(
        Bucket=bucket.name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    )
    uploader = as_uploader(bucket)
    with transfer_progress(disable=True) as progress:
        with pytest.raises(AccessDeniedError) as raised:
            publish(uploader, source, manifest, progress)
        message = str(raised.value)
        assert f"{uploader.principal.arn} was refused s3:PutObject on {refused}" in message
        s3.delete_bucket_policy(Bucket=bucket.name)
        with pytest.raises(UploadVerificationError, match=r"other/config.pbtxt: missing"):
            verify(bucket, manifest, progress)
    assert set(bucket.sizes(manifest.prefix)) < {manifest.prefix + p for p in manifest.files}, (
        "half uploaded, and the verify step refuses to serve it"
    )


def test_the_uploader_holds_the_rendered_upload_rights_and_nothing_more(
    clouds: Clouds, repository: tuple[Path, Manifest]
) -> None:
    source, _ = repository
    uploader = as_uploader(emulators.create_public_bucket(clouds.s3, clouds.admin, "least"))
    users = clouds.admin.client(clouds.s3, "iam")
    name = uploader.principal.arn.rsplit("/", 1)[1]
    held = users.get_user_policy(UserName=name, PolicyName=iam.STACK_POLICY)["PolicyDocument"]
    assert held == emulators.uploader_policy(uploader)
    with pytest.raises(AccessDeniedError, match=r"s3:PutObject on arn:aws:s3:::least/models/x"):
        uploader.put("models/x", source / "echo/config.pbtxt", "sha", lambda _: None)


def test_the_private_bucket_exists_on_the_emulator(clouds: Clouds) -> None:
    emulators.create_private_bucket(clouds.gcs, "private-check")
    assert "private-check" in {b.name for b in gcs_client(clouds.gcs).list_buckets()}
    assert os.environ.get("STORAGE_EMULATOR_HOST") is None, "no global emulator env leaks"
