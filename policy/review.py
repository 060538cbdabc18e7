"""`python -m policy.review --stack dev`: the offline policy review of one stack.

Exit codes (hybrid.cli, docs/cli.md): 0 clean (advisory notes allowed), 1 at least one
mandatory violation, 2 the stack could not be evaluated (a bad stack file or config, a
failing program), said in plain words; CI posts a 2 as "could not run".
"""

import sys
from pathlib import Path
from typing import Any

from rich.markdown import Markdown

from hybrid.cli import ArgumentParser, ExitCode, error_json
from hybrid.config import ConfigError, PulumiFileError, read_pulumi_file
from hybrid.console import make_console
from policy.report import ProgramError, review_stack, to_json, to_markdown

PROGRAM_FAILED = ExitCode.USAGE


class OverridesError(Exception):
    """The --overrides file is not a mapping of config keys (or not YAML at all)."""


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
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
        "--detail",
        action="store_true",
        help="also count every resource type (text and md; json always has them)",
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
    except (ConfigError, ProgramError, OverridesError) as error:
        message = f"policy review of stack '{args.stack}' could not run:\n{error}"
        if args.format == "json":
            print(error_json(message, PROGRAM_FAILED))
        print(message, file=sys.stderr)
        return PROGRAM_FAILED

    if args.format == "json":
        sys.stdout.write(to_json(review))
    elif args.format == "md":
        sys.stdout.write(to_markdown(review, detail=args.detail))
    else:
        make_console().print(Markdown(to_markdown(review, detail=args.detail)))
    return review.exit_code


def read_overrides(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        document = read_pulumi_file(path)  # a stack file's shape, or its bare config mapping
    except PulumiFileError as error:
        raise OverridesError(f"{path}: {error.detail}") from error
    config: dict[str, Any] = document.get("config", document)
    return config


if __name__ == "__main__":
    sys.exit(main())
