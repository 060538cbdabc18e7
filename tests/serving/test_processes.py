"""Detached processes: identity by (pid, start time), group stop, logs that explain failures."""

import os
import sys
from pathlib import Path

import pytest

from serving.errors import LocalStackError
from serving.local import processes
from serving.local.processes import Process

SLEEPER = [
    sys.executable,
    "-c",
    "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)",
]


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    process = processes.start("sleeper", SLEEPER, tmp_path / "sleeper.log", os.environ)
    assert process.alive()
    processes.wait_until(lambda: len(_group(process.pid)) == 2, [process], "the child", 10)
    processes.stop(process, timeout=5)
    assert not process.alive()
    assert not _group(process.pid), "the grandchild is gone too"
    processes.stop(process)  # stopping twice is harmless


def test_a_reused_pid_is_not_mistaken_for_our_process() -> None:
    me = Process("pytest", os.getpid(), started=1, log="")
    assert not me.alive()
    processes.stop(me)  # must not signal this very process
    assert Process("pytest", os.getpid(), processes._start_time(os.getpid()) or 0, "").alive()


def test_a_process_that_dies_while_waited_for_shows_its_log(tmp_path: Path) -> None:
    log = tmp_path / "broken.log"
    script = (
        "print('E1123 CudaDriverHelper has not been initialized.'); "
        "print('loading model'); print('error: creating server: failed to load all models'); "
        "raise SystemExit(1)"
    )
    process = processes.start("broken", [sys.executable, "-c", script], log, os.environ)
    with pytest.raises(LocalStackError) as raised:
        processes.wait_until(lambda: False, [process], "broken server", 10)
    message = str(raised.value)
    assert "broken exited while waiting for broken server" in message
    assert "failed to load all models" in message
    assert message.index("failed to load all models") < message.index("loading model"), (
        "error lines come first"
    )
    errors_part = message.split("...")[0]
    assert "CudaDriverHelper" not in errors_part, "known CPU-start noise is not an error line"


def test_waiting_times_out_with_every_log(tmp_path: Path) -> None:
    process = processes.start("idle", ["sleep", "30"], tmp_path / "idle.log", os.environ)
    try:
        with pytest.raises(LocalStackError, match=r"idle server not ready after 1s"):
            processes.wait_until(lambda: False, [process], "idle server", 1.0)
    finally:
        processes.stop(process)


def test_free_ports_are_distinct_and_closed() -> None:
    ports = processes.free_ports(6)
    assert len(set(ports)) == 6
    assert not any(processes.port_open(port) for port in ports)


def _group(pgid: int) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and processes._start_time(int(entry.name)) is not None
        and processes._pgid(int(entry.name)) == pgid
    ]
