"""The make targets around the stack: a second up starts nothing, status reports health,
down leaves no process or port behind (runs last of the stack tests: it stops the stack)."""

import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from serving.endpoints import PROJECT_ROOT
from serving.errors import LocalStackError
from serving.local import processes, stack
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
    older = {**manifests, "public": manifests["public"].for_models(["tokenizer"])}
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


def test_down_local_leaves_no_process_or_port_behind(
    local_stack: LocalState, state_dir: Path
) -> None:
    assert processes_under(state_dir), "the stack's Tritons and stubs run from its folder"
    result = make("down-local", state_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(process.alive() for process in local_stack.processes.values())
    assert not processes_under(state_dir), "no backend stub or child outlives its Triton"
    assert not [port for port in ports(local_stack) if processes.port_open(port)]
    assert read_state(state_dir) is None
    again = make("down-local", state_dir)
    assert again.returncode == 0 and "nothing to stop" in again.stdout + again.stderr
    status = make("status-local", state_dir)
    assert status.returncode != 0 and "not running" in status.stdout
