"""The stack files as the Pulumi CLI reads them: the project's defaults, then the stack's."""

from pathlib import Path
from typing import Any

import yaml

from hybrid.config.schema import ConfigError, Problem
from hybrid.paths import PROJECT_ROOT

OBJECT_KEYS = (
    "hybrid:publicGpuPools",
    "hybrid:privateGpuPools",
    "hybrid:models",
    "hybrid:latencySloMs",
    "hybrid:encoderPrecision",
)
"""Object-valued keys, which Pulumi.yaml cannot declare."""


def read_stack_file(stack: str, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Raw config of a stack as the CLI would see it: project defaults, then the stack file."""
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(stack, [Problem("stack", f"no {stack_file.name}; known stacks: {known}")])
    values = {
        key: spec["default"]
        for key, spec in _config(stack, root / "Pulumi.yaml").items()
        if isinstance(spec, dict) and "default" in spec
    }
    values.update(_config(stack, stack_file))
    return values


def declared_keys(root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """Every ``hybrid:`` key the project knows: declared in Pulumi.yaml, plus object keys."""
    return tuple(read_pulumi_file(root / "Pulumi.yaml").get("config") or {}) + OBJECT_KEYS


class PulumiFileError(Exception):
    """A Pulumi YAML file that cannot be read as one: named with the line and column of a
    syntax error (YAML's own message says only ``<unicode string>``)."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{path.name}: {detail}")


def read_pulumi_file(path: Path) -> dict[str, Any]:
    """A ``Pulumi.yaml`` or ``Pulumi.<stack>.yaml`` document: a mapping whose ``config:``,
    if any, is a mapping too (as the Pulumi CLI requires)."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise PulumiFileError(path, f"cannot be read: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise PulumiFileError(path, _syntax_error(error)) from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise PulumiFileError(
            path, f"the top level is a {_kind(document)}; it must be a mapping (config: ...)"
        )
    config = document.get("config")
    if config is not None and not isinstance(config, dict):
        raise PulumiFileError(
            path, f"config: is a {_kind(config)}; it must be a mapping of keys to values"
        )
    return document


def _config(stack: str, path: Path) -> dict[str, Any]:
    try:
        return read_pulumi_file(path).get("config") or {}
    except PulumiFileError as error:
        raise ConfigError(stack, [Problem(path.name, error.detail)]) from error


def _syntax_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    parts = (getattr(error, "context", None), getattr(error, "problem", None))
    return f"{where}YAML syntax error: {': '.join(str(p) for p in parts if p) or error}"


def _kind(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )
