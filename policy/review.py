"""`python -m policy.review --stack dev`: the offline policy review of one stack.

Exit codes: 0 clean (advisory notes allowed), 1 at least one mandatory violation,
2 the stack could not be evaluated (bad config or a failing program), said in plain words.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.markdown import Markdown

from hybrid.config import ConfigError
from hybrid.console import make_console
from policy.report import ProgramError, review_stack, to_json, to_markdown

PROGRAM_FAILED = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m policy.review",
        description="Run a stack's program under Pulumi mocks (no CLI, no cloud, no network) "
        "and check every policy of the pack against it.",
    )
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--format",
        choices=("text", "md", "json"),
        default="text",
        help="text for a terminal, md for a PR comment, json for tools (default: text)",
    )
    parser.add_argument(
        "--overrides",
        type=Path,
        metavar="YAML",
        help="a YAML mapping of config keys whose values replace the stack file's "
        "(null removes a key), e.g. to review a what-if variant of a stack",
    )
    args = parser.parse_args(argv)

    try:
        review = review_stack(args.stack, read_overrides(args.overrides))
    except (ConfigError, ProgramError, OSError, yaml.YAMLError) as error:
        print(f"policy review of stack '{args.stack}' could not run:\n{error}", file=sys.stderr)
        return PROGRAM_FAILED

    if args.format == "json":
        sys.stdout.write(to_json(review))
    elif args.format == "md":
        sys.stdout.write(to_markdown(review))
    else:
        make_console().print(Markdown(to_markdown(review)))
    return review.exit_code


def read_overrides(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    document = yaml.safe_load(path.read_text())
    config = document.get("config", document) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise yaml.YAMLError(f"{path}: expected a mapping of config keys to values")
    return config


if __name__ == "__main__":
    sys.exit(main())
