"""The local stack, started once per test session (`python -m serving.local up`), and
brought back to health before each test that needs it (tests kill sites on purpose)."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.endpoints import PROJECT_ROOT
from serving.inprocess import InProcessEmbedder
from serving.local import stack
from serving.local.repository import LOCAL_REPOSITORY, site_manifests
from serving.local.state import LocalState, read_state

UP_TIMEOUT = 300


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
