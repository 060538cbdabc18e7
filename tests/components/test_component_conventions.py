"""Every ComponentResource in components/ follows DESIGN.md's shape, checked on the source:
type token ``hybrid:<module>:<Class>`` first, ``register_outputs`` as the last statement.

A concept split into one class per cloud (``AwsEncryptedBucket``, ``GcpEncryptedBucket``)
keeps the concept's token, ``hybrid:<module>:<Concept>``, so that its URNs did not move."""

import ast
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


CLOUD_HALVES = ("Aws", "Gcp")


def _component_classes() -> list[tuple[Path, ast.ClassDef]]:
    found = []
    for path in sorted(COMPONENTS.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base).endswith("ComponentResource") for base in node.bases
            ):
                found.append((path, node))
    return found


def _module_strings(path: Path) -> dict[str, str]:
    """Module-level ``NAME = "..."`` constants, for a token the classes of a module share."""
    return {
        node.targets[0].id: node.value.value
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


CLASSES = _component_classes()


def _init(cls: ast.ClassDef) -> ast.FunctionDef:
    inits = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    assert len(inits) == 1, f"{cls.name} has no __init__"
    return inits[0]


def test_the_components_are_found() -> None:
    names = {cls.name for _, cls in CLASSES}
    assert {"AwsNetwork", "GcpNetwork", "HybridVpn", "PublicCluster", "PrivateCluster",
            "AwsGpuNodePool", "GcpGpuNodePool", "AwsEncryptedBucket", "GcpEncryptedBucket",
            "ServingPki"} <= names  # fmt: skip


@pytest.mark.parametrize(("path", "cls"), CLASSES, ids=[c.name for _, c in CLASSES])
def test_register_outputs_is_the_last_statement(path: Path, cls: ast.ClassDef) -> None:
    last = _init(cls).body[-1]
    assert (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and ast.unparse(last.value.func) == "self.register_outputs"
    ), f"{path.name}:{last.lineno}: {cls.name}.__init__ must end with self.register_outputs(...)"


@pytest.mark.parametrize(("path", "cls"), CLASSES, ids=[c.name for _, c in CLASSES])
def test_type_token_names_module_and_class(path: Path, cls: ast.ClassDef) -> None:
    body = _init(cls).body
    first = (
        body[1]
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        else body[0]
    )
    call = first.value if isinstance(first, ast.Expr) else None
    assert isinstance(call, ast.Call) and ast.unparse(call.func) == "super().__init__", (
        f"{cls.name}.__init__ must start with super().__init__(<type token>, ...)"
    )
    token = call.args[0]
    if isinstance(token, ast.Name):
        value = _module_strings(path)[token.id]
    else:
        assert isinstance(token, ast.Constant)
        value = token.value
    concept = cls.name[3:] if cls.name.startswith(CLOUD_HALVES) else None
    assert value in {f"hybrid:{path.stem}:{cls.name}", f"hybrid:{path.stem}:{concept}"}
