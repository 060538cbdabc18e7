"""Broken stack files are config errors that name the file (and the line and column)."""

from pathlib import Path

import pytest

from hybrid.config import ConfigError, read_stack_file
from hybrid.paths import PROJECT_ROOT


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "config:\n  hybrid:models: [a\n  hybrid:adminCidrs: []\n",
            "Pulumi.broken.yaml: line 3, column 20: YAML syntax error: while parsing a flow "
            "sequence: expected ',' or ']', but got ':'",
        ),
        ("- config\n- hybrid:x\n", "Pulumi.broken.yaml: the top level is a list; it must be"),
        ("config:\n  - hybrid:x\n", "Pulumi.broken.yaml: config: is a list; it must be a"),
        ("just words\n", "Pulumi.broken.yaml: the top level is a string; it must be"),
    ],
)
def test_a_broken_stack_file_is_a_config_error_naming_it(
    root: Path, text: str, message: str
) -> None:
    (root / "Pulumi.broken.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_stack_file("broken", root)
    assert message in str(raised.value)
    assert "<unicode string>" not in str(raised.value)


def test_a_broken_project_file_is_named_too(root: Path) -> None:
    (root / "Pulumi.yaml").write_text("name: hybrid\nconfig: [1, 2\n")
    (root / "Pulumi.dev.yaml").write_text("config: {}\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.yaml: line 3, column 1: YAML syntax"):
        read_stack_file("dev", root)


def test_an_empty_stack_file_or_config_is_no_values_of_its_own(root: Path) -> None:
    (root / "Pulumi.empty.yaml").write_text("")
    (root / "Pulumi.bare.yaml").write_text("config:\n")
    assert read_stack_file("empty", root) == read_stack_file("bare", root)
