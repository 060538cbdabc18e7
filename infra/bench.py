"""How long the mocked evaluation of each stack takes, and what it creates.

``python -m infra.bench dev staging prod`` (``make bench-infra``) evaluates every stack
under the offline mocks a few times, one stack after another in one process, and prints
the wall time (median and best) and the resource counts by type. The first, untimed run
absorbs the one-off cost of importing the cloud SDKs.
"""

import json
import statistics
import sys
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from hybrid.cli import ArgumentParser, ExitCode, at_least_one, error_json
from hybrid.config import ConfigError
from hybrid.console import make_console
from infra.offline import StackEvaluation, evaluate_stack


@dataclass(frozen=True)
class StackTiming:
    stack: str
    seconds: list[float]
    evaluation: StackEvaluation

    @property
    def resources(self) -> int:
        return sum(1 for r in self.evaluation.resources if r.custom)

    @property
    def components(self) -> int:
        return sum(1 for r in self.evaluation.resources if not r.custom)


def measure(stacks: list[str], repeat: int) -> list[StackTiming]:
    evaluate_stack(stacks[0])  # warm-up: SDK imports, first-run caches
    timings = []
    for stack in stacks:
        runs = [evaluate_stack(stack) for _ in range(repeat)]
        timings.append(StackTiming(stack, [r.seconds for r in runs], runs[-1]))
    return timings


def render(timings: list[StackTiming], console: Console) -> None:
    summary = Table(title="Mocked evaluation of infra/__main__.py (no cloud, no CLI)")
    summary.add_column("stack")
    summary.add_column("resources", justify="right")
    summary.add_column("components", justify="right")
    summary.add_column("median s", justify="right")
    summary.add_column("best s", justify="right")
    summary.add_column("runs", justify="right")
    for t in timings:
        summary.add_row(
            t.stack,
            str(t.resources),
            str(t.components),
            f"{statistics.median(t.seconds):.2f}",
            f"{min(t.seconds):.2f}",
            str(len(t.seconds)),
        )
    console.print(summary)

    counts = Table(title="Resources by type")
    counts.add_column("type", overflow="fold")
    for t in timings:
        counts.add_column(t.stack, justify="right")
    per_stack = [t.evaluation.counts_by_type() for t in timings]
    for type_ in sorted(set().union(*per_stack)):
        counts.add_row(type_, *(str(c.get(type_, 0)) for c in per_stack))
    console.print(counts)


def as_json(timings: list[StackTiming]) -> str:
    return json.dumps(
        {
            t.stack: {
                "resources": t.resources,
                "components": t.components,
                "seconds": t.seconds,
                "median_seconds": statistics.median(t.seconds),
                "by_type": t.evaluation.counts_by_type(),
            }
            for t in timings
        },
        indent=2,
    )


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m infra.bench",
        description="Time the mocked evaluation of each stack and count what it creates.",
    )
    parser.add_argument("stacks", nargs="*", default=["dev", "staging", "prod"])
    parser.add_argument(
        "--repeat", type=at_least_one, default=3, help="timed runs per stack (default 3)"
    )
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args(argv)
    console = make_console(stderr=True)
    try:
        with console.status("evaluating stacks under mocks..."):
            timings = measure(args.stacks, args.repeat)
    except ConfigError as error:
        if args.format == "json":
            print(error_json(str(error), ExitCode.USAGE))
        console.print(str(error), style="red", markup=False, highlight=False)
        return ExitCode.USAGE
    if args.format == "json":
        print(as_json(timings))
    else:
        render(timings, make_console())
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
