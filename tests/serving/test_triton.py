"""What a killed Triton leaves behind is found by its scratch folder alone, and removed;
what belongs to another server is left alone."""

import os
import sys
import time
from pathlib import Path

from serving.local import processes, triton
from serving.local.processes import Process

# Stands in for a python-backend stub: ignores SIGTERM, and its second argument names its
# shm region, as the real stub's does.
STUB_BODY = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("deaf to SIGTERM", flush=True)
time.sleep(60)
"""


def fake_stub(folder: Path, region: str) -> Process:
    """A process whose command line reads like a stub's: `<...>/triton_python_backend_stub
    <model.py> <shm region> ...`, started once it ignores SIGTERM."""
    folder.mkdir(parents=True, exist_ok=True)
    stub = folder / triton.STUB
    stub.symlink_to(sys.executable)
    model = folder / "model.py"
    model.write_text(STUB_BODY)
    log = folder / "stub.log"
    process = processes.start("stub", [str(stub), str(model), region, "1048576"], log, os.environ)
    processes.wait_until(lambda: "deaf" in log.read_text(), [process], "the fake stub", 60)
    return process


def test_reclaim_removes_the_stubs_shm_and_copies_of_its_own_server_only(
    tmp_path: Path,
) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    regions = {
        folder: f"{triton.shm_prefix(folder)}0a87f1cf-ee51-437d-998b-64ff5f4a58e1"
        for folder in (mine, theirs)
    }
    stubs = {
        folder: fake_stub(tmp_path / f"bin-{folder.name}", regions[folder]) for folder in regions
    }
    try:
        for region in regions.values():
            (triton.SHM / region).write_bytes(b"\0" * 16)
        copy = mine / "folderAb3dE9" / "1"
        copy.mkdir(parents=True)
        (copy / "model.py").write_text("weights\n")
        started = time.monotonic()
        triton.reclaim(mine, grace=0.5)
        assert time.monotonic() - started >= 0.5, "SIGTERM first, SIGKILL after the grace"
        assert not stubs[mine].alive(), "its stub, deaf to SIGTERM, was killed"
        assert not (triton.SHM / regions[mine]).exists()
        assert mine.is_dir() and not list(mine.iterdir()), "its folder is empty, ready"
        assert stubs[theirs].alive(), "another server's stub is left alone"
        assert (triton.SHM / regions[theirs]).exists()
    finally:
        processes.terminate(list(stubs.values()), grace=0)
        for region in regions.values():
            (triton.SHM / region).unlink(missing_ok=True)


def test_each_scratch_folder_names_its_own_shm_regions(tmp_path: Path) -> None:
    prefixes = {triton.shm_prefix(tmp_path / site) for site in ("public", "private")}
    assert len(prefixes) == 2
    assert triton.shm_prefix(tmp_path / "public") == triton.shm_prefix(tmp_path / "x/../public")


def test_the_server_is_told_its_scratch_folder(tmp_path: Path) -> None:
    launch = triton.TritonLaunch(
        site="public", repository="s3://http://127.0.0.1:1/b/repo/abc", models=("m",),
        grpc_port=1, metrics_port=2, http_port=None, tls=None, env={}, scratch=tmp_path,
    )  # fmt: skip
    command = triton.command(launch, tmp_path / "backends")
    prefix = triton.shm_prefix(tmp_path)
    assert f"--backend-config=python,shm-region-prefix-name={prefix}" in command
    env = triton.environment(launch)
    assert {env[name] for name in triton.MOUNT_VARIABLES} == {str(tmp_path)}
