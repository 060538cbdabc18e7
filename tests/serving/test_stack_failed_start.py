"""A start that fails shows the relevant log lines and stops everything it had started."""

from pathlib import Path

import pytest
from rich.console import Console

from modelkit.manifest import Manifest
from serving.errors import LocalStackError
from serving.local import stack
from serving.local.state import read_state

pytestmark = pytest.mark.local_stack

BROKEN_MODEL = """
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("weights file is corrupt: refusing to load")
"""


def test_a_model_that_cannot_load_stops_the_whole_start(tmp_path: Path) -> None:
    source = tmp_path / "repo"
    (source / "broken" / "1").mkdir(parents=True)
    (source / "broken" / "config.pbtxt").write_text(
        'name: "broken"\nbackend: "python"\nmax_batch_size: 1\n'
        'input [{ name: "IN" data_type: TYPE_FP32 dims: [1] }]\n'
        'output [{ name: "OUT" data_type: TYPE_FP32 dims: [1] }]\n'
    )
    (source / "broken" / "1" / "model.py").write_text(BROKEN_MODEL)
    manifest = Manifest.of_directory(source, target="local", stack="dev")
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
