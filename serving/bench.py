"""`python -m serving.bench` (`make bench`): Triton-served text_embedding, FP32 and INT8,
against the same artifacts run in this process, side by side in one run.

- The local target is rendered twice (``hybrid:encoderPrecision`` local fp32 and int8)
  into build/bench/repos/<precision>/.
- in-process, per precision: the rendered tokenizer file + ONNX graph on onnxruntime, three
  ways: one thread per client with one text per call; all clients' texts in one call padded
  to the longest (what an application batching naively gets); and the same call with each
  text padded to its own length bucket, one onnxruntime call per width (the served model's
  batching). Each gets the cores shared among the calls in flight. The best FP32 of them is
  the throughput baseline.
- served, per precision: a Triton of its own on that repository, loaded by Triton's own
  perf_analyzer (serving/perf_analyzer.py): `concurrency` requests of one text in flight.
  Its report also splits a request's time (client, network, queue, model).

Modes are interleaved and repeated (`--rounds`), so load from anything else on the machine
falls on all of them alike; throughput is the median over rounds (min and max are kept).
At one client the report gives each precision's latency gap: served p50 minus in-process
per-call p50, and where the served time goes.

Writes build/bench/serving.json, serving.md and serving.png.
"""

import json
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from rich.table import Table
from rich.text import Text

from hybrid.cli import ArgumentParser, ExitCode, at_least_one, positive
from hybrid.console import make_console
from hybrid.manifest import ManifestError
from hybrid.paths import BUILD_DIR, LOCAL
from hybrid.precision import FP32, INT8
from modelkit.build import build
from modelkit.errors import ModelkitError
from serving import perf_analyzer
from serving.errors import ServingError
from serving.inprocess import InProcessEmbedder
from serving.local import processes, triton

CONCURRENCY = (1, 8, 32)
PRECISIONS = (FP32, INT8)
BATCHED = ("in-process batched", "in-process bucketed")
"""All clients' texts in one call: padded to the longest, or each to its length bucket."""
KINDS = ("in-process per-call", *BATCHED, "served")
MODEL = "text_embedding"
TARGET_RATIO = 0.9
"""Served FP32 over the best in-process FP32 at the top concurrency."""
TARGET_INT8_SPEEDUP = 2.0
"""Served INT8 over the best in-process FP32 at the top concurrency."""
TARGET_GAP_MS = 2.0
"""Served p50 minus in-process p50 at one client, per precision."""
OUT_DIR = BUILD_DIR / "bench"
console = make_console()


@dataclass(frozen=True)
class Measurement:
    kind: str
    """One of KINDS."""
    precision: str
    concurrency: int
    throughput: float
    """Texts per second (median over the rounds)."""
    p50_ms: float
    p99_ms: float
    texts: int
    throughput_min: float
    throughput_max: float
    breakdown_us: dict[str, int] | None = None
    """Served only: perf_analyzer's split of a request's time (median over the rounds)."""

    @property
    def mode(self) -> str:
        return f"{self.kind} {self.precision}"

    @property
    def in_process(self) -> bool:
        return self.kind.startswith("in-process")


def corpus(size: int = 512, seed: int = 7) -> list[str]:
    """Product-search style texts: mostly short queries, some sentence-long descriptions."""
    rng = np.random.default_rng(seed)
    adjectives = (
        "cheap", "lightweight", "waterproof", "vintage", "wireless", "ergonomic", "organic",
        "compact",
    )  # fmt: skip
    things = (
        "running shoes", "hiking boots", "noise cancelling headphones", "office chair",
        "coffee grinder", "yoga mat", "mechanical keyboard", "rain jacket", "water bottle",
        "desk lamp", "backpack",
    )  # fmt: skip
    audiences = (
        "for women", "for kids", "for travel", "for small apartments", "under 50 dollars",
        "on sale",
    )  # fmt: skip
    detail = (
        "with free shipping and a two year warranty, rated highly by customers who "
        "compared it with similar products in the same price range"
    )
    texts = []
    for _ in range(size):
        words = [*rng.choice(adjectives, rng.integers(1, 3), replace=False)]
        words.append(rng.choice(things))
        if rng.random() < 0.6:
            words.append(rng.choice(audiences))
        if rng.random() < 0.15:
            words.append(detail)
        texts.append(" ".join(words))
    return texts


