"""The local stack, started once per test session (`python -m serving.local up`), and
brought back to health before each test that needs it (tests kill sites on purpose); the
bare emulators, for the tests that need only buckets; a one-model repository."""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hybrid.manifest import Manifest
from serving.endpoints import PROJECT_ROOT
from serving.inprocess import InProcessEmbedder
from serving.local import emulators, processes, stack
from serving.local.iam import Principal
from serving.local.repository import LOCAL_REPOSITORY, site_manifests
from serving.local.state import LocalState, read_state

UP_TIMEOUT = 300
ECHO_MODEL = """
import triton_python_backend_utils as pb


class TritonPythonModel:
    def execute(self, requests):
        inputs = [pb.get_input_tensor_by_name(r, "IN").as_numpy() for r in requests]
        return [pb.InferenceResponse([pb.Tensor("OUT", x)]) for x in inputs]
"""


def one_model_repository(folder: Path, name: str, model_py: str = ECHO_MODEL) -> Manifest:
    """A repository of one python-backend model (FP32 [1] in, FP32 [1] out): starts in seconds."""
    (folder / name / "1").mkdir(parents=True)
    (folder / name / "config.pbtxt").write_text(
        f'name: "{name}"\nbackend: "python"\nmax_batch_size: 1\n'
        'input [{ name: "IN" data_type: TYPE_FP32 dims: [1] }]\n'
        'output [{ name: "OUT" data_type: TYPE_FP32 dims: [1] }]\n'
    )
    (folder / name / "1" / "model.py").write_text(model_py)
    return Manifest.of_directory(folder, target="local", stack="dev")


@dataclass(frozen=True)
class Clouds:
    s3: str
    gcs: str
    admin: Principal
    """moto enforces IAM from its start; the admin stands in for whoever runs the stack."""
    moto_log: Path


@pytest.fixture(scope="session")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clouds]:
    """moto and fake-gcs-server on free 127.0.0.1 ports, without Triton."""
    logs = tmp_path_factory.mktemp("emulators")
    s3_port, gcs_port = processes.free_ports(2)
    moto, admin = emulators.start_moto(s3_port, logs / "moto.log")
    started = [moto]
    try:
        started.append(emulators.start_fake_gcs(gcs_port, logs / "fake-gcs.log"))
        yield Clouds(
            f"http://127.0.0.1:{s3_port}", f"http://127.0.0.1:{gcs_port}", admin, logs / "moto.log"
        )
    finally:
        for process in started:
            processes.stop(process)


def run_local(state_dir: Path, *args: str, timeout: float = UP_TIMEOUT) -> str:
    command = [sys.executable, "-m", "serving.local", "--state-dir", str(state_dir), *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def rendered() -> Path:
    """The rendered local repository (built here when missing or stale)."""
    try:
        site_manifests("dev")
    except Exception:  # any reason to rebuild: missing, stale, hand-edited
        subprocess.run(
            [sys.executable, "-m", "modelkit", "build", "--stack", "dev"],
            check=True,
            cwd=PROJECT_ROOT,
            timeout=1200,
        )
    return LOCAL_REPOSITORY


@pytest.fixture(scope="session")
def state_dir(rendered: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A stack of the session's own (its own ports and folder, never the user's .local)."""
    folder = tmp_path_factory.mktemp("local-stack")
    output = run_local(folder, "up")
    assert "already running" not in output
    yield folder
    run_local(folder, "down")


@pytest.fixture
def local_stack(state_dir: Path) -> LocalState:
    """The session's stack, healed first if an earlier test stopped a site."""
    state = read_state(state_dir)
    if state is None or not stack.health(state)["healthy"]:
        run_local(state_dir, "up")
        state = read_state(state_dir)
    assert state is not None
    return state


@pytest.fixture(scope="session")
def reference(rendered: Path) -> InProcessEmbedder:
    return InProcessEmbedder(rendered)
