"""One real build per test session (exports and training come from the content-hash cache)."""

from pathlib import Path

import pytest

from hybrid.paths import BUILD_DIR
from modelkit.build import BuildResult, build

TEST_REPOS = BUILD_DIR / "test-repos" / "modelkit"


@pytest.fixture(scope="session")
def built() -> BuildResult:
    """The dev stack's three targets, rendered into the tests' own folder."""
    return build("dev", out=TEST_REPOS)


@pytest.fixture(scope="session")
def repos(built: BuildResult) -> dict[str, Path]:
    return {result.target: result.path for result in built.targets}
