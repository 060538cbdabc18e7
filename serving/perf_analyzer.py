"""Triton's own load generator, `perf_analyzer` (shipped in the tritonclient wheel), run at
one concurrency and read back from its CSV report.

It is how the serving benchmark loads a server: a C++ client spends far less of the
machine's two cores per request than Python's gRPC client does (at 32 clients the Python
client held served FP32 to 353 texts/s, perf_analyzer measured 613 on the same server),
so what is measured is the server. Its CSV also splits each request's time between the
client, the network, the queue and the model, which is where a latency gap is explained.

The binary links two libraries the wheel does not bring: Debian's libb64 (`make
setup-bench` installs it) and CUDA's runtime (the nvidia-cuda-runtime-cu12 wheel, a
dependency of this project), which it loads even when it only talks gRPC.
"""

import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serving.errors import ServingError

BINARY = Path(sys.executable).parent / "perf_analyzer"
DEBIAN_PACKAGE = "libb64-0d"
WINDOWS = 3
"""Measurement windows per run: the fewest perf_analyzer accepts as a result."""
ANY_SPREAD = "999"
"""--stability-percentage: every run of WINDOWS counts; the caller repeats runs instead,
and reports their spread (a noisy machine otherwise never "stabilizes")."""
BREAKDOWN = (
    "Client Send",
    "Network+Server Send/Recv",
    "Server Queue",
    "Server Compute Input",
    "Server Compute Infer",
    "Server Compute Output",
    "Client Recv",
)
"""The CSV's columns that split one request's time (microseconds, averages)."""


@dataclass(frozen=True)
class Report:
    """One perf_analyzer run at one concurrency."""

    concurrency: int
    requests: int
    throughput: float
    """Requests per second (one text each)."""
    p50_ms: float
    p99_ms: float
    breakdown_us: dict[str, int]
    """Average microseconds per request in each of BREAKDOWN."""


def write_input_data(inputs: Sequence[dict[str, list[str]]], path: Path) -> Path:
    """perf_analyzer's --input-data file: one request per entry, cycled through in order.
    Each entry maps an input name to the strings of one request (a [n] BYTES tensor)."""
    steps = [
        {name: {"content": values, "shape": [len(values)]} for name, values in entry.items()}
        for entry in inputs
    ]
    path.write_text(json.dumps({"data": steps}))
    return path


def environment() -> dict[str, str]:
    """This environment, with CUDA's runtime library (from its wheel) on the library path."""
    spec = importlib.util.find_spec("nvidia.cuda_runtime")
    if spec is None or not spec.submodule_search_locations:
        raise ServingError(
            "perf_analyzer needs CUDA's runtime library, from the nvidia-cuda-runtime-cu12 "
            "wheel: run `make setup` to install this project's dependencies"
        )
    library = Path(next(iter(spec.submodule_search_locations))) / "lib"
    path = os.pathsep.join(p for p in (str(library), os.environ.get("LD_LIBRARY_PATH")) if p)
    return {**os.environ, "LD_LIBRARY_PATH": path}


def check() -> None:
    """Fail now, saying how to fix it, if perf_analyzer cannot start here."""
    if not BINARY.is_file():
        raise ServingError(
            f"{BINARY} is missing: it ships in the tritonclient wheel; run `make setup`"
        )
    started = subprocess.run(
        [str(BINARY), "--version"], env=environment(), capture_output=True, text=True
    )
    if started.returncode != 0:
        problem = started.stderr.strip().splitlines()[-1] if started.stderr.strip() else ""
        fix = (
            f"install Debian's {DEBIAN_PACKAGE}: run `make setup-bench` (as root)"
            if "libb64" in problem
            else "run `make setup`"
        )
        raise ServingError(f"perf_analyzer cannot start ({problem}); {fix}")


def run(
    address: str, model: str, input_data: Path, concurrency: int, seconds: float, out: Path
) -> Report:
    """`concurrency` requests in flight over gRPC for about `seconds` (WINDOWS windows)."""
    report = out / f"perf-{model}-{concurrency}.csv"
    command = [
        str(BINARY),
        "-m",
        model,
        "-i",
        "grpc",
        "-u",
        address,
        f"--input-data={input_data}",
        f"--concurrency-range={concurrency}",
        f"--measurement-interval={max(1, round(seconds * 1000 / WINDOWS))}",
        f"--max-trials={WINDOWS}",
        f"--stability-percentage={ANY_SPREAD}",
        "--percentile=50",
        "-f",
        str(report),
        "--verbose-csv",
    ]
    finished = subprocess.run(command, env=environment(), capture_output=True, text=True)
    if finished.returncode != 0:
        tail = "\n".join((finished.stdout + finished.stderr).strip().splitlines()[-8:])
        raise ServingError(f"perf_analyzer failed (exit {finished.returncode}):\n{tail}")
    return parse(finished.stdout, report.read_text())


def parse(stdout: str, report_csv: str) -> Report:
    """A Report from perf_analyzer's stdout (the request count) and its CSV (the rest)."""
    (row,) = csv.DictReader(report_csv.splitlines())
    counts = re.findall(r"Request count: (\d+)", stdout)
    if not counts:
        raise ServingError(f"perf_analyzer printed no request count:\n{stdout[-800:]}")
    return Report(
        concurrency=int(row["Concurrency"]),
        requests=int(counts[0]),
        throughput=float(row["Inferences/Second"]),
        p50_ms=int(row["p50 latency"]) / 1e3,
        p99_ms=int(row["p99 latency"]) / 1e3,
        breakdown_us={column: int(row[column]) for column in BREAKDOWN},
    )
