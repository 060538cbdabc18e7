"""Detached child processes that outlive `up`: start, identify, find, wait for, stop.

A process is recorded as (pid, start time): a pid alone may be reused by an unrelated
process after a reboot or a crash, and `down` must never signal a stranger.
"""

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from serving.errors import LocalStackError

# Printed by every CPU-only Triton start; they bury the line that matters.
HARMLESS = re.compile(r"CudaDriverHelper|NVML|DCGM|cuda|GPU metrics", re.IGNORECASE)
# Triton's ISO8601 log lines carry the severity after the time: "...Z E 1234 file.cc:12]".
RELEVANT = re.compile(r"Z E \d+ |error|failed|traceback|exception|unable", re.IGNORECASE)


@dataclass(frozen=True)
class Process:
    """A started child: enough to find it again, check it and stop it."""

    name: str
    pid: int
    started: int
    """Start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    log: str

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started


def start(name: str, command: Sequence[str], log: Path, env: Mapping[str, str]) -> Process:
    """Start `command` in its own session, output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    started = _start_time(child.pid)
    if started is None:
        raise LocalStackError(f"{name} exited at once; see {log}:\n{log_excerpt(log)}")
    return Process(name=name, pid=child.pid, started=started, log=str(log))


def stop(process: Process, timeout: float = 10.0) -> None:
    """SIGTERM the process group (Triton's backend stubs included), SIGKILL what remains."""
    if not process.alive():
        _reap(process.pid)
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(process.pid):
            _reap(process.pid)
            time.sleep(0.1)
        if not _group_alive(process.pid):
            break
    _reap(process.pid)


def find(matches: Callable[[list[str]], bool], name: str) -> list[Process]:
    """Live processes whose command line (argv) `matches`, each with its identity.

    Callers match on something of their own that the command line carries (a recorded,
    unique argument), never on a program's name alone.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        started = _start_time(int(entry.name))
        if argv and started is not None and matches([a.decode(errors="replace") for a in argv]):
            found.append(Process(name, int(entry.name), started, log=""))
    return found


def terminate(found: Sequence[Process], grace: float = 1.0) -> None:
    """SIGTERM each process, SIGKILL whatever still runs `grace` seconds later (Triton's
    python-backend stubs ignore SIGTERM: they expect their server to stop them)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for process in found:
            if process.alive():
                with suppress(ProcessLookupError):
                    os.kill(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(p.alive() for p in found):
            for process in found:
                _reap(process.pid)
            time.sleep(0.05)
        if not any(p.alive() for p in found):
            return


def wait_until(
    ready: Callable[[], bool], processes: Sequence[Process], what: str, timeout: float
) -> None:
    """Poll `ready` until true; fail fast, with the log, if a process dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if not process.alive():
                raise LocalStackError(
                    f"{process.name} exited while waiting for {what}; "
                    f"log {process.log}:\n{log_excerpt(Path(process.log))}"
                )
        try:
            if ready():
                return
        except Exception:  # any failure here only means "not ready yet"
            pass
        time.sleep(0.25)
    logs = "\n".join(f"--- {p.name} ({p.log}):\n{log_excerpt(Path(p.log))}" for p in processes)
    raise LocalStackError(f"{what} not ready after {timeout:.0f}s.\n{logs}")


def log_excerpt(log: Path, tail: int = 8, relevant: int = 20) -> str:
    """The error lines of a log (minus known CPU-start noise), then its last lines."""
    if not log.is_file():
        return "(no log written)"
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if RELEVANT.search(line) and not HARMLESS.search(line)]
    last = [line for line in lines[-tail:] if line not in errors[-relevant:]]
    parts = [*errors[-relevant:], *(["..."] if errors and last else []), *last]
    return "\n".join(f"    {line}" for line in parts) or "(log is empty)"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free on 127.0.0.1 now (held together, so distinct)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start_time(pid: int) -> int | None:
    """The process's start time, or None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; a group of only zombies is dead.
    return any(
        _start_time(int(entry.name)) is not None and _pgid(int(entry.name)) == pgid
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
    )


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (tests start it in-process)."""
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
