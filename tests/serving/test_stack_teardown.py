"""The make targets around the stack: a second up starts nothing, status reports health,
up and down remove what a Triton killed outright left behind, down leaves no process or
port behind (runs last of the stack tests: it stops the stack)."""

import io
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from hybrid.manifest import Manifest
from serving.endpoints import PROJECT_ROOT
from serving.errors import LocalStackError
from serving.local import processes, stack, triton
from serving.local.processes import Process
from serving.local.repository import LOCAL_REPOSITORY, site_manifests
from serving.local.state import LocalState, read_state

pytestmark = pytest.mark.local_stack

# The suite already runs inside the built venv and node tools: don't let make rebuild them.
MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed", "-o",
        "node_modules/.package-lock.json"]  # fmt: skip


def make(target: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAKE, target, f"LOCAL_DIR={state_dir}"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=600,
    )


def processes_under(folder: Path) -> list[int]:
    """Live processes whose command line mentions the stack's folder (Tritons, stubs, ...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in command and processes._start_time(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Leftovers:
    """What a Triton killed outright leaves outside itself, seen while it still ran."""

    server: Process
    stubs: list[Process]
    """Its python-backend stubs: its children, orphaned by the kill."""
    shm: list[str]
    """The /dev/shm regions its stubs had mapped."""
    copies: list[Path]
    """Its local copies of the repository (one folder per model)."""

    def remaining(self) -> dict[str, list[str]]:
        return {
            "stubs": [str(stub.pid) for stub in self.stubs if stub.alive()],
            "shm": [name for name in self.shm if (triton.SHM / name).exists()],
            "copies": [str(copy) for copy in self.copies if copy.exists()],
        }


def children(pid: int) -> list[Process]:
    """Live child processes of `pid` (/proc/<child>/stat field 4 is the parent)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            started = processes._start_time(int(entry.name))
            if started is not None:
                found.append(Process("child", int(entry.name), started, log=""))
    return found


def mapped_shm(pid: int) -> set[str]:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {line.split("/dev/shm/", 1)[1] for line in maps.splitlines() if "/dev/shm/" in line}


def crash(state_dir: Path, site: str) -> Leftovers:
    """SIGKILL `site`'s Triton alone, as the OOM killer would, and see its stubs orphaned.

    A stub exits by itself once its server's exit is collected, so the server is first
    restarted by this process (group killed, `up` healing it in-process): this process then
    never collects it, like any parent that does not reap, and its stubs run on.
    """
    state = read_state(state_dir)
    assert state is not None
    os.killpg(state.processes[stack.triton_name(site)].pid, signal.SIGKILL)
    console = Console(file=io.StringIO())
    state = stack.up("dev", LOCAL_REPOSITORY, site_manifests("dev"), state_dir, console)
    server = state.processes[stack.triton_name(site)]
    stubs = children(server.pid)
    shm = sorted({name for stub in stubs for name in mapped_shm(stub.pid)})
    copies = sorted(stack.scratch(state_dir, site).glob("folder*"))
    assert stubs and shm and copies, "a serving Triton has stubs, shm regions and copies"
    os.kill(server.pid, signal.SIGKILL)
    processes.wait_until(lambda: not server.alive(), [], "the killed Triton to die", 10)
    time.sleep(1.0)  # the stubs look for their server every 300 ms
    assert all(stub.alive() for stub in stubs), "the stubs outlive their killed server"
    return Leftovers(server, stubs, shm, copies)


def ports(state: LocalState) -> list[int]:
    addresses = [state.emulators["s3"], state.emulators["gcs"]]
    for site in state.sites.values():
        addresses += [site.endpoint.grpc, site.metrics, site.endpoint.http or ""]
    return [int(address.rsplit(":", 1)[1]) for address in addresses if address]


def test_a_second_up_local_starts_no_duplicates(local_stack: LocalState, state_dir: Path) -> None:
    before = processes_under(state_dir)
    result = make("up-local", state_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already running stack 'dev'" in result.stdout + result.stderr
    state = read_state(state_dir)
    assert state is not None
    assert {n: p.pid for n, p in state.processes.items()} == {
        n: p.pid for n, p in local_stack.processes.items()
    }
    assert sorted(processes_under(state_dir)) == sorted(before)


def test_up_with_another_stack_names_the_running_one_and_how_to_switch(
    local_stack: LocalState, state_dir: Path
) -> None:
    with pytest.raises(LocalStackError) as raised:
        stack.up("prod", LOCAL_REPOSITORY, site_manifests("dev"), state_dir, Console())
    assert str(raised.value) == (
        "the local mode already runs stack 'dev'; `make down-local` first to start it with "
        "STACK=prod."
    )
    assert read_state(state_dir) is not None, "the running stack is left as it was"


def test_up_says_when_the_running_sites_serve_an_older_build(
    local_stack: LocalState, state_dir: Path
) -> None:
    manifests = site_manifests("dev")
    public = manifests["public"]  # a build with one file fewer stands for an older one
    fewer = dict(list(public.files.items())[1:])
    older = {**manifests, "public": Manifest.build("local", public.stack, public.models, fewer)}
    console = Console(record=True, width=200)
    state = stack.up("dev", LOCAL_REPOSITORY, older, state_dir, console)
    assert state.processes == local_stack.processes, "nothing restarted"
    assert "public still serve(s) an older build" in console.export_text()
    stack.up("dev", LOCAL_REPOSITORY, manifests, state_dir, console)
    assert console.export_text().count("older build") == 0, "export_text clears the record"


def test_status_local_reports_every_site_healthy(local_stack: LocalState, state_dir: Path) -> None:
    result = make("status-local", state_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    for word in ("triton-public", "triton-private", "mutual TLS", "ctr_ranker ✔"):
        assert word in result.stdout


def test_up_local_removes_what_a_killed_triton_left_behind(
    local_stack: LocalState, state_dir: Path
) -> None:
    left = crash(state_dir, "private")
    try:
        result = make("up-local", state_dir)
    finally:
        processes.stop(left.server)  # collect it
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restarting Triton for private" in result.stdout + result.stderr
    assert left.remaining() == {"stubs": [], "shm": [], "copies": []}
    state = read_state(state_dir)
    assert state is not None and stack.health(state)["healthy"]


def test_down_local_leaves_no_process_or_port_behind(
    local_stack: LocalState, state_dir: Path
) -> None:
    assert processes_under(state_dir), "the stack's Tritons and stubs run from its folder"
    left = crash(state_dir, "public")
    try:
        result = make("down-local", state_dir)
    finally:
        processes.stop(left.server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert left.remaining() == {"stubs": [], "shm": [], "copies": []}
    for site in local_stack.sites:
        scratch = stack.scratch(state_dir, site)
        assert not list(scratch.iterdir()), f"{site}'s Triton left files in {scratch}"
        prefix = triton.shm_prefix(scratch)
        assert not [name for name in os.listdir(triton.SHM) if name.startswith(prefix)]
    assert not any(process.alive() for process in local_stack.processes.values())
    assert not processes_under(state_dir), "no backend stub or child outlives its Triton"
    assert not [port for port in ports(local_stack) if processes.port_open(port)]
    assert read_state(state_dir) is None
    again = make("down-local", state_dir)
    assert again.returncode == 0 and "nothing to stop" in again.stdout + again.stderr
    status = make("status-local", state_dir)
    assert status.returncode != 0 and "not running" in status.stdout
