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
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    values = {
        key: spec["default"]
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }
    values.update((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {})
    return values


def declared_keys(root: Path = PROJECT_ROOT) -> tuple[str, ...]:
    """Every ``hybrid:`` key the project knows: declared in Pulumi.yaml, plus object keys."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    return tuple(project.get("config") or {}) + OBJECT_KEYS