def run_threads(
    call: Callable[[list[str]], Any], texts: Sequence[str], clients: int, batch: int, seconds: float
) -> tuple[int, float, list[float]]:
    """`clients` threads calling `call` with `batch` texts each until time is up."""
    latencies: list[float] = []
    done = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        index = offset
        while time.perf_counter() < stop_at:
            chunk = [texts[(index + i) % len(texts)] for i in range(batch)]
            start = time.perf_counter()
            call(chunk)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                done[0] += batch
            index += batch * clients

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0], time.perf_counter() - started, latencies


def measurement(
    kind: str,
    precision: str,
    concurrency: int,
    rounds: Sequence[tuple[int, float, list[float]]],
) -> Measurement:
    """Median throughput over the rounds; latency percentiles over every request of them."""
    ordered = sorted(latency for _, _, latencies in rounds for latency in latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    speeds = [texts / elapsed for texts, elapsed, _ in rounds]
    return Measurement(
        kind=kind,
        precision=precision,
        concurrency=concurrency,
        throughput=statistics.median(speeds),
        p50_ms=statistics.median(ordered) * 1e3,
        p99_ms=p99 * 1e3,
        texts=sum(texts for texts, _, _ in rounds),
        throughput_min=min(speeds),
        throughput_max=max(speeds),
    )


def served_measurement(
    precision: str, concurrency: int, rounds: Sequence[perf_analyzer.Report]
) -> Measurement:
    """Median throughput and percentiles over perf_analyzer's runs (it keeps no latencies)."""
    speeds = [report.throughput for report in rounds]
    return Measurement(
        kind="served",
        precision=precision,
        concurrency=concurrency,
        throughput=statistics.median(speeds),
        p50_ms=statistics.median(report.p50_ms for report in rounds),
        p99_ms=statistics.median(report.p99_ms for report in rounds),
        texts=sum(report.requests for report in rounds),
        throughput_min=min(speeds),
        throughput_max=max(speeds),
        breakdown_us={
            column: round(statistics.median(report.breakdown_us[column] for report in rounds))
            for column in perf_analyzer.BREAKDOWN
        },
    )


def render_repositories(stack: str, out: Path) -> dict[str, Path]:
    """The stack's local target rendered once per precision; a precision whose variant the
    quality gate refuses is left out (and said so), the others are still measured."""
    repositories: dict[str, Path] = {}
    for precision in PRECISIONS:
        try:
            result = build(
                stack, targets=[LOCAL], out=out / "repos" / precision, precision={LOCAL: precision}
            )
        except ModelkitError as refused:
            console.print(f"[yellow]not benchmarking {precision}:[/] {refused}", highlight=False)
            continue
        repositories[precision] = result.targets[0].path
    return repositories


def start_server(source: Path, folder: Path) -> tuple[processes.Process, str]:
    """A Triton of its own on a hard-linked copy of a rendered repository, gRPC only.

    The python backend writes __pycache__ next to each model.py; the copy keeps that out of
    the rendered repository, which must match its manifest byte for byte.
    """
    repository = folder / "repository"
    shutil.rmtree(repository, ignore_errors=True)
    shutil.copytree(source, repository, copy_function=os.link)
    grpc_port, metrics_port = processes.free_ports(2)
    launch = triton.TritonLaunch(
        site="bench",
        repository=str(repository),
        models=(MODEL,),
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        http_port=None,
        tls=None,
        env={},
        scratch=_scratch(folder),
    )
    backends = triton.prepare_backends(folder / "backends")
    triton.reclaim(launch.scratch)
    process = processes.start(
        "triton-bench",
        triton.command(launch, backends),
        folder / "triton-bench.log",
        triton.environment(launch),
    )
    address = f"127.0.0.1:{grpc_port}"
    client = grpcclient.InferenceServerClient(address)
    try:
        processes.wait_until(
            lambda: bool(client.is_model_ready(MODEL)), [process], "Triton (bench)", 240.0
        )
    except BaseException:
        triton.stop(process, launch.scratch)
        raise
    return process, address


def _scratch(folder: Path) -> Path:
    """The scratch folder of the server `start_server` runs in `folder`."""
    return folder / "scratch"


def reload(address: str, model: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Reload a model with its served config changed (EXPLICIT model control allows it)."""
    client = grpcclient.InferenceServerClient(address)
    config = client.get_model_config(model, as_json=True)["config"]
    change(config)
    client.load_model(model, config=json.dumps(config))


def set_length_buckets(address: str, buckets: str) -> None:
    """An experiment: text_embedding pads to these widths instead of the rendered ones."""

    def change(config: dict[str, Any]) -> None:
        config["parameters"]["length_buckets"] = {"string_value": buckets}

    reload(address, MODEL, change)


def benchmark(
    stack: str,
    seconds: float,
    concurrency: Sequence[int],
    rounds: int,
    out: Path,
    length_buckets: str | None = None,
) -> list[Measurement]:
    """Every mode at every concurrency, interleaved and repeated, so that load from anything
    else on the machine falls on all of them alike."""
    perf_analyzer.check()
    texts = corpus()
    out.mkdir(parents=True, exist_ok=True)
    requests = perf_analyzer.write_input_data(
        [{"TEXT": [text]} for text in texts], out / "texts.json"
    )
    with console.status("rendering the local target in FP32 and INT8"):
        repositories = render_repositories(stack, out)
    # Each in-process run gets its best thread budget: the cores shared among the calls
    # in flight (one batched call, or `clients` concurrent calls, one onnxruntime each).
    cores = os.cpu_count() or 1
    budgets = {max(1, cores // clients) for clients in (1, *concurrency)}
    embedders = {
        (precision, threads): InProcessEmbedder(repository, threads=threads)
        for precision, repository in repositories.items()
        for threads in budgets
    }
    for embedder in embedders.values():
        embedder.embed(texts[:64])  # warm up onnxruntime's allocations
    folders = {precision: out / f"served-{precision}" for precision in repositories}
    servers: dict[str, tuple[processes.Process, str]] = {}
    samples: dict[tuple[str, str, int], list[tuple[int, float, list[float]]]] = {}
    served: dict[tuple[str, int], list[perf_analyzer.Report]] = {}
    try:
        with console.status("starting a Triton per precision"):
            for precision, repository in repositories.items():
                servers[precision] = start_server(repository, folders[precision])
            if length_buckets:
                for _, address in servers.values():
                    set_length_buckets(address, length_buckets)
            for precision, (_, address) in servers.items():  # warm-up
                perf_analyzer.run(
                    address, MODEL, requests, max(concurrency), 1.0, folders[precision]
                )

        def run(kind: str, precision: str, clients: int) -> float:
            """One point of one round, kept in `samples` or `served`; its texts/s."""
            if kind == "served":
                _, address = servers[precision]
                report = perf_analyzer.run(
                    address, MODEL, requests, clients, seconds, folders[precision]
                )
                served.setdefault((precision, clients), []).append(report)
                return report.throughput
            if kind == "in-process per-call":
                embed = embedders[precision, max(1, cores // clients)].embed
                sample = run_threads(embed, texts, clients, 1, seconds)
            else:
                embedder = embedders[precision, cores]
                batch = embedder.embed if kind == "in-process batched" else embedder.embed_by_width
                sample = run_threads(batch, texts, 1, clients, seconds)
            samples.setdefault((kind, precision, clients), []).append(sample)
            return sample[0] / sample[1]

        for round_ in range(1, rounds + 1):
            for clients in concurrency:
                for precision in repositories:
                    for kind in KINDS:
                        if kind in BATCHED and clients == 1:
                            continue  # the same as per-call
                        what = f"round {round_}/{rounds}: {kind} {precision}, {clients} clients"
                        with console.status(what):
                            speed = run(kind, precision, clients)
                        console.print(f"{what}: {speed:.1f} texts/s", highlight=False)
    finally:
        for precision, (process, _) in servers.items():
            triton.stop(process, _scratch(folders[precision]))
    return [measurement(*key, runs) for key, runs in samples.items()] + [
        served_measurement(*key, reports) for key, reports in served.items()
    ]


def ratios(results: Sequence[Measurement]) -> dict[int, dict[str, float]]:
    """Served throughput over the best in-process FP32 throughput, per concurrency."""
    table: dict[int, dict[str, float]] = {}
    for clients in sorted({m.concurrency for m in results}):
        best = max(
            m.throughput
            for m in results
            if m.concurrency == clients and m.in_process and m.precision == FP32
        )
        table[clients] = {
            m.mode: m.throughput / best
            for m in results
            if m.concurrency == clients and not m.in_process
        }
    return table


def latency_gaps(results: Sequence[Measurement], clients: int = 1) -> dict[str, float]:
    """Per precision: served p50 minus in-process per-call p50 (ms) at ``clients``."""
    p50 = {(m.kind, m.precision): m.p50_ms for m in results if m.concurrency == clients}
    return {
        precision: p50["served", precision] - p50["in-process per-call", precision]
        for precision in PRECISIONS
        if ("served", precision) in p50 and ("in-process per-call", precision) in p50
    }


def goals(results: Sequence[Measurement]) -> dict[str, dict[str, Any]]:
    """The issue's goals, each with its target and what this run measured."""
    top = max(m.concurrency for m in results)
    ratio = ratios(results)[top]
    served_p50 = {m.precision: m.p50_ms for m in results if m.concurrency == 1 and not m.in_process}
    gaps = latency_gaps(results)
    found = {
        f"served int8 / best in-process fp32 at {top}": (
            ratio.get(f"served {INT8}"),
            TARGET_INT8_SPEEDUP,
        ),
        f"served fp32 / best in-process fp32 at {top}": (ratio.get(f"served {FP32}"), TARGET_RATIO),
    }
    body: dict[str, dict[str, Any]] = {
        name: {
            "measured": value,
            "target": f">= {target}",
            "met": value is not None and value >= target,
        }
        for name, (value, target) in found.items()
    }
    if {FP32, INT8} <= set(served_p50):
        body["served p50 at 1 client: int8 below fp32 (ms)"] = {
            "measured": [served_p50[INT8], served_p50[FP32]],
            "target": "int8 < fp32",
            "met": served_p50[INT8] < served_p50[FP32],
        }
    for precision, gap in gaps.items():
        body[f"served - in-process p50 at 1 client, {precision} (ms)"] = {
            "measured": gap,
            "target": f"<= {TARGET_GAP_MS}",
            "met": gap <= TARGET_GAP_MS,
        }
    return body


def markdown(results: Sequence[Measurement]) -> str:
    ratio = ratios(results)
    lines = [
        "| mode | clients | texts/s (min-max) | p50 ms | p99 ms | served / best in-process fp32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in sorted(results, key=lambda m: (m.concurrency, m.mode)):
        share = ratio[m.concurrency].get(m.mode)
        shown = f"{share:.2f}x" if share is not None else ""
        lines.append(
            f"| {m.mode} | {m.concurrency} | {m.throughput:.1f} ({m.throughput_min:.0f}-"
            f"{m.throughput_max:.0f}) | {m.p50_ms:.1f} | {m.p99_ms:.1f} | {shown} |"
        )
    lines += ["", "| goal | measured | target | met |", "| --- | ---: | ---: | --- |"]
    for name, goal in goals(results).items():
        value = goal["measured"]
        shown = (
            " vs ".join(f"{v:.2f}" for v in value)
            if isinstance(value, list)
            else ("-" if value is None else f"{value:.2f}")
        )
        lines.append(f"| {name} | {shown} | {goal['target']} | {'yes' if goal['met'] else 'no'} |")
    breakdowns = [m for m in results if m.concurrency == 1 and m.breakdown_us]
    if breakdowns:
        columns = perf_analyzer.BREAKDOWN
        lines += [
            "",
            f"| served at 1 client (mean µs) | {' | '.join(columns)} |",
            f"| --- |{' ---: |' * len(columns)}",
        ]
        for m in breakdowns:
            split = m.breakdown_us or {}
            cells = " | ".join(str(split[column]) for column in columns)
            lines.append(f"| {m.mode} | {cells} |")
    return "\n".join(lines) + "\n"


def plot(results: Sequence[Measurement], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode in dict.fromkeys(m.mode for m in results):
        points = sorted((m for m in results if m.mode == mode), key=lambda m: m.concurrency)
        xs = [m.concurrency for m in points]
        style = "-o" if mode.startswith("served") else "--s"
        left.plot(xs, [m.throughput for m in points], style, label=mode)
        right.plot(xs, [m.p99_ms for m in points], style, label=mode)
    for axis, label in ((left, "throughput (texts/s)"), (right, "p99 latency (ms)")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(sorted({m.concurrency for m in results}))
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
    right.set_yscale("log")
    left.legend(fontsize=8)
    figure.suptitle("text_embedding FP32 / INT8: Triton-served (gRPC) vs in-process onnxruntime")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m serving.bench",
        description="Triton-served text_embedding in FP32 and INT8 vs the same artifacts "
        "in-process, at several concurrencies.",
    )
    parser.add_argument("--stack", default="dev", help="stack whose local target is rendered")
    parser.add_argument("--seconds", type=positive, default=3.0, help="measured time per point")
    parser.add_argument("--rounds", type=at_least_one, default=3, help="interleaved repetitions")
    parser.add_argument("--concurrency", type=at_least_one, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument(
        "--length-buckets",
        metavar="W,W,...",
        help="experiment: serve with these padding widths instead of the rendered ones",
    )
    args = parser.parse_args(argv)
    try:
        results = benchmark(
            args.stack, args.seconds, args.concurrency, args.rounds, args.out, args.length_buckets
        )
    except (ServingError, ManifestError) as error:
        console.print("[red]error:[/red]", Text(str(error)))
        return error.exit_code if isinstance(error, ServingError) else ExitCode.USAGE
    table_md = markdown(results)
    report = {
        "results": [{**asdict(m), "mode": m.mode} for m in results],
        "ratios": {str(k): v for k, v in ratios(results).items()},
        "latency_gap_ms_at_1": latency_gaps(results),
        "goals": goals(results),
        "cpus": os.cpu_count(),
        "length_buckets": args.length_buckets or "as rendered",
        "seconds_per_point": args.seconds,
        "rounds": args.rounds,
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_after": os.getloadavg(),
    }
    (args.out / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "serving.md").write_text(table_md)
    plot(results, args.out / "serving.png")
    table = Table(title="text_embedding: served vs in-process, FP32 and INT8")
    for column in ("mode", "clients", "texts/s", "p50 ms", "p99 ms", "vs in-process fp32"):
        table.add_column(column, justify="left" if column == "mode" else "right", no_wrap=True)
    rows = table_md.split("\n\n")[0].splitlines()[2:]
    for line in rows:
        table.add_row(*[cell.strip() for cell in line.strip("|").split("|")])
    console.print(table)
    for name, goal in report["goals"].items():
        verdict = "[green]met[/green]" if goal["met"] else "[red]missed[/red]"
        console.print(f"{name}: {goal['measured']} (target {goal['target']}): {verdict}")
    console.print(f"wrote {args.out}/serving.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
