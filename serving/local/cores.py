"""Per-site cores: the local mode's stand-in for two sites with their own hardware.

By default both Tritons share every core, so sending work to the other site adds no
capacity. With dedicated cores each site's Triton is started under a CPU affinity mask
that its python-backend stubs inherit (they are its children), so the private site's
capacity is a real limit: the private site gets the first half of the cores this process
may use, the public site the rest. On one core there is nothing to split: both sites get
that core, exactly as if shared.
"""

import os
import sys
from collections.abc import Mapping, Sequence

MODES = ("shared", "dedicated")
# Sets the mask, then becomes the command: the pid and start time stay the ones recorded,
# and every thread and child the server starts inherits the mask.
PIN = "import os, sys; os.sched_setaffinity(0, map(int, sys.argv[1].split(','))); " \
      "os.execv(sys.argv[2], sys.argv[2:])"  # fmt: skip


def split(mode: str, available: Sequence[int] | None = None) -> dict[str, tuple[int, ...]]:
    """site -> its cores; empty for `shared` (no mask is set)."""
    if mode == "shared":
        return {}
    cores = tuple(sorted(os.sched_getaffinity(0) if available is None else available))
    if len(cores) < 2:
        return {"private": cores, "public": cores}
    half = len(cores) // 2
    return {"private": cores[:half], "public": cores[half:]}


def pinned(command: Sequence[str], cores: Sequence[int]) -> list[str]:
    """`command` run under an affinity mask of `cores` (unchanged when there are none)."""
    if not cores:
        return list(command)
    return [sys.executable, "-c", PIN, ",".join(map(str, cores)), *command]


def mode_of(cores: Mapping[str, Sequence[int]]) -> str:
    return "dedicated" if cores else "shared"


def thread_env(cores: Sequence[int]) -> dict[str, str]:
    """Thread pools sized to the site's cores (OpenMP-based torch, in the ranker's stub)."""
    return {"OMP_NUM_THREADS": str(len(cores))} if cores else {}
