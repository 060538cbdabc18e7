"""Shared fixtures: each stack is evaluated under mocks once per test session.

``evaluated(stack, preview=False)`` returns the cached ``StackEvaluation`` (rendering the
model repositories first); the parametrised ``stack_evaluation`` fixture runs a test once
per stack. Tests that run the stack program some other way ask for
``rendered_repositories``; config, policy-rule and component tests need no model build.
"""

from collections.abc import Callable
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
