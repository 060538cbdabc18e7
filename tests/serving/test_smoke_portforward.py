"""The port-forward to the private site, with a stand-in for kubectl (no cluster needed)."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from serving.errors import TargetError
from serving.smoke.portforward import port_forward, port_forward_argv

FORWARDS = (
    "import sys, time; port = sys.argv[-1].split(':')[0]; "
    "print(f'Forwarding from 127.0.0.1:{port} -> 8001', flush=True); time.sleep(60)"
)


class FakeKubectl:
    """Runs `script` with kubectl's argv in place of kubectl, and keeps what it started."""

    def __init__(self, script: str) -> None:
        self.script = script
        self.calls: list[list[str]] = []
        self.processes: list[subprocess.Popen[str]] = []

    def __call__(self, argv: list[str], **options: Any) -> "subprocess.Popen[str]":
        self.calls.append(argv)
        process = subprocess.Popen([sys.executable, "-c", self.script, *argv], **options)
        self.processes.append(process)
        return process


def test_the_command_forwards_the_triton_service_grpc_port_on_loopback() -> None:
    assert port_forward_argv(Path("/tmp/kubeconfig"), 43210) == [
        "kubectl", "--kubeconfig", "/tmp/kubeconfig", "--namespace", "triton",
        "port-forward", "--address", "127.0.0.1", "service/triton", "43210:grpc",
    ]  # fmt: skip


def test_the_address_is_yielded_once_kubectl_forwards_and_kubectl_is_stopped_after() -> None:
    kubectl = FakeKubectl(FORWARDS)
    with port_forward(Path("/tmp/kubeconfig"), start=kubectl) as address:
        (argv,) = kubectl.calls
        local_port = argv[-1].split(":")[0]
        assert address == f"127.0.0.1:{local_port}"
        assert argv == port_forward_argv(Path("/tmp/kubeconfig"), int(local_port))
        (process,) = kubectl.processes
        assert process.poll() is None, "kubectl runs while the block runs"
    assert process.poll() is not None, "kubectl is stopped afterwards"


def test_a_failing_kubectl_is_reported_with_its_own_words() -> None:
    script = "print('error: services \"triton\" not found', flush=True); raise SystemExit(1)"
    said = r'stopped \(exit status 1\): error: services "triton"'
    with (
        pytest.raises(TargetError, match=said),
        port_forward(Path("/tmp/kubeconfig"), start=FakeKubectl(script)),
    ):
        pytest.fail("no address without forwarding")


def test_a_silent_kubectl_times_out() -> None:
    kubectl = FakeKubectl("import time; time.sleep(60)")
    with (
        pytest.raises(TargetError, match="did not start forwarding within 1 s: no output"),
        port_forward(Path("/tmp/kubeconfig"), start=kubectl, timeout=1.0),
    ):
        pytest.fail("no address without forwarding")
    (process,) = kubectl.processes
    assert process.poll() is not None


def test_a_missing_kubectl_says_what_to_do_instead() -> None:
    def missing(argv: list[str], **options: object) -> "subprocess.Popen[str]":
        raise FileNotFoundError(argv[0])

    with (
        pytest.raises(TargetError, match=r"kubectl is not on PATH.*--private-address"),
        port_forward(Path("/tmp/kubeconfig"), start=missing),
    ):
        pytest.fail("no address without kubectl")
