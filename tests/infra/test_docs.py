"""The README keeps up with the code: the config keys it accepts, the outputs it exports,
and what each stack creates."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from hybrid.config import declared_keys
from hybrid.config.parse import POOL_FIELDS
from hybrid.paths import PROJECT_ROOT

if TYPE_CHECKING:
    from infra.offline import StackEvaluation

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_config_key_is_documented() -> None:
    missing = [key for key in declared_keys() if f"`{key}`" not in README]
    assert not missing, f"document these keys in README.md's Configuration reference: {missing}"


def test_every_gpu_pool_field_is_documented() -> None:
    assert not [f for f in POOL_FIELDS if f"`{f}`" not in README]


def readme_table(heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after the line starting with ``heading``."""
    lines = README.split("\n" + heading, 1)[1].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_the_documented_stack_outputs_are_the_exported_ones(
    evaluate: Callable[..., "StackEvaluation"],
) -> None:
    documented: dict[str, bool] = {}
    for names, secret, purpose in readme_table("Every stack output"):
        assert secret in ("yes", "no") and purpose, (names, secret, purpose)
        documented |= {name.strip(" `"): secret == "yes" for name in names.split(",")}
    evaluation = evaluate("dev")
    exported = {name: name in evaluation.secret_outputs for name in evaluation.outputs}
    assert documented == exported


def test_the_stacks_table_counts_what_each_program_creates(
    evaluate: Callable[..., "StackEvaluation"],
) -> None:
    from infra.bench import StackTiming  # imports Pulumi

    header = README.split("\n## Stacks", 1)[1].split("\n| |", 1)[1].splitlines()[0]
    stacks = [cell.strip() for cell in header.strip("|").split("|")]
    [row] = [r for r in readme_table("## Stacks") if r[0].startswith("resources + components")]
    for stack, documented in zip(stacks, row[1:], strict=True):
        counted = StackTiming(stack, [], evaluate(stack))  # what `make bench-infra` prints
        assert documented == f"{counted.resources} + {counted.components}", stack
