"""`kubectl port-forward` to the private site's Triton Service, for the smoke check.

The private site's load balancer is internal: only the AWS VPC reaches it, over the VPN. From
anywhere the private cluster's API answers, a port-forward reaches the same pods.
"""

import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from hybrid.triton import GRPC_PORT_NAME, NAMESPACE, SERVICE
from serving.errors import TargetError

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
READY_LINE = "Forwarding from 127.0.0.1:"
Starter = Callable[..., "subprocess.Popen[str]"]


def port_forward_argv(kubeconfig: Path, local_port: int) -> list[str]:
    return [
        "kubectl",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        NAMESPACE,
        "port-forward",
        "--address",
        "127.0.0.1",
        f"service/{SERVICE}",
        f"{local_port}:{GRPC_PORT_NAME}",
    ]


@contextmanager
def port_forward(
    kubeconfig: Path, *, start: Starter = subprocess.Popen, timeout: float = START_TIMEOUT
) -> Iterator[str]:
    """The local `host:port` forwarded to the Service while the block runs; stopped after."""
    port = _free_port()
    argv = port_forward_argv(kubeconfig, port)
    command = " ".join(argv)
    try:
        process = start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError as error:
        raise TargetError(
            "kubectl is not on PATH: it forwards a local port to the private site's internal "
            "load balancer. Install it, or from inside the AWS VPC pass --private-address "
            "HOST:PORT."
        ) from error
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_drain, args=(process.stdout, lines), daemon=True).start()
    try:
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise TargetError(
                    f"`{command}` did not start forwarding within {timeout:.0f} s: "
                    f"{' / '.join(seen) or 'no output'}"
                ) from None
            if line is None:
                raise TargetError(
                    f"`{command}` stopped (exit status {process.wait()}): "
                    f"{' / '.join(seen) or 'no output'}"
                )
            if line.startswith(READY_LINE):
                break
            seen.append(line)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drain(stream: IO[Any] | None, lines: "queue.Queue[str | None]") -> None:
    """Read kubectl's output to the end (it logs every connection; a full pipe would stall it)."""
    if stream is not None:
        for line in stream:
            lines.put(line.strip())
    lines.put(None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
