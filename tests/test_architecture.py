"""The allowed imports between the repo's packages, checked on the source (every ``import``,
also those inside functions), so that the domain package stays the lowest layer."""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hybrid", "modelkit", "components", "infra", "serving", "policy")

MAY_IMPORT: dict[str, frozenset[str]] = {
    "hybrid": frozenset(),
    "modelkit": frozenset({"hybrid"}),
    "components": frozenset({"hybrid"}),
    "infra": frozenset({"hybrid", "components"}),
    "serving": frozenset({"hybrid", "modelkit"}),
    "policy": frozenset({"hybrid"}),
}
"""Package -> the other repo packages any of its modules may import."""

EXCEPTIONS: dict[str, frozenset[str]] = {
    # The stack composes the TensorRT build Jobs from the shape profile the manifest records.
    "infra/triton_sites.py": frozenset({"modelkit.onnx2tensorrt", "modelkit.tensorrt_job"}),
    # The offline review and its behavioural checks run the stack under the mocks harness.
    "policy/report.py": frozenset({"infra.offline"}),
    "policy/engine.py": frozenset({"infra.offline"}),
    "policy/deploy_order.py": frozenset({"infra.offline"}),
    "policy/client_requests.py": frozenset({"infra.offline"}),
}
"""Module -> the modules outside its package's allowance it may import, each for a reason."""


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _allowed(source: str, package: str, module: str) -> bool:
    target = module.split(".", 1)[0]
    if target not in PACKAGES or target == package or target in MAY_IMPORT[package]:
        return True
    return any(module == m or module.startswith(m + ".") for m in EXCEPTIONS.get(source, ()))


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            source = path.relative_to(root).as_posix()
            for line, module in _imports(path):
                if not _allowed(source, package, module):
                    allowed = sorted(MAY_IMPORT[package]) or "nothing of the repo"
                    found.append(
                        f"{source}:{line} imports {module}; {package} may import {allowed}"
                    )
    return found


def test_every_import_goes_the_allowed_direction() -> None:
    problems = violations()
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


@pytest.mark.parametrize("source", sorted(EXCEPTIONS))
def test_every_exception_is_still_needed(source: str) -> None:
    used = {module for _, module in _imports(ROOT / source)}
    unused = sorted(m for m in EXCEPTIONS[source] if not any(u.startswith(m) for u in used))
    assert not unused, f"{source} no longer imports {unused}; drop them from EXCEPTIONS"


@pytest.mark.usefixtures("rendered_repositories")
def test_the_stack_program_trusts_the_manifest_without_the_model_toolchain() -> None:
    """``pulumi up`` reads the rendered manifest; it never loads what parses model sources."""
    script = (
        "import sys\n"
        "from infra.offline import evaluate_stack\n"
        "evaluate_stack('prod')\n"  # TensorRT on: plan Jobs built from the manifest's profile
        "print(sorted(m for m in ('tritonclient', 'tokenizers', 'torch') if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]", f"the stack program loaded {run.stdout.strip()}"
