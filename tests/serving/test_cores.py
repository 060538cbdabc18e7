"""Per-site cores: how they are split, and that the mask reaches the server's children."""

import os
import subprocess

from serving.local.cores import mode_of, pinned, split, thread_env


def test_each_site_gets_its_own_half_of_the_cores() -> None:
    assert split("dedicated", [0, 1]) == {"private": (0,), "public": (1,)}
    assert split("dedicated", [3, 2, 1, 0]) == {"private": (0, 1), "public": (2, 3)}
    assert split("dedicated", [5]) == {"private": (5,), "public": (5,)}, "one core: both"
    assert split("shared") == {} and mode_of({}) == "shared"
    assert mode_of(split("dedicated", [0, 1])) == "dedicated"


def test_the_mask_is_inherited_by_children() -> None:
    core = min(os.sched_getaffinity(0))
    # The shell's child (cat) reads its own mask: what a backend stub would get.
    command = pinned(["/bin/sh", "-c", "cat /proc/self/status"], [core])
    status = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    allowed = next(line for line in status.splitlines() if line.startswith("Cpus_allowed_list"))
    assert allowed.split()[-1] == str(core), allowed


def test_shared_mode_changes_nothing() -> None:
    assert pinned(["tritonserver", "--x"], ()) == ["tritonserver", "--x"]
    assert thread_env(()) == {} and thread_env((0, 1)) == {"OMP_NUM_THREADS": "2"}


def test_the_pinned_command_keeps_its_arguments() -> None:
    result = subprocess.run(
        pinned(["/bin/echo", "a b", "--c"], sorted(os.sched_getaffinity(0))),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "a b --c\n"
