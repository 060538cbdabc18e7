"""``make bench-models``: the encoder on CPU in ONNX Runtime, TorchScript and eager torch.

The three formats run the same inputs one after another in each cell (batch x sequence
length), so their ratios are measured side by side. The table also says which format the
local target serves and whether this run's numbers agree with that choice.
"""

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

from modelkit.artifacts import ENCODER_ONNX, ENCODER_TORCHSCRIPT, MINILM, RECIPES
from modelkit.cache import ensure
from modelkit.layout import CACHE_DIR
from modelkit.render import LOCAL_ENCODER_RUNTIME

BATCHES = (1, 8, 32)
LENGTHS = (16, 128)
RUNTIMES = ("onnxruntime", "torchscript", "eager")


@dataclass(frozen=True)
class Cell:
    runtime: str
    batch: int
    length: int
    items_per_second: float
    p50_ms: float
    runs: int


def measure(
    run: Callable[[], object], runtime: str, batch: int, length: int, seconds: float
) -> Cell:
    """Two warmup calls, then calls until ``seconds`` have passed (at least 5)."""
    for _ in range(2):
        run()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(latencies) < 5 or time.perf_counter() < deadline:
        started = time.perf_counter()
        run()
        latencies.append(time.perf_counter() - started)
    throughput = batch * len(latencies) / sum(latencies)
    return Cell(
        runtime, batch, length, throughput, statistics.median(latencies) * 1e3, len(latencies)
    )


def run_benchmark(seconds_per_cell: float, plot: str | None, console: Console) -> list[Cell]:
    import onnxruntime as ort
    import torch

    from modelkit import minilm

    artifact = ensure(RECIPES[MINILM], CACHE_DIR, lambda what, done, total: None)
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(artifact.path(ENCODER_ONNX)), options, ["CPUExecutionProvider"]
    )
    traced = torch.jit.load(str(artifact.path(ENCODER_TORCHSCRIPT))).eval()
    eager = minilm.load_encoder()

    cells: list[Cell] = []
    with console.status("benchmarking") as status:
        for batch in BATCHES:
            for length in LENGTHS:
                ids, mask = minilm.example_inputs(batch, length)
                feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
                runs: dict[str, Callable[[], object]] = {
                    "onnxruntime": partial(session.run, None, feed),
                    "torchscript": partial(_no_grad, traced, ids, mask),
                    "eager": partial(_no_grad, eager, ids, mask),
                }
                for runtime, run in runs.items():
                    status.update(f"{runtime}: batch {batch} x {length} tokens")
                    cells.append(measure(run, runtime, batch, length, seconds_per_cell))
    _print(cells, threads, console)
    if plot:
        _plot(cells, Path(plot))
        console.print(f"chart: {plot}")
    return cells


def _no_grad(model: Callable[..., object], *inputs: object) -> object:
    import torch

    with torch.inference_mode():
        return model(*inputs)


def _print(cells: list[Cell], threads: int, console: Console) -> None:
    table = Table(title=f"MiniLM encoder on CPU ({threads} threads): items/s and p50 latency")
    table.add_column("batch x tokens")
    for runtime in RUNTIMES:
        table.add_column(f"{runtime} items/s", justify="right")
        table.add_column(f"{runtime} p50 ms", justify="right")
    by_key = {(c.runtime, c.batch, c.length): c for c in cells}
    for batch in BATCHES:
        for length in LENGTHS:
            row = [f"{batch} x {length}"]
            for runtime in RUNTIMES:
                cell = by_key[(runtime, batch, length)]
                row += [f"{cell.items_per_second:.1f}", f"{cell.p50_ms:.1f}"]
            table.add_row(*row)
    console.print(table)
    speedups = {
        runtime: _geometric_mean(
            [
                by_key[(LOCAL_ENCODER_RUNTIME, b, n)].items_per_second
                / by_key[(runtime, b, n)].items_per_second
                for b in BATCHES
                for n in LENGTHS
            ]
        )
        for runtime in RUNTIMES
        if runtime != LOCAL_ENCODER_RUNTIME
    }
    versus = ", ".join(f"{ratio:.2f}x {runtime}" for runtime, ratio in speedups.items())
    console.print(
        f"The local target serves the encoder with {LOCAL_ENCODER_RUNTIME} (python backend): "
        f"its throughput is {versus} (geometric mean over {len(BATCHES) * len(LENGTHS)} cells).",
        highlight=False,
    )
    if any(ratio < 1.0 for ratio in speedups.values()):
        console.print(
            "[bold yellow]warning:[/] this run measured another format as faster; "
            "revisit LOCAL_ENCODER_RUNTIME in modelkit/render.py."
        )


def _geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _plot(cells: list[Cell], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{b}x{n}" for b in BATCHES for n in LENGTHS]
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(RUNTIMES)
    for index, runtime in enumerate(RUNTIMES):
        values = [
            next(
                c.items_per_second
                for c in cells
                if (c.runtime, c.batch, c.length) == (runtime, b, n)
            )
            for b in BATCHES
            for n in LENGTHS
        ]
        axis.bar([i + index * width for i in range(len(labels))], values, width, label=runtime)
    axis.set_xticks([i + width for i in range(len(labels))], labels)
    axis.set_xlabel("batch x tokens")
    axis.set_ylabel("items / s (log)")
    axis.set_yscale("log")
    axis.set_title("MiniLM encoder on CPU")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
