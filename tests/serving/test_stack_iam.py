"""The session's stack serves under the stack's own IAM: the public Triton reads as a user that
holds exactly the policy the stack renders for Triton, and moto checked its requests."""

import json
import re
from pathlib import Path

import pytest

from hybrid.bucket_access import s3_encrypted_uploads_statements
from serving.local import emulators, iam, stack
from serving.local.buckets import S3Bucket
from serving.local.state import LocalState

pytestmark = pytest.mark.local_stack

TRITON = stack.triton_name("public")


def public_bucket(state: LocalState) -> S3Bucket:
    name = state.emulators["s3_bucket"].removeprefix("s3://")
    admin = state.principals[stack.ADMIN]
    return S3Bucket(state.emulators["s3"], name, state.emulators["kms_key"], admin)


def test_the_public_triton_runs_as_the_identity_the_stack_renders(local_stack: LocalState) -> None:
    bucket = public_bucket(local_stack)
    reader = local_stack.principals[TRITON]
    users = bucket.principal.client(bucket.endpoint, "iam")
    held = users.get_user_policy(UserName=TRITON, PolicyName=iam.STACK_POLICY)["PolicyDocument"]
    assert held == emulators.triton_policy(bucket), f"{TRITON}: the stack's document, verbatim"
    pid = local_stack.processes[TRITON].pid
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
        if "=" in item
    )
    assert environ["AWS_ACCESS_KEY_ID"] == reader.access_key_id, f"{TRITON}: its own key"
    s3 = bucket.principal.client(bucket.endpoint)
    sealed = json.loads(s3.get_bucket_policy(Bucket=bucket.name)["Policy"])["Statement"]
    assert sealed == s3_encrypted_uploads_statements(bucket.arn, bucket.kms_key_arn), bucket.url


def test_moto_saw_triton_send_head_bucket_and_list_its_prefix(local_stack: LocalState) -> None:
    """Only Triton sends HeadBucket here (the uploader never does); every one was let through."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", Path(local_stack.processes["moto"].log).read_text())
    bucket = local_stack.emulators["s3_bucket"].removeprefix("s3://")
    heads = re.findall(rf'"HEAD /{bucket} HTTP/1.1" (\d+)', log)
    assert heads and set(heads) == {"200"}, f"HeadBucket answers: {sorted(set(heads))}"
    prefix = f"repo/{local_stack.sites['public'].content_hash}/"
    assert f'"GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.1" 200' in log
