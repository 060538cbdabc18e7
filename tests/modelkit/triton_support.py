"""A local Triton binary serving one rendered repository folder, for tests that need the
python backend itself (the local mode's own launcher, without buckets)."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tritonclient.grpc as grpcclient

from serving.local import processes, triton


@dataclass(frozen=True)
class Served:
    client: grpcclient.InferenceServerClient
    process: processes.Process
    address: str
    """host:port of its gRPC endpoint."""


@contextlib.contextmanager
def serving(repository: Path, models: tuple[str, ...], tmp_path: Path) -> Iterator[Served]:
    """A Triton whose ``models`` are ready, with a gRPC client; stopped and cleaned up on
    exit."""
    grpc_port, metrics_port = processes.free_ports(2)
    launch = triton.TritonLaunch(
        site="public",
        repository=str(repository),
        models=models,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        http_port=None,
        tls=None,
        env={},
        scratch=tmp_path / "scratch",
    )
    backends = triton.prepare_backends(tmp_path / "backends")
    triton.reclaim(launch.scratch)
    server = processes.start(
        "triton", triton.command(launch, backends), tmp_path / "triton.log",
        triton.environment(launch),
    )  # fmt: skip
    try:
        address = f"127.0.0.1:{grpc_port}"
        client = grpcclient.InferenceServerClient(address)
        for model in models:
            processes.wait_until(
                lambda model=model: client.is_model_ready(model), [server], model, 120
            )
        yield Served(client, server, address)
    finally:
        triton.stop(server, launch.scratch)
