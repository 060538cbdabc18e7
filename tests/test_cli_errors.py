"""Every command line on bad input, run as a user runs it (a subprocess): a message that names
the file, key or argument, the exit code docs/cli.md gives, and never a traceback.

The commands run in a copy of the project whose ``hybrid/`` is copied (so ``PROJECT_ROOT``
is the copy) and whose other packages are links: broken stack files are written there, never
into the repository. Every case fails before any model, server or stack program is touched.
"""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from hybrid.cli import ExitCode
from hybrid.paths import PROJECT_ROOT

LINKED = ("serving", "modelkit", "policy", "infra", "components", "model_repo", "Pulumi.yaml")
STACK_FILES = {
    "Pulumi.dev.yaml": (PROJECT_ROOT / "Pulumi.dev.yaml").read_text(),
    "Pulumi.broken.yaml": "config:\n  hybrid:models: [text_embedding\n  hybrid:adminCidrs: []\n",
    "Pulumi.listed.yaml": "- config\n- hybrid:adminCidrs\n",
    "Pulumi.listconfig.yaml": "config:\n  - hybrid:adminCidrs: []\n",
}
SYNTAX = "Pulumi.broken.yaml: line 3, column 20: YAML syntax error"


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    code: ExitCode
    says: tuple[str, ...]
    """What the output must name: the file, key or argument (and the fix, where short)."""

    @property
    def json(self) -> bool:
        return "json" in self.argv


def case(command: str, code: ExitCode, *says: str) -> Case:
    return Case(tuple(command.split()), code, says)


USAGE = ExitCode.USAGE
CASES = {
    "serving-deadline-zero": case(
        "serving embed a --deadline 0", USAGE, "--deadline", "more than 0"
    ),
    "serving-deadline-negative-json": case(
        "serving rank --user 1 --items 1 --deadline -1 --format json", USAGE, "--deadline"
    ),
    "serving-site-choices": case(
        "serving embed a --site nowhere", USAGE, "--site", "'public', 'private'"
    ),
    "serving-no-state-json": case(
        "serving embed a --state missing.json --format json", USAGE, "missing.json", "make up-local"
    ),
    "serving-burst-yaml-syntax": case(
        "serving embed a --grpc 127.0.0.1:9 --routing burst --stack broken", USAGE, SYNTAX
    ),
    "local-timeout": case("serving.local up --timeout 0", USAGE, "--timeout", "more than 0"),
    "smoke-no-state-json": case(
        "serving.smoke --local --state-dir nowhere --format json", USAGE, "nowhere"
    ),
    "bench-rounds": case("serving.bench --rounds 0", USAGE, "--rounds", "at least 1"),
    "burst-growth": case("serving.burst_bench --growth 1", USAGE, "--growth", "more than 1"),
    "tunnel-seconds": case("serving.tunnel_bench --seconds 0", USAGE, "--seconds"),
    "modelkit-yaml-syntax": case("modelkit build --stack broken", USAGE, SYNTAX),
    "modelkit-unknown-stack-json": case(
        "modelkit build --stack nosuch --format json", USAGE, "Pulumi.nosuch.yaml", "known stacks"
    ),
    "infra-bench-yaml-syntax": case("infra.bench broken --repeat 1", USAGE, SYNTAX),
    "review-top-level-list": case(
        "policy.review --stack listed", USAGE, "Pulumi.listed.yaml", "top level is a list"
    ),
    "review-config-list-json": case(
        "policy.review --stack listconfig --format json",
        USAGE,
        "Pulumi.listconfig.yaml",
        "config: is a list",
    ),
    "review-missing-overrides": case(
        "policy.review --stack dev --overrides what-if.yaml",
        USAGE,
        "what-if.yaml",
        "cannot be read",
    ),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(PROJECT_ROOT / "hybrid", root / "hybrid")
    for name in LINKED:
        (root / name).symlink_to(PROJECT_ROOT / name)
    for name, text in STACK_FILES.items():
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def results(project: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """All cases, two at a time: each is one interpreter start (importing the CLI's modules,
    the slow part) and a check that fails before any real work."""
    env = {**os.environ, "PYTHONPATH": str(project), "COLUMNS": "200"}

    def run(item: Case) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", *item.argv],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,  # interpreter starts are slow on a loaded machine
            check=False,
        )

    with ThreadPoolExecutor(2) as pool:
        done = pool.map(run, CASES.values())
        return dict(zip(CASES, done, strict=True))


@pytest.mark.parametrize("name", CASES)
def test_bad_input_is_a_plain_message_and_the_documented_code(
    name: str, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    item, result = CASES[name], results[name]
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == item.code, output
    flat = " ".join(output.split())  # a terminal-width wrap must not hide a name
    for words in item.says:
        assert words in flat, output
    if item.json:
        document = json.loads(result.stdout)
        assert document["ok"] is False and document["exit_code"] == item.code
        assert all(words in " ".join(document["error"].split()) for words in item.says)
