"""`python -m serving.bench` (`make bench`): Triton-served text_embedding against the same
artifact run in this process, side by side in one run.

- in-process: the rendered tokenizer file + ONNX graph on onnxruntime, two ways: one
  thread per client with one text per call, and all clients' texts batched into one call
  (what an application batching for itself gets), each with the cores shared among the
  calls in flight. The better of the two is the baseline.
- served: two Tritons of its own on the rendered local repository, one with its dynamic
  batching, one with the steps reloaded without it; `concurrency` requests in flight over
  gRPC (asyncio, one text per request).

Modes are interleaved and repeated (`--rounds`), so load from anything else on the machine
falls on all of them alike; throughput is the median over rounds.

Writes build/bench/serving.json, serving.md and serving.png.
"""

import asyncio
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
import tritonclient.grpc.aio as grpcaio
from rich.table import Table
from rich.text import Text

from hybrid.cli import ArgumentParser, ExitCode, at_least_one, positive
from hybrid.console import make_console
from hybrid.manifest import ManifestError
from hybrid.paths import BUILD_DIR
from serving.errors import ServingError
from serving.inprocess import InProcessEmbedder
from serving.local import processes, triton
from serving.local.repository import LOCAL_REPOSITORY

CONCURRENCY = (1, 8, 32)
MODES = ("in-process per-call", "in-process batched", "served batching on", "served batching off")
STEPS = ("tokenizer", "minilm_encoder")
MODEL = "text_embedding"
TARGET_RATIO = 0.9
OUT_DIR = BUILD_DIR / "bench"
console = make_console()


@dataclass(frozen=True)
class Measurement:
    mode: str
    """`in-process per-call`, `in-process batched`, `served batching on`, `... off`."""
    concurrency: int
    throughput: float
    """Texts per second."""
    p50_ms: float
    p99_ms: float
    texts: int

    @property
    def in_process(self) -> bool:
        return self.mode.startswith("in-process")


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


async def run_served(
    address: str, texts: Sequence[str], clients: int, seconds: float
) -> tuple[int, float, list[float]]:
    """`clients` requests in flight at all times, one text each, over one gRPC channel."""
    client = grpcaio.InferenceServerClient(address)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        index = offset
        while time.perf_counter() < stop_at:
            tensor = grpcaio.InferInput("TEXT", [1, 1], "BYTES")
            text = texts[index % len(texts)].encode()
            tensor.set_data_from_numpy(np.array([[text]], dtype=np.object_))
            start = time.perf_counter()
            await client.infer(MODEL, [tensor])
            latencies.append(time.perf_counter() - start)
            index += clients

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(i) for i in range(clients)))
    finally:
        await client.close()
    return len(latencies), time.perf_counter() - started, latencies


