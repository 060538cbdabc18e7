"""Run the Triton server binary shipped in the nvidia-pytriton wheel (CPU, python backend).

The wheel keeps its backend stubs per Python version apart from the backend; Triton needs
the stub of the running interpreter next to the backend library, so each stack prepares
its own backend folder.

A Triton killed outright (SIGKILL: the OOM killer, a crash) leaves behind what it would
have removed on a clean stop: its python-backend stub processes (which ignore SIGTERM),
their /dev/shm regions, and its local copy of a remote repository. So every server gets a
scratch folder of its own: its copies and temporary files go there, and its shm regions
are named after it (`shm_prefix`); `reclaim` removes all three knowing only that folder.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytriton

from serving.endpoints import TlsFiles
from serving.errors import LocalStackError
from serving.local import processes

DIST = Path(pytriton.__file__).resolve().parent / "tritonserver"
BINARY = DIST / "bin" / "tritonserver"
LIBS = DIST.parent.parent / "nvidia_pytriton.libs"
STUB = "triton_python_backend_stub"
SHM = Path("/dev/shm")
MOUNT_VARIABLES = ("TRITON_AWS_MOUNT_DIRECTORY", "TRITON_GCS_MOUNT_DIRECTORY", "TMPDIR")
"""Where Triton copies an s3:// or gs:// repository (default /tmp), and temporary files."""


@dataclass(frozen=True)
class TritonLaunch:
    """How one site's server is started."""

    site: str
    repository: str
    """`s3://http://127.0.0.1:P/<bucket>/repo/<hash>` or `gs://<bucket>/repo/<hash>`."""
    models: tuple[str, ...]
    grpc_port: int
    metrics_port: int
    http_port: int | None
    """None turns HTTP off: Triton's HTTP endpoint cannot do TLS."""
    tls: TlsFiles | None
    """Server cert, key and the CA that client certs must chain to (mutual TLS)."""
    env: Mapping[str, str]
    """What the repository's storage needs (emulator endpoint, credentials)."""
    scratch: Path
    """This server's own folder (module docstring): one server at a time uses it."""
    address: str = "127.0.0.1"
    """The one address every endpoint listens on (the site's inner address in VPN mode)."""


def prepare_backends(folder: Path) -> Path:
    """A backend directory holding the python backend plus the stub for this Python.

    An existing one is reused untouched: a running site has its libraries mapped, and
    rewriting them in place crashes it. Callers start from an empty folder for a fresh stack.
    """
    python = folder / "python"
    if (python / STUB).is_file():
        return folder
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = DIST / "python_backend_stubs" / version / STUB
    if not stub.is_file():
        known = sorted(p.name for p in (DIST / "python_backend_stubs").iterdir())
        raise LocalStackError(
            f"nvidia-pytriton ships no python backend stub for Python {version} "
            f"(it has {known}); run the local mode from a .venv built with one of those."
        )
    partial = folder / "python.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(DIST / "backends" / "python", partial)
    shutil.copy2(stub, partial / STUB)
    _check_links(partial / STUB)
    os.replace(partial, python)
    return folder


def command(launch: TritonLaunch, backends: Path) -> list[str]:
    args = [
        str(BINARY),
        f"--model-repository={launch.repository}",
        "--model-control-mode=explicit",
        *(f"--load-model={model}" for model in launch.models),
        f"--backend-directory={backends}",
        "--strict-readiness=true",
        "--exit-on-error=true",
        f"--grpc-address={launch.address}",
        f"--grpc-port={launch.grpc_port}",
        f"--metrics-address={launch.address}",
        f"--metrics-port={launch.metrics_port}",
        "--allow-gpu-metrics=false",
        "--log-format=ISO8601",
        f"--backend-config=python,shm-region-prefix-name={shm_prefix(launch.scratch)}",
    ]
    if launch.http_port is None:
        args.append("--allow-http=false")
    else:
        args += [f"--http-address={launch.address}", f"--http-port={launch.http_port}"]
    if launch.tls is not None:
        args += [
            "--grpc-use-ssl-mutual=true",
            f"--grpc-server-cert={launch.tls.cert}",
            f"--grpc-server-key={launch.tls.key}",
            f"--grpc-root-cert={launch.tls.ca}",
        ]
    return args


def environment(launch: TritonLaunch) -> dict[str, str]:
    """The server's environment: its libraries, and this venv for the python backend."""
    env = {**os.environ, **launch.env, **dict.fromkeys(MOUNT_VARIABLES, str(launch.scratch))}
    env["LD_LIBRARY_PATH"] = _library_path(env.get("LD_LIBRARY_PATH"))
    # The backend stub embeds the interpreter that `python3` on PATH names, so models
    # import torch, onnxruntime and tokenizers from this very venv.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def shm_prefix(scratch: Path) -> str:
    """The start of the names of the shm regions of the server using `scratch`: unique to
    the folder, so it names that server's regions and stubs and no one else's."""
    digest = hashlib.sha256(str(scratch.resolve()).encode()).hexdigest()[:16]
    return f"hybrid-triton-{digest}-"


def reclaim(scratch: Path, grace: float = 1.0) -> None:
    """Remove what a stopped (or killed) server that used `scratch` left behind: its stub
    processes (SIGKILL after `grace` seconds), its shm regions and its model copies. The
    folder is left empty, ready for the next server. Call it only once that server is gone.
    """
    prefix = shm_prefix(scratch)
    stubs = processes.find(lambda argv: is_stub(argv, prefix), STUB)
    processes.terminate(stubs, grace)
    for name in os.listdir(SHM):
        if name.startswith(prefix):
            (SHM / name).unlink(missing_ok=True)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)


def stop(process: processes.Process, scratch: Path) -> None:
    """Stop a server and remove whatever it leaves behind."""
    processes.stop(process)
    reclaim(scratch)


def is_stub(argv: list[str], prefix: str) -> bool:
    """Whether a command line is a python-backend stub whose shm region (its second argument)
    `prefix` names."""
    return len(argv) > 2 and Path(argv[0]).name == STUB and argv[2].startswith(prefix)


def _library_path(existing: str | None) -> str:
    parts: Sequence[str | None] = (str(LIBS), sysconfig.get_config_var("LIBDIR"), existing)
    return os.pathsep.join(p for p in parts if p)


def _check_links(stub: Path) -> None:
    """Fail before starting anything when the stub cannot find libpython."""
    env = {**os.environ, "LD_LIBRARY_PATH": _library_path(os.environ.get("LD_LIBRARY_PATH"))}
    result = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, env=env)
    missing = [line.strip() for line in result.stdout.splitlines() if "not found" in line]
    if missing:
        raise LocalStackError(
            f"the python backend stub cannot load {missing}; install the shared library "
            "of this Python (e.g. `apt-get install libpython3.11`) or use a Python built "
            "with --enable-shared."
        )
