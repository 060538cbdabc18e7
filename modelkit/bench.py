"""``make bench-models``: the encoder on CPU in ONNX Runtime, TorchScript and eager torch,
and the gated INT8 graph on ONNX Runtime.

All of them run the same inputs one after another in each cell (batch x sequence length),
so their ratios are measured side by side. The table also says which format the local
target serves, whether this run's numbers agree with that choice, and what INT8 gains.
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

from hybrid.paths import CACHE_DIR
from modelkit.artifacts import (
    ENCODER_INT8_ONNX,
    ENCODER_ONNX,
    ENCODER_TORCHSCRIPT,
    MINILM,
    MINILM_INT8,
    RECIPES,
)
from modelkit.cache import ensure
from modelkit.render import LOCAL_ENCODER_RUNTIME

BATCHES = (1, 8, 32)
LENGTHS = (16, 128)
INT8_RUNTIME = "onnxruntime int8"
RUNTIMES = ("onnxruntime", INT8_RUNTIME, "torchscript", "eager")
FORMATS = tuple(runtime for runtime in RUNTIMES if runtime != INT8_RUNTIME)
"""The FP32 formats the local target chooses among (INT8 is a precision, set per stack)."""
WARMUP_CALLS = 4
"""TorchScript's profiling executor specializes on the first calls of each new shape."""
ROUNDS = 3


@dataclass(frozen=True)
class Cell:
    runtime: str
    batch: int
    length: int
    items_per_second: float
    p50_ms: float
    runs: int


def measure(
    runs: dict[str, Callable[[], object]], batch: int, length: int, seconds: float
) -> list[Cell]:
    """Warm every runtime up, then alternate them in short rounds, so that a change in
    machine load during the cell affects all of them alike."""
    for run in runs.values():
        for _ in range(WARMUP_CALLS):
            run()
    latencies: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            deadline = time.perf_counter() + seconds / ROUNDS
            calls = 0
            while calls < 2 or time.perf_counter() < deadline:
                started = time.perf_counter()
                run()
                latencies[name].append(time.perf_counter() - started)
                calls += 1
    return [
        Cell(name, batch, length, batch * len(s) / sum(s), statistics.median(s) * 1e3, len(s))
        for name, s in latencies.items()
    ]


def run_benchmark(seconds_per_cell: float, plot: str | None, console: Console) -> list[Cell]:
    import onnxruntime as ort
    import torch

    from modelkit import minilm

    artifact = ensure(RECIPES[MINILM], CACHE_DIR, lambda what, done, total: None)
    int8 = ensure(
        RECIPES[MINILM_INT8],
        CACHE_DIR,
        lambda what, done, total: console.print(f"{what} ({done}/{total})", highlight=False),
        {MINILM: artifact},
    )
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session, int8_session = (
        ort.InferenceSession(str(path), options, ["CPUExecutionProvider"])
        for path in (artifact.path(ENCODER_ONNX), int8.path(ENCODER_INT8_ONNX))
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
                    INT8_RUNTIME: partial(int8_session.run, None, feed),
                    "torchscript": partial(_no_grad, traced, ids, mask),
                    "eager": partial(_no_grad, eager, ids, mask),
                }
                status.update(f"batch {batch} x {length} tokens")
                measured = measure(runs, batch, length, seconds_per_cell * len(runs))
                console.print(
                    f"batch {batch} x {length} tokens: "
                    + ", ".join(f"{c.runtime} {c.items_per_second:.1f} items/s" for c in measured),
                    highlight=False,
                )
                cells += measured
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
    by_key = {(c.runtime, c.batch, c.length): c for c in cells}
    table = Table(title=f"MiniLM encoder on CPU, {threads} threads")
    for column in ("batch x tokens", "runtime", "items/s", "p50 ms", f"vs {LOCAL_ENCODER_RUNTIME}"):
        table.add_column(
            column, justify="left" if column in ("batch x tokens", "runtime") else "right"
        )
    for batch in BATCHES:
        for length in LENGTHS:
            base = by_key[(LOCAL_ENCODER_RUNTIME, batch, length)].items_per_second
            for index, runtime in enumerate(RUNTIMES):
                cell = by_key[(runtime, batch, length)]
                table.add_row(
                    f"{batch} x {length}" if index == 0 else "",
                    runtime,
                    f"{cell.items_per_second:.1f}",
                    f"{cell.p50_ms:.1f}",
                    f"{cell.items_per_second / base:.2f}x",
                    end_section=index == len(RUNTIMES) - 1,
                )
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
    int8_speedup = 1 / speedups.pop(INT8_RUNTIME)
    versus = ", ".join(f"{ratio:.2f}x {runtime}" for runtime, ratio in speedups.items())
    cells_note = f"throughput, geometric mean over {len(BATCHES) * len(LENGTHS)} cells"
    console.print(
        f"The gated INT8 graph (hybrid:encoderPrecision local: int8) has {int8_speedup:.2f}x "
        f"the throughput of FP32 {LOCAL_ENCODER_RUNTIME} ({cells_note}).",
        highlight=False,
    )
    if all(ratio >= 1.0 for ratio in speedups.values()):
        console.print(
            f"The local target serves the encoder with {LOCAL_ENCODER_RUNTIME} (python backend) "
            f"because it is the fastest format on this CPU: {versus} ({cells_note}).",
            highlight=False,
        )
    else:
        console.print(
            f"[bold yellow]warning:[/] the local target serves the encoder with "
            f"{LOCAL_ENCODER_RUNTIME}, but this run measured {versus} ({cells_note}); "
            "re-run on an idle machine, and revisit LOCAL_ENCODER_RUNTIME in modelkit/render.py "
            "if it holds.",
            highlight=False,
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