def measurement(
    mode: str, concurrency: int, rounds: Sequence[tuple[int, float, list[float]]]
) -> Measurement:
    """Median throughput over the rounds; latency percentiles over every request of them."""
    ordered = sorted(latency for _, _, latencies in rounds for latency in latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Measurement(
        mode=mode,
        concurrency=concurrency,
        throughput=statistics.median(texts / elapsed for texts, elapsed, _ in rounds),
        p50_ms=statistics.median(ordered) * 1e3,
        p99_ms=p99 * 1e3,
        texts=sum(texts for texts, _, _ in rounds),
    )


def start_server(folder: Path) -> tuple[processes.Process, str]:
    """A Triton of its own on a hard-linked copy of the rendered repository, gRPC only.

    The python backend writes __pycache__ next to each model.py; the copy keeps that out of
    the rendered repository, which must match its manifest byte for byte.
    """
    repository = folder / "repository"
    shutil.rmtree(repository, ignore_errors=True)
    shutil.copytree(LOCAL_REPOSITORY, repository, copy_function=os.link)
    grpc_port, metrics_port = processes.free_ports(2)
    launch = triton.TritonLaunch(
        site="bench",
        repository=str(repository),
        models=(*STEPS, MODEL),
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


def disable_batching(address: str) -> None:
    for model in STEPS:
        reload(address, model, lambda config: config.pop("dynamic_batching", None))


def set_length_buckets(address: str, buckets: str) -> None:
    """An experiment: the tokenizer pads to these widths instead of the rendered ones."""

    def change(config: dict[str, Any]) -> None:
        config["parameters"]["length_buckets"] = {"string_value": buckets}

    reload(address, "tokenizer", change)


def benchmark(
    seconds: float,
    concurrency: Sequence[int],
    rounds: int,
    out: Path,
    length_buckets: str | None = None,
) -> list[Measurement]:
    """Every mode at every concurrency, interleaved and repeated, so that load from anything
    else on the machine falls on all of them alike."""
    texts = corpus()
    out.mkdir(parents=True, exist_ok=True)
    # Each in-process run gets its best thread budget: the cores shared among the calls
    # in flight (one batched call, or `clients` concurrent calls, one onnxruntime each).
    cores = os.cpu_count() or 1
    embedders = {
        threads: InProcessEmbedder(LOCAL_REPOSITORY, threads=threads)
        for threads in {max(1, cores // clients) for clients in (1, *concurrency)}
    }
    for embedder in embedders.values():
        embedder.embed(texts[:64])  # warm up onnxruntime's allocations
    folders = {batching: out / f"batching-{batching}" for batching in ("on", "off")}
    servers: dict[str, tuple[processes.Process, str]] = {}
    samples: dict[tuple[str, int], list[tuple[int, float, list[float]]]] = {}
    try:
        with console.status("starting two Tritons (dynamic batching on / off)"):
            for batching, folder in folders.items():
                servers[batching] = start_server(folder)
            disable_batching(servers["off"][1])
            if length_buckets:
                for _, address in servers.values():
                    set_length_buckets(address, length_buckets)
            for _, address in servers.values():
                asyncio.run(run_served(address, texts, max(concurrency), 1.0))  # warm-up

        def run(mode: str, clients: int) -> tuple[int, float, list[float]]:
            if mode == "in-process per-call":
                embed = embedders[max(1, cores // clients)].embed
                return run_threads(embed, texts, clients, 1, seconds)
            if mode == "in-process batched":
                return run_threads(embedders[cores].embed, texts, 1, clients, seconds)
            address = servers["on" if mode.endswith("on") else "off"][1]
            return asyncio.run(run_served(address, texts, clients, seconds))

        for round_ in range(1, rounds + 1):
            for clients in concurrency:
                for mode in MODES:
                    if mode == "in-process batched" and clients == 1:
                        continue  # the same as per-call
                    cell = f"round {round_}/{rounds}: {mode}, {clients} clients"
                    with console.status(cell):
                        texts_done, elapsed, _ = sample = run(mode, clients)
                    samples.setdefault((mode, clients), []).append(sample)
                    console.print(f"{cell}: {texts_done / elapsed:.1f} texts/s", highlight=False)
    finally:
        for batching, (process, _) in servers.items():
            triton.stop(process, _scratch(folders[batching]))
    return [measurement(mode, clients, runs) for (mode, clients), runs in samples.items()]


def ratios(results: Sequence[Measurement]) -> dict[int, dict[str, float]]:
    """Served throughput over the best in-process throughput, per concurrency."""
    table: dict[int, dict[str, float]] = {}
    for clients in sorted({m.concurrency for m in results}):
        best = max(m.throughput for m in results if m.concurrency == clients and m.in_process)
        table[clients] = {
            m.mode: m.throughput / best
            for m in results
            if m.concurrency == clients and m.mode.startswith("served")
        }
    return table


def markdown(results: Sequence[Measurement]) -> str:
    ratio = ratios(results)
    lines = [
        "| mode | concurrency | texts/s | p50 ms | p99 ms | served / best in-process |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in sorted(results, key=lambda m: (m.concurrency, m.mode)):
        share = ratio[m.concurrency].get(m.mode)
        shown = f"{share:.2f}x" if share is not None else ""
        lines.append(
            f"| {m.mode} | {m.concurrency} | {m.throughput:.1f} | {m.p50_ms:.1f} | "
            f"{m.p99_ms:.1f} | {shown} |"
        )
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
    figure.suptitle("text_embedding: Triton-served (gRPC) vs in-process onnxruntime")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m serving.bench",
        description="Triton-served text_embedding vs the same artifact in-process, at several "
        "concurrencies, dynamic batching on and off.",
    )
    parser.add_argument("--seconds", type=positive, default=3.0, help="measured time per point")
    parser.add_argument("--rounds", type=at_least_one, default=3, help="interleaved repetitions")
    parser.add_argument("--concurrency", type=at_least_one, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument(
        "--length-buckets",
        metavar="W,W,...",
        help="experiment: serve with these tokenizer padding widths instead of the rendered ones",
    )
    args = parser.parse_args(argv)
    try:
        results = benchmark(
            args.seconds, args.concurrency, args.rounds, args.out, args.length_buckets
        )
    except (ServingError, ManifestError) as error:
        console.print("[red]error:[/red]", Text(str(error)))
        return error.exit_code if isinstance(error, ServingError) else ExitCode.USAGE
    table_md = markdown(results)
    top = max(args.concurrency)
    ratio = ratios(results)[top]["served batching on"]
    report = {
        "results": [asdict(m) for m in results],
        "ratios": {str(k): v for k, v in ratios(results).items()},
        "target": {"concurrency": top, "ratio": TARGET_RATIO, "measured": ratio},
        "cpus": os.cpu_count(),
        "length_buckets": args.length_buckets or "as rendered",
        "seconds_per_point": args.seconds,
        "rounds": args.rounds,
        "load_average_after": os.getloadavg(),
    }
    (args.out / "serving.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "serving.md").write_text(table_md)
    plot(results, args.out / "serving.png")
    table = Table(title="text_embedding: served vs in-process")
    for column in ("mode", "clients", "texts/s", "p50 ms", "p99 ms", "vs in-process"):
        table.add_column(column, justify="left" if column == "mode" else "right", no_wrap=True)
    for line in table_md.splitlines()[2:]:
        table.add_row(*[cell.strip() for cell in line.strip("|").split("|")])
    console.print(table)
    verdict = "[green]meets[/green]" if ratio >= TARGET_RATIO else "[red]misses[/red]"
    console.print(
        f"served/in-process at concurrency {top} with batching: {ratio:.2f}x "
        f"({verdict} the {TARGET_RATIO}x target); wrote {args.out}/serving.{{json,md,png}}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
