"""What every command-line tool of the repo shares: its exit codes and how it reports errors.

A script or a CI step can tell a broken input (fix the file or the arguments) from a
finding (fix the stack) from an outage (retry later) by the exit code alone. The table in
docs/cli.md lists them; a test holds it to this module.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from enum import IntEnum
from typing import NoReturn


class ExitCode(IntEnum):
    OK = 0
    """Done: every check passed (advisory notes allowed)."""
    FAILED = 1
    """It ran and found a problem: a mandatory policy violation, a failed smoke check, a
    TensorRT plan not built yet, a model below its quality target, a local stack that could
    not start."""
    USAGE = 2
    """It could not run as asked: a bad argument (argparse's own code), a stack file or
    config mistake, a missing or unreadable input file; the message names it and the fix."""
    UNAVAILABLE = 3
    """A site did not answer: not ready in time, refused the connection, no site a model is
    placed on answered before the deadline (a private-only model fails closed), or the
    local mode is not running or not healthy."""
    INTERRUPTED = 130
    """Stopped with Ctrl-C (the shell's 128 + SIGINT)."""


def error_json(message: str, code: int) -> str:
    """The one error object every ``--format json`` prints on stdout instead of a result."""
    return json.dumps({"ok": False, "exit_code": int(code), "error": message})


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors exit ``USAGE``, as JSON too when ``--format json`` is asked.

    Subcommand parsers are built from the same class, so they behave alike.
    """

    _argv: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if _wants_json(self._argv):
            print(error_json(f"{self.prog}: {message}", ExitCode.USAGE))
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def positive(text: str) -> float:
    """An argparse ``type`` for seconds, rates and sizes that must be more than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def at_least_one(text: str) -> int:
    """An argparse ``type`` for counts (rounds, repeats, clients): a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _wants_json(argv: Sequence[str]) -> bool:
    pairs = zip(argv, [*argv[1:], ""], strict=True)
    return "--format=json" in argv or ("--format", "json") in pairs
