"""The uploader against real emulators: every object is read back and checked, and a bucket
whose objects do not match the manifest (or are not encrypted as required) is refused."""

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from modelkit.manifest import Manifest
from serving.errors import UploadVerificationError
from serving.local import emulators, processes
from serving.local.buckets import GcsBucket, S3Bucket, gcs_client, s3_client
from serving.local.upload import publish, transfer_progress, verify


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("emulators")
    s3_port, gcs_port = processes.free_ports(2)
    started = []
    try:
        started.append(emulators.start_moto(s3_port, logs / "moto.log"))
        started.append(emulators.start_fake_gcs(gcs_port, logs / "fake-gcs.log"))
        yield {"s3": f"http://127.0.0.1:{s3_port}", "gcs": f"http://127.0.0.1:{gcs_port}"}
    finally:
        for process in started:
            processes.stop(process)


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


def new_bucket(kind: str, endpoints: dict[str, str], name: str) -> S3Bucket | GcsBucket:
    if kind == "s3":
        return emulators.create_public_bucket(endpoints["s3"], name)
    return emulators.create_private_bucket(endpoints["gcs"], name)


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_publish_uploads_under_the_content_hash_and_verifies(
    kind: str, endpoints: dict[str, str], repository: tuple[Path, Manifest]
) -> None:
    source, manifest = repository
    bucket = new_bucket(kind, endpoints, f"publish-{kind}")
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
    kind: str, endpoints: dict[str, str], repository: tuple[Path, Manifest], tmp_path: Path
) -> None:
    source, manifest = repository
    bucket = new_bucket(kind, endpoints, f"corrupt-{kind}")
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
    endpoints: dict[str, str], repository: tuple[Path, Manifest], tmp_path: Path
) -> None:
    source, manifest = repository
    bucket = emulators.create_public_bucket(endpoints["s3"], "half-uploaded")
    assert isinstance(bucket, S3Bucket)
    prefix = manifest.prefix
    s3 = s3_client(endpoints["s3"])
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
    endpoints: dict[str, str], repository: tuple[Path, Manifest]
) -> None:
    source, manifest = repository
    bucket = emulators.create_public_bucket(endpoints["s3"], "sealed")
    s3 = s3_client(endpoints["s3"])
    rule = s3.get_bucket_encryption(Bucket="sealed")["ServerSideEncryptionConfiguration"]["Rules"][
        0
    ]
    default = rule["ApplyServerSideEncryptionByDefault"]
    assert (default["SSEAlgorithm"], default["KMSMasterKeyID"]) == ("aws:kms", bucket.kms_key_arn)
    assert s3.get_bucket_versioning(Bucket="sealed")["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket="sealed")["PublicAccessBlockConfiguration"]
    assert all(block.values())
    kms = s3_client(endpoints["s3"], "kms")
    assert kms.describe_key(KeyId=bucket.kms_key_arn)["KeyMetadata"]["Enabled"]
    with transfer_progress(disable=True) as progress:
        publish(bucket, source, manifest, progress)
    emulators.seal_public_bucket(bucket)
    assert "DenyNotKms" in s3.get_bucket_policy(Bucket="sealed")["Policy"]
    with pytest.raises(ClientError, match=r"Forbidden|AccessDenied"):
        s3.put_object(Bucket="sealed", Key=f"{manifest.prefix}echo/config.pbtxt", Body=b"x")


def test_the_private_bucket_exists_on_the_emulator(endpoints: dict[str, str]) -> None:
    emulators.create_private_bucket(endpoints["gcs"], "private-check")
    assert "private-check" in {b.name for b in gcs_client(endpoints["gcs"]).list_buckets()}
    assert os.environ.get("STORAGE_EMULATOR_HOST") is None, "no global emulator env leaks"
