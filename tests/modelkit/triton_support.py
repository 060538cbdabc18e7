"""A local Triton binary serving one rendered repository folder, for tests that need the
python backend itself (the local mode's own launcher, without buckets)."""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import tritonclient.grpc as grpcclient

from serving.local import processes, triton


@contextlib.contextmanager
def serving(
    repository: Path, models: tuple[str, ...], tmp_path: Path
) -> Iterator[tuple[grpcclient.InferenceServerClient, processes.Process]]:
    """A gRPC client of a Triton whose ``models`` are ready, and its process; stopped and
    cleaned up on exit."""
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
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        for model in models:
            processes.wait_until(
                lambda model=model: client.is_model_ready(model), [server], model, 120
            )
        yield client, server
    finally:
        triton.stop(server, launch.scratch)
