"""`python -m serving.smoke`: a thin CLI over `targets` and `checks.run_smoke` (`make smoke`)."""

import argparse
import json
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hybrid.cli import ArgumentParser, ExitCode, error_json, positive
from hybrid.config import ConfigError
from hybrid.console import make_console
from hybrid.manifest import ManifestError
from modelkit.errors import ModelkitError
from serving.errors import ServingError, TargetError
from serving.local.state import DEFAULT_DIR
from serving.smoke.checks import (
    MIN_COSINE,
    READY_TIMEOUT,
    SiteTarget,
    SmokeReport,
    run_smoke,
)
from serving.smoke.targets import cloud_targets, local_targets, read_outputs

EPILOG = f"""\
checks: every site is ready; its repository index holds exactly the models the stack places
there (a private-only model is not even in the public repository); text_embedding embeds a
sentence on every site and the sites agree (cosine >= {MIN_COSINE}); ctr_ranker ranks where it
is placed.

exit status (docs/exit-codes.md):
  {ExitCode.OK:d}  every check passed
  {ExitCode.FAILED:d}  a check failed (wrong placement, wrong answer, sites disagree)
  {ExitCode.USAGE:d}  usage or input mistake (arguments, stack outputs, state, kubectl)
  {ExitCode.UNAVAILABLE:d}  a site did not become ready in time, or refused the connection (TLS)
"""


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m serving.smoke",
        description="After `pulumi up` (or `make up-local`): check both Triton sites over\n"
        "the TLS a client uses, the private one with the stack's client certificate.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="a deployed stack: read `pulumi stack output` of it")
    where.add_argument("--local", action="store_true", help="the sites of `make up-local`")
    cloud = parser.add_argument_group("with --stack")
    cloud.add_argument(
        "--outputs",
        metavar="FILE|-",
        help="the JSON of `pulumi stack output --json --show-secrets --stack STACK` "
        "(instead of running it; - reads stdin)",
    )
    cloud.add_argument(
        "--private-address",
        metavar="HOST:PORT",
        help="reach the private site here (from inside the AWS VPC) instead of through "
        "`kubectl port-forward` with the stack's privateKubeconfig",
    )
    local = parser.add_argument_group("with --local")
    local.add_argument(
        "--state-dir", metavar="DIR", type=Path, default=DEFAULT_DIR, help="default: .local"
    )
    parser.add_argument(
        "--timeout",
        type=positive,
        default=READY_TIMEOUT,
        help="seconds to wait for the sites to be ready (default: %(default).0f)",
    )
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="default: %(default)s"
    )
    args = parser.parse_args(argv)
    if args.local and (args.outputs or args.private_address):
        parser.error("--outputs and --private-address go with --stack")
    stderr = make_console(stderr=True, highlight=False, soft_wrap=True)
    try:
        with _targets(args) as targets:
            for target in targets:
                stderr.print(f"checking {target.site} at {target.endpoint.grpc}", markup=False)
            report = run_smoke(
                targets,
                timeout=args.timeout,
                progress=lambda line: stderr.print(line, markup=False),
            )
    except (ServingError, ConfigError, ModelkitError, ManifestError) as error:
        code = error.exit_code if isinstance(error, ServingError) else TargetError.exit_code
        stderr.print("[red]error:[/red]", Text(str(error)))
        if args.format == "json":
            print(error_json(str(error), code))
        return code
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return ExitCode.INTERRUPTED
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        title = f"stack '{args.stack}'" if args.stack else f"local mode ({args.state_dir})"
        render(report, make_console(), f"smoke check of the {title}")
    return report.exit_code


def render(report: SmokeReport, console: Console, title: str) -> None:
    """A table on a terminal; elsewhere one plain line per check, never wrapped or cut."""
    failed = [check for check in report.checks if not check.ok]
    summary = (
        f"{len(failed)} of {len(report.checks)} checks failed"
        if failed
        else f"all {len(report.checks)} checks passed"
    )
    if console.is_terminal:
        table = Table(title=title)
        for column in ("site", "check", "result"):
            table.add_column(column, no_wrap=True)
        table.add_column("detail", overflow="fold")
        for check in report.checks:
            result = Text("✔ pass", "green") if check.ok else Text("✘ FAIL", "red")
            table.add_row(check.site, check.check, result, Text(check.detail))
        console.print(table)
        console.print(Text(summary, "green" if not failed else "red"))
        return
    sites = max((len(check.site) for check in report.checks), default=0)
    checks = max((len(check.check) for check in report.checks), default=0)
    console.out(title, highlight=False)
    for check in report.checks:
        console.out(
            f"{'pass' if check.ok else 'FAIL'}  {check.site:<{sites}}  "
            f"{check.check:<{checks}}  {check.detail}",
            highlight=False,
        )
    console.out(summary, highlight=False)


def _targets(args: argparse.Namespace) -> AbstractContextManager[list[SiteTarget]]:
    if args.local:
        return nullcontext(local_targets(args.state_dir))
    outputs = read_outputs(args.stack, args.outputs)
    return cloud_targets(outputs, args.stack, private_address=args.private_address)


if __name__ == "__main__":
    sys.exit(main())
