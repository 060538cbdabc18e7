"""Command line: ``python -m modelkit {build,bench,plan-jobs,fetch-plans} --help``. Thin."""

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from hybrid.cli import ArgumentParser, ExitCode, error_json, positive
from hybrid.config import ConfigError
from hybrid.console import Progress, make_console
from hybrid.manifest import ManifestError
from hybrid.paths import LOCAL, MODEL_REPO, PLANS_DIR, REPOS_DIR, TARGETS
from hybrid.sites import SITES
from hybrid.triton import NAMESPACE, PLAN_BUILDER
from modelkit.cache import Report
from modelkit.errors import ModelkitError

console = make_console(stderr=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ModelkitError, ManifestError, ConfigError) as error:
        code = error.exit_code if isinstance(error, ModelkitError) else ExitCode.USAGE
        if getattr(args, "format", None) == "json":
            print(error_json(str(error), code))
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return code


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m modelkit",
        description="Build the Triton model repositories (text_embedding, ctr_ranker).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="export/train the models (cached) and render build/repos/<target>/",
        description=(
            f"Render one Triton repository per target into {REPOS_DIR}/<target>/ with a "
            "manifest.json. Exports and training are cached by content hash; an unchanged "
            "target is left untouched."
        ),
    )
    build.add_argument("--stack", default="dev", help="stack whose placement and GPU pools apply")
    build.add_argument(
        "--target",
        action="append",
        choices=TARGETS,
        dest="targets",
        help="render only this target (repeatable; default: all)",
    )
    build.add_argument("--out", type=Path, default=REPOS_DIR, help="where targets are rendered")
    build.add_argument("--format", choices=("table", "json"), default="table")
    build.set_defaults(run=_build)

    bench = commands.add_parser(
        "bench",
        help="benchmark the encoder on CPU: ONNX Runtime vs TorchScript vs eager torch",
        description="Items/s and p50 latency per format at batch 1/8/32 x sequence 16/128.",
    )
    bench.add_argument("--seconds", type=positive, default=1.0, help="time budget per cell")
    bench.add_argument("--plot", default="build/bench/encoder-formats.png", help="PNG chart path")
    bench.set_defaults(run=_bench)

    jobs = commands.add_parser(
        "plan-jobs",
        help="print the Kubernetes Jobs that build TensorRT plans on a site's GPU pools",
        description=(
            "One Job per GPU type of the site: fetch the encoder's ONNX from the repository "
            "prefix, build model_sm<cc>.plan with trtexec on that GPU, upload it next to the "
            "ONNX. Then `fetch-plans` brings them home and `build` (with hybrid:tensorrtPlans) "
            "serves them."
        ),
    )
    jobs.add_argument("--stack", default="dev")
    jobs.add_argument("--site", choices=SITES, required=True)
    jobs.add_argument(
        "--repo-url", required=True, help="e.g. s3://bucket/repo/<content_hash> or gs://..."
    )
    jobs.add_argument("--namespace", default=NAMESPACE)
    jobs.add_argument("--service-account", default=PLAN_BUILDER)
    jobs.add_argument(
        "--ngc-release", help="must equal the Triton image's NGC release (default: the stack's)"
    )
    jobs.set_defaults(run=_plan_jobs)

    fetch = commands.add_parser(
        "fetch-plans",
        help=f"download the TensorRT plans the clusters built into {PLANS_DIR}/<graph id>/",
        description=(
            "Download model_sm<cc>.plan for every GPU architecture of a site's pools from its "
            "served repository, if the bucket's encoder graph is the current one. Plans are "
            "checked (not empty, complete, checksum) and renamed into place only when all "
            "are whole. Then set hybrid:tensorrtPlans: true and run `make models`. Exit code "
            "1 while some architecture has no plan yet."
        ),
    )
    fetch.add_argument(
        "urls",
        nargs="*",
        metavar="URL",
        help="s3://<bucket>/repo/<hash> (public site) or gs://<bucket>/repo/<hash> (private)",
    )
    fetch.add_argument(
        "--stack-output",
        type=argparse.FileType("r"),
        metavar="FILE",
        help="`pulumi stack output modelRepositories --json` saved to FILE ('-': stdin)",
    )
    fetch.add_argument("--stack", default="dev", help="stack whose GPU pools need plans")
    fetch.add_argument("--plans-dir", type=Path, default=PLANS_DIR)
    fetch.add_argument("--format", choices=("table", "json"), default="table")
    fetch.set_defaults(run=_fetch_plans)
    return parser


