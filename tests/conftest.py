"""Shared fixtures: each stack is evaluated under mocks once per test session.

``evaluated(stack, preview=False)`` returns the cached ``StackEvaluation`` (rendering the
model repositories first); the parametrised ``stack_evaluation`` fixture runs a test once
per stack. Tests that run the stack program some other way ask for
``rendered_repositories``; config, policy-rule and component tests need no model build.

Every run ends by checking that no Triton it started left anything behind.
"""

import os
import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from infra.offline import StackEvaluation

STACKS = ("dev", "staging", "prod")


@cache
def render_repositories() -> None:
    """Every stack program uploads ``build/repos/<site>/`` (what `make models` renders), so
    render it once per session. Without TensorRT plans the site targets hold the same files
    for every stack, so one rendering serves them all (a no-op when it is already there)."""
    from hybrid.sites import SITES
    from modelkit.build import build

    build("dev", targets=SITES)


@pytest.fixture(scope="session")
def rendered_repositories() -> None:
    render_repositories()


@cache
def evaluated(stack: str, preview: bool = False) -> "StackEvaluation":
    """The mocked evaluation of ``stack``, computed on first use and then shared."""
    from infra.offline import evaluate_stack  # imports Pulumi only for tests that need it

    render_repositories()
    return evaluate_stack(stack, preview=preview)


@pytest.fixture(scope="session")
def evaluate() -> Callable[..., "StackEvaluation"]:
    return evaluated


@pytest.fixture(scope="session", params=STACKS)
def stack_evaluation(request: pytest.FixtureRequest) -> "StackEvaluation":
    return evaluated(request.param)


@pytest.fixture(scope="session", autouse=True)
def no_triton_leftovers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the run when a Triton the suite started left a backend stub, a /dev/shm region
    or a model copy behind (`serving.local.triton.reclaim`). Every Triton the suite starts
    has its scratch folder under this session's temporary root, so only what belongs to the
    suite is looked at, never what other programs on the machine run."""
    yield
    from serving.local import processes, triton  # imports pytriton: only once the run is over

    root = tmp_path_factory.getbasetemp()
    prefixes = [triton.shm_prefix(folder) for folder in (root, *root.rglob("*")) if folder.is_dir()]

    def ours(name: str) -> bool:
        return any(name.startswith(prefix) for prefix in prefixes)

    def stub(argv: list[str]) -> bool:
        return any(triton.is_stub(argv, prefix) for prefix in prefixes)

    left = {
        "backend stubs": [str(found.pid) for found in processes.find(stub, "stub")],
        "shm regions": [name for name in os.listdir(triton.SHM) if ours(name)],
        "model copies": [str(path) for path in root.rglob("folder*") if COPY.fullmatch(path.name)],
    }
    left = {kind: found for kind, found in left.items() if found}
    assert not left, f"the test run left Triton's leftovers behind: {left}"


COPY = re.compile(r"folder[A-Za-z0-9]{6}")
"""The name of a folder Triton copies a model of a remote repository into (mkdtemp)."""
