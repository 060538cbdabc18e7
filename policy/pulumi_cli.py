"""The Pulumi CLI's rules for ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``.

The CLI checks both files before it runs any program, so a file it refuses stops every
command (``stack init``, ``config set``, ``preview``, ``up``, CI included), and no mock
ever sees it. The rules and messages follow the CLI's own code:
``sdk/go/common/workspace/project.go`` (``Project.Validate``, ``ValidateConfigValue``,
``configKeyIsNamespacedByProject``) and ``sdk/go/common/workspace/config.go``
(``ValidateStackConfigAndApplyProjectConfig``), pulumi/pulumi v3.
"""

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hybrid.config import PulumiFileError, read_pulumi_file

PROJECT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
"""``tokens.ValidateProjectName``: letters, digits, ``_``, ``.`` and ``-``."""
TYPES = ("string", "integer", "boolean", "array")


def project_problems(project: Mapping[str, Any]) -> list[str]:
    """What the CLI's project loader says about ``Pulumi.yaml``; empty when it loads."""
    name = project.get("name")
    if not name:
        return ["project is missing a 'name' attribute"]
    if not isinstance(name, str) or not PROJECT_NAME.match(name):
        return [
            f"project name '{name}' may only contain alphanumerics, hyphens, underscores, "
            "and periods"
        ]
    if not project.get("runtime"):
        return ["project is missing a 'runtime' attribute"]
    problems = []
    for key, declared in (project.get("config") or {}).items():
        if not isinstance(declared, Mapping):
            continue  # a bare value: the shorthand for {value: ...}
        problems += _declaration_problems(name, key, declared)
    return problems


def stack_problems(
    stack: str, project: Mapping[str, Any], stack_file: Mapping[str, Any]
) -> list[str]:
    """What the CLI says about one stack's config against the project's declarations."""
    name = project["name"]
    values = {_qualified(name, k): v for k, v in (stack_file.get("config") or {}).items()}
    problems, missing = [], []
    for key, declared in (project.get("config") or {}).items():
        if not isinstance(declared, Mapping) or not _namespaced_by(name, key):
            continue
        qualified = _qualified(name, key)
        if qualified not in values:
            if "default" not in declared and "value" not in declared:
                missing.append(qualified)
            continue
        type_name = declared.get("type")
        if type_name and not valid_value(type_name, declared.get("items"), values[qualified]):
            problems.append(
                f"Stack '{stack}' with configuration key '{qualified}' must be of type "
                f"'{_full_type_name(type_name, declared.get('items'))}'"
            )
    if missing:
        noun = "value" if len(missing) == 1 else "values"
        listed = " and ".join(f"'{key}'" for key in missing)
        problems.insert(0, f"Stack '{stack}' is missing configuration {noun} {listed}")
    return problems


def project_files_problems(root: Path) -> list[str]:
    """Every problem the CLI would report for ``root``'s project file and stack files."""
    try:
        project = read_pulumi_file(root / "Pulumi.yaml")
    except PulumiFileError as error:
        return [str(error)]
    problems = [f"Pulumi.yaml: {p}" for p in project_problems(project)]
    if problems:
        return problems  # the CLI stops at the project file
    for path in sorted(root.glob("Pulumi.*.yaml")):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        try:
            stack_file = read_pulumi_file(path)
        except PulumiFileError as error:
            problems.append(str(error))
            continue
        problems += [f"{path.name}: {p}" for p in stack_problems(stack, project, stack_file)]
    return problems


def valid_value(type_name: str, items: Mapping[str, Any] | None, value: Any) -> bool:
    """``ValidateConfigValue``: YAML numbers and strings that parse count for their type."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return math.isfinite(value) and value == math.trunc(value)
        return isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value) is not None
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if not isinstance(value, list) or items is None:
        return False
    return all(valid_value(items.get("type", ""), items.get("items"), item) for item in value)


def _declaration_problems(project: str, key: str, declared: Mapping[str, Any]) -> list[str]:
    """The first thing ``Project.Validate`` refuses about one declared key, if any."""
    typed, items = "type" in declared, declared.get("items")
    type_name = str(declared.get("type", ""))
    if "default" in declared and "value" in declared:
        return [f"project config '{key}' cannot have both a 'default' and 'value' attribute"]
    foreign = f"Configuration key '{key}' is not namespaced by the project and should not"
    if not _namespaced_by(project, key):
        if typed:
            return [f"{foreign} define a type"]
        if "default" in declared:
            return [
                f"{foreign} define a default value. Did you mean to use the 'value' "
                "attribute instead of 'default'?"
            ]
        if "value" not in declared:
            return [
                f"Configuration key '{key}' is namespaced and must provide an attribute 'value'"
            ]
        return []
    if typed and type_name not in TYPES:
        return [f"The configuration key '{key}' has an unknown type '{type_name}'"]
    if type_name == "array" and items is None:
        return [
            f"The configuration key '{key}' declares an array but does not specify the "
            "underlying type via the 'items' attribute"
        ]
    if typed and "default" in declared and not valid_value(type_name, items, declared["default"]):
        return [
            f"The default value specified for configuration key '{key}' is not of the "
            f"expected type '{_full_type_name(type_name, items)}'"
        ]
    return []


def _namespaced_by(project: str, key: str) -> bool:
    return ":" not in key or key.startswith(f"{project}:")


def _qualified(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _full_type_name(type_name: str, items: Mapping[str, Any] | None) -> str:
    if items is not None:
        return f"array<{_full_type_name(items.get('type', ''), items.get('items'))}>"
    return type_name