@contextmanager
def _progress(first: str, *, in_bytes: bool = False) -> Iterator[Report]:
    """A rich progress bar on stderr, driven through the library's Report callback."""
    amount = (
        (DownloadColumn(), TransferSpeedColumn())
        if in_bytes
        else (TextColumn("{task.completed}/{task.total}"),)
    )
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        *amount,
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(first, total=None)

        def report(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        yield report


def _build(args: argparse.Namespace) -> int:
    from modelkit.build import build

    with _progress("hash inputs") as report:
        result = build(args.stack, targets=args.targets or TARGETS, out=args.out, report=report)

    facts = {name: artifact.facts for name, artifact in result.artifacts.items()}
    if args.format == "json":
        body = {
            "stack": result.stack,
            "seconds": round(result.seconds, 2),
            "targets": {
                t.target: {
                    "path": str(t.path),
                    "content_hash": t.manifest.content_hash,
                    "models": list(t.manifest.models),
                    "changed": t.changed,
                }
                for t in result.targets
            },
            "artifacts": facts,
        }
        print(json.dumps(body, indent=2))
        return 0
    table = Table(
        title=f"Triton repositories for stack '{result.stack}'",
        caption=f"{LOCAL}: each local site serves its own models of it, under their own hash "
        "(the prefix in `make status-local`)"
        if any(t.target == LOCAL for t in result.targets)
        else None,
    )
    for column in ("target", "models", "files", "MiB", "content hash", "status"):
        table.add_column(column)
    for t in result.targets:
        size = sum(entry.size for entry in t.manifest.files.values()) / 2**20
        table.add_row(
            t.target,
            ", ".join(t.manifest.models),
            str(len(t.manifest.files)),
            f"{size:.1f}",
            t.manifest.content_hash[:16],
            "rendered" if t.changed else "unchanged",
        )
    out = make_console()
    out.print(table)
    for name, artifact in result.artifacts.items():
        origin = f"built in {artifact.facts['seconds']} s" if artifact.built else "cached"
        out.print(f"{name}: {_summary(artifact.facts)} ({origin})", highlight=False)
    out.print(f"done in {result.seconds:.2f} s", highlight=False)
    return 0


def _summary(facts: dict) -> str:
    if "training" in facts:
        training = facts["training"]
        return f"held-out AUC {training['auc']:.4f} (target >= 0.75), seed {training['seed']}"
    if "quality" in facts:
        measured = facts["quality"]
        return (
            f"quality gate vs FP32 on {measured['texts']} texts: minimum cosine "
            f"{measured['min_cosine']:.5f}, mean {measured['mean_cosine']:.5f}, top-10 "
            f"agreement {measured['top10_agreement']:.4f} (passed)"
        )
    cosine = facts["min_cosine_vs_eager"]
    return "min cosine vs eager torch: " + ", ".join(f"{k} {v:.7f}" for k, v in cosine.items())


def _bench(args: argparse.Namespace) -> int:
    from modelkit.bench import run_benchmark

    run_benchmark(seconds_per_cell=args.seconds, plot=args.plot, console=make_console())
    return 0


def _plan_jobs(args: argparse.Namespace) -> int:
    import yaml

    from hybrid.config import load_stack_config
    from modelkit.render import encoder_profile
    from modelkit.tensorrt_job import plan_build_jobs

    config = load_stack_config(args.stack)
    jobs = plan_build_jobs(
        config,
        args.site,
        repo_url=args.repo_url,
        namespace=args.namespace,
        service_account=args.service_account,
        profile=encoder_profile(MODEL_REPO),
        ngc_release=args.ngc_release,
    )
    print(yaml.safe_dump_all(jobs, sort_keys=False), end="")
    return 0


def _fetch_plans(args: argparse.Namespace) -> int:
    from hybrid.config import load_stack_config
    from modelkit.fetch_plans import current_graph, fetch_plans, repository_urls

    urls = list(args.urls)
    if args.stack_output is not None:
        urls += repository_urls(args.stack_output.read())
    if not urls:
        raise ModelkitError(
            "name the served repositories: URL arguments, or `pulumi stack output "
            "modelRepositories --json | python -m modelkit fetch-plans --stack-output -`"
        )
    config = load_stack_config(args.stack)
    with _progress("encoder graph") as report:
        graph = current_graph(report=report)
    with _progress("list plans", in_bytes=True) as report:
        results = [
            fetch_plans(url, config, graph, plans_dir=args.plans_dir, report=report) for url in urls
        ]
    missing = [status for result in results for status in result.missing]
    if args.format == "json":
        body = {
            "stack": args.stack,
            "graph": graph.sha256[:16],
            "sites": {
                r.site: {
                    "url": r.url,
                    "folder": str(r.folder),
                    "plans": {
                        s.capability: {
                            "gpus": list(s.gpus),
                            "plan": s.plan.name,
                            "fetched_bytes": s.fetched_bytes,
                            "covered": s.covered,
                        }
                        for s in r.plans
                    },
                }
                for r in results
            },
        }
        print(json.dumps(body, indent=2))
        return 1 if missing else 0
    table = Table(title=f"TensorRT plans for encoder graph {graph.sha256[:16]}")
    for column in ("site", "compute capability", "GPUs", "plan", "status"):
        table.add_column(column)
    for result in results:
        for status in result.plans:
            if status.fetched_bytes is not None:
                state = f"fetched, {status.fetched_bytes / 2**20:.1f} MiB"
            elif status.covered:
                state = "not in the bucket; kept from an earlier fetch"
            else:
                state = "[yellow]not built yet[/]"
            gpus = ", ".join(status.gpus)
            table.add_row(result.site, status.capability, gpus, status.plan.name, state)
    out = make_console()
    out.print(table)
    if missing:
        names = ", ".join(
            f"sm{s.capability.replace('.', '')} ({'/'.join(s.gpus)})" for s in missing
        )
        out.print(
            f"not covered yet: {names}. Their build Jobs have not uploaded a plan "
            "(`kubectl -n triton get jobs`); fetch again when they have.",
            highlight=False,
        )
        return 1
    switch = (
        ""
        if config.serving.tensorrt
        else (f"set `hybrid:tensorrtPlans: true` in Pulumi.{args.stack}.yaml, ")
    )
    out.print(
        f"every GPU architecture is covered: {switch}run `make models STACK={args.stack}`, "
        "then `pulumi up` rolls Triton to the new prefix.",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
