"""The committed project and stack files load under the Pulumi CLI's rules, and the rules
themselves refuse what the CLI refuses, with its messages."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.pulumi_cli import project_files_problems, project_problems, stack_problems

ROOT = Path(__file__).resolve().parents[2]
PROJECT = {"name": "hybrid", "runtime": "python"}


def test_the_committed_project_and_every_stack_file_load() -> None:
    assert project_files_problems(ROOT) == []


def test_a_project_named_otherwise_than_its_config_prefix_is_refused(tmp_path: Path) -> None:
    """The first round's Pulumi.yaml: project ``hybrid-inference``, typed ``hybrid:`` keys."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({**project, "name": "hybrid-inference"}))
    problems = project_files_problems(tmp_path)
    assert (
        "Pulumi.yaml: Configuration key 'hybrid:awsVpcCidr' is not namespaced by the project "
        "and should not define a type"
    ) in problems


def test_a_broken_stack_file_is_a_problem_naming_it_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  hybrid:adminCidrs: [a\n  b: 1\n")
    (tmp_path / "Pulumi.prod.yaml").write_text("- config\n")
    problems = project_files_problems(tmp_path)
    dev, prod = problems
    assert dev.startswith("Pulumi.dev.yaml: line 3, column 4: YAML syntax error: "), dev
    assert prod == "Pulumi.prod.yaml: the top level is a list; it must be a mapping (config: ...)"


@pytest.mark.parametrize(
    ("key", "declared", "message"),
    [
        ("aws:region", {"type": "string"}, "should not define a type"),
        ("aws:region", {"default": "us-east-1"}, "Did you mean to use the 'value' attribute"),
        ("aws:region", {"description": "x"}, "must provide an attribute 'value'"),
        ("hybrid:zones", {"type": "array"}, "does not specify the underlying type"),
        ("hybrid:size", {"type": "integer", "default": "big"}, "of the expected type 'integer'"),
        ("zones", {"type": "array", "items": {"type": "string"}, "default": [1]}, "array<string>"),
        ("hybrid:x", {"default": 1, "value": 2}, "cannot have both a 'default' and 'value'"),
        ("hybrid:x", {"type": "number"}, "has an unknown type 'number'"),
    ],
)  # fmt: skip
def test_project_declarations_the_cli_refuses(key: str, declared: dict, message: str) -> None:
    problems = project_problems({**PROJECT, "config": {key: declared}})
    assert len(problems) == 1 and message in problems[0], problems


@pytest.mark.parametrize(
    "declared",
    [
        {"aws:region": {"value": "us-east-1"}},
        {"aws:region": "us-east-1"},
        {"hybrid:size": {"type": "integer", "default": 3}},
        {"size": {"type": "integer", "default": "3"}},
        {"hybrid:on": {"type": "boolean", "default": "true"}},
        {"hybrid:zones": {"type": "array", "items": {"type": "string"}, "default": ["a"]}},
    ],
)
def test_project_declarations_the_cli_accepts(declared: dict) -> None:
    assert project_problems({**PROJECT, "config": declared}) == []


@pytest.mark.parametrize("name", ["", "hybrid inference", "hybrid/inference"])
def test_project_names_the_cli_refuses(name: str) -> None:
    assert project_problems({**PROJECT, "name": name})


DECLARED: dict[str, Any] = {
    "hybrid:size": {"type": "integer", "default": 3},
    "hybrid:zones": {"type": "array", "items": {"type": "string"}},
    "hybrid:name": {"type": "string"},
}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"hybrid:name": "a"}, "Stack 'dev' is missing configuration value 'hybrid:zones'"),
        ({}, "Stack 'dev' is missing configuration values 'hybrid:zones' and 'hybrid:name'"),
        (
            {"hybrid:zones": "a", "hybrid:name": "a"},
            "Stack 'dev' with configuration key 'hybrid:zones' must be of type 'array<string>'",
        ),
        (
            {"hybrid:zones": [], "hybrid:name": "a", "hybrid:size": 2.5},
            "Stack 'dev' with configuration key 'hybrid:size' must be of type 'integer'",
        ),
    ],
)
def test_stack_values_the_cli_refuses(values: dict, message: str) -> None:
    project = {**PROJECT, "config": DECLARED}
    assert message in stack_problems("dev", project, {"config": values})


def test_stack_values_of_the_declared_types_pass() -> None:
    project = {**PROJECT, "config": DECLARED}
    values = {"hybrid:zones": ["a"], "hybrid:name": "n", "hybrid:size": "4", "aws:region": "x"}
    assert stack_problems("dev", project, {"config": values}) == []
