"""A start that fails shows the relevant log lines and stops everything it had started."""

import time
from pathlib import Path

import pytest
from rich.console import Console

from hybrid.bucket_access import Document
from serving.errors import LocalStackError
from serving.local import emulators, stack
from serving.local.buckets import S3Bucket
from serving.local.state import read_state
from tests.serving.conftest import one_model_repository

pytestmark = pytest.mark.local_stack

BROKEN_MODEL = """
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights file is corrupt: refusing to load")
"""


def test_a_model_that_cannot_load_stops_the_whole_start(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    manifest = one_model_repository(source, "broken", BROKEN_MODEL)
    folder = tmp_path / "state"
    console = Console(record=True, width=200)
    with pytest.raises(LocalStackError) as raised:
        stack.up("dev", source, {"public": manifest, "private": manifest}, folder, console, 120)
    message = str(raised.value)
    assert "exited while waiting for Triton" in message
    assert "weights file is corrupt: refusing to load" in message, "the log line that matters"
    assert "CudaDriverHelper" not in message.split("...")[0], "harmless CPU noise left out"
    assert read_state(folder) is None, "no state left behind"
    logs = list((folder / "logs").glob("*.log"))
    assert {log.name for log in logs} >= {"moto.log", "fake-gcs.log"}
    assert stack.down(folder, console) == [], "nothing left running"


def test_a_triton_that_iam_refuses_fails_at_once_and_says_who_was_refused_what(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Triton policy as it was before HeadBucket was known: ``s3:ListBucket`` only with an
    ``s3:prefix`` (no ``HeadModelBucket`` statement). AWS refuses Triton's first request; so
    does moto."""
    rendered = emulators.triton_policy

    def before_the_fix(bucket: S3Bucket) -> Document:
        policy = rendered(bucket)
        policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "HeadModelBucket"]
        return policy

    monkeypatch.setattr(emulators, "triton_policy", before_the_fix)
    source = tmp_path / "repo"
    manifest = one_model_repository(source, "echo")
    folder = tmp_path / "state"
    console = Console(record=True, width=200)
    started = time.monotonic()
    with pytest.raises(LocalStackError) as raised:
        stack.up("dev", source, {"public": manifest, "private": manifest}, folder, console, 120)
    message = str(raised.value)
    assert time.monotonic() - started < 60, "refused at once, not timed out"
    assert message.startswith(
        "Triton (public) could not read its repository: moto refused "
        "arn:aws:iam::123456789012:user/triton-public\n"
        "  - s3:ListBucket on arn:aws:s3:::hybrid-public-models (HeadBucket)\n"
    ), message
    assert "Unable to create S3 filesystem client" in message, "Triton's own line follows"
    assert "not ready after" not in message
    assert read_state(folder) is None, "no state left behind"
    assert stack.down(folder, console) == [], "nothing left running"
