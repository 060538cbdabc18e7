"""The smoke check's targets from stack outputs: parsing, clear errors, TLS files, the
port-forward; and the placement both sources take their expectations from."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components import triton_manifests as manifests
from hybrid.config import load_stack_config
from hybrid.triton import dns_names
from modelkit.placement import site_models
from serving.endpoints import Endpoint
from serving.errors import TargetError
from serving.local.pki import create_pki
from serving.smoke import portforward
from serving.smoke.targets import (
    GRPC_PORT,
    OUTPUTS_COMMAND,
    cloud_targets,
    placed,
    read_outputs,
    server_name,
)

COMMAND = "pulumi stack output --json --show-secrets --stack dev"
FORWARDS = (
    "import sys, time; port = sys.argv[-1].split(':')[0]; "
    "print(f'Forwarding from 127.0.0.1:{port} -> 8001', flush=True); time.sleep(60)"
)


@pytest.fixture
def outputs(tmp_path: Path) -> dict[str, Any]:
    """What `pulumi stack output --json --show-secrets` prints for a deployed stack."""
    pki = create_pki(tmp_path / "pki")
    return {
        "tritonEndpoints": {"public": "a1b2.elb.eu-west-1.amazonaws.com", "private": "10.8.0.9"},
        "caCertPem": Path(pki.client.ca).read_text(),
        "clientCertPem": Path(pki.client.cert).read_text(),
        "clientKeyPem": Path(pki.client.key).read_text(),
        "privateKubeconfig": "apiVersion: v1\nkind: Config\n",
        "publicKubeconfig": "apiVersion: v1\nkind: Config\n",
        "publicBucketName": "models",
    }


def unusable(outputs: dict[str, Any], **options: Any) -> str:
    with pytest.raises(TargetError) as raised, cloud_targets(outputs, "dev", **options):
        pytest.fail("unusable outputs gave targets")
    message = str(raised.value)
    assert COMMAND in message, "the error says where the outputs come from"
    return message


def test_the_outputs_come_from_pulumi_with_secrets_shown(outputs: dict[str, Any]) -> None:
    calls: list[list[str]] = []

    def run(argv: list[str], **options: Any) -> "subprocess.CompletedProcess[str]":
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, json.dumps(outputs), "")

    assert read_outputs("dev", run=run) == outputs
    assert calls == [COMMAND.split()] == [[*OUTPUTS_COMMAND, "dev"]]


def test_the_outputs_can_come_from_a_file_or_stdin(outputs: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    assert read_outputs("dev", str(path)) == outputs
    assert read_outputs("dev", "-", stdin=io.StringIO(json.dumps(outputs))) == outputs


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (FileNotFoundError("pulumi"), "the Pulumi CLI is not on PATH.*--outputs FILE"),
        (
            subprocess.CompletedProcess([], 255, "", "error: no stack named 'dev' found"),
            r"failed \(exit status 255\): error: no stack named 'dev' found",
        ),
        (subprocess.CompletedProcess([], 0, "Warning: not JSON", ""), "are not JSON"),
        (subprocess.CompletedProcess([], 0, "[]", ""), "are not a JSON object"),
    ],
)
def test_pulumi_failures_are_reported_in_words(failure: Any, said: str) -> None:
    def run(argv: list[str], **options: Any) -> "subprocess.CompletedProcess[str]":
        if isinstance(failure, Exception):
            raise failure
        return failure

    with pytest.raises(TargetError, match=said):
        read_outputs("dev", run=run)


def test_an_unreadable_outputs_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"cannot read the stack outputs from .*missing\.json"):
        read_outputs("dev", str(tmp_path / "missing.json"))


def test_every_missing_output_is_named_at_once(outputs: dict[str, Any]) -> None:
    del outputs["clientCertPem"], outputs["clientKeyPem"], outputs["privateKubeconfig"]
    message = unusable(outputs)
    for key in ("clientCertPem", "clientKeyPem", "privateKubeconfig"):
        assert f"  - {key}: missing" in message
    assert "caCertPem" not in message and "tritonEndpoints" not in message


def test_the_kubeconfig_is_not_needed_with_a_private_address(outputs: dict[str, Any]) -> None:
    del outputs["privateKubeconfig"]
    with cloud_targets(outputs, "dev", private_address="10.8.0.9:8001") as targets:
        assert [t.endpoint.grpc for t in targets] == [
            f"a1b2.elb.eu-west-1.amazonaws.com:{GRPC_PORT}",
            "10.8.0.9:8001",
        ]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"clientKeyPem": "[secret]"}, r"clientKeyPem: hidden as \[secret\].*--show-secrets"),
        ({"clientCertPem": "not a certificate"}, "clientCertPem: not a PEM certificate"),
        ({"caCertPem": 42}, "caCertPem: a int, not a string"),
        ({"tritonEndpoints": {"public": "", "private": "10.8.0.9"}}, "tritonEndpoints.public"),
        ({"tritonEndpoints": "elb"}, "tritonEndpoints.public: no address"),
    ],
)
def test_unusable_outputs_are_named(
    outputs: dict[str, Any], change: dict[str, Any], said: str
) -> None:
    message = unusable({**outputs, **change})
    assert re.search(said, message), message


def test_a_client_key_of_another_certificate_is_refused(
    outputs: dict[str, Any], tmp_path: Path
) -> None:
    other = create_pki(tmp_path / "other")
    message = unusable({**outputs, "clientKeyPem": Path(other.client.key).read_text()})
    assert "clientKeyPem: not the key of clientCertPem" in message


def test_a_private_address_must_be_host_and_port(outputs: dict[str, Any]) -> None:
    assert "--private-address '10.8.0.9': expected HOST:PORT" in unusable(
        outputs, private_address="10.8.0.9"
    )


def test_the_sites_use_the_stack_pki_and_the_certificate_names(
    outputs: dict[str, Any],
) -> None:
    with cloud_targets(outputs, "dev", private_address="10.8.0.9:8001") as targets:
        sites = {target.site: target.endpoint for target in targets}
        tls = sites["public"].tls
        assert tls is not None and sites["private"].tls == tls
        files = {"caCertPem": tls.ca, "clientCertPem": tls.cert, "clientKeyPem": tls.key}
        for key, path in files.items():
            assert Path(path).read_text() == outputs[key]
            assert Path(path).stat().st_mode & 0o777 == 0o600, f"{key} is owner-only"
        assert Path(tls.ca).parent.stat().st_mode & 0o777 == 0o700
        assert {site: e.tls_server_name for site, e in sites.items()} == {
            "public": "triton.public.hybrid.internal",
            "private": "triton.private.hybrid.internal",
        }
        assert all(e.http is None for e in sites.values()), "gRPC only"
    assert not Path(tls.ca).parent.exists(), "the TLS material is removed afterwards"


def test_without_an_address_the_private_site_is_port_forwarded(
    outputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def kubectl(argv: list[str], **options: Any) -> "subprocess.Popen[str]":
        kubeconfig = Path(argv[argv.index("--kubeconfig") + 1])
        seen.update(argv=argv, kubeconfig=kubeconfig, text=kubeconfig.read_text())
        seen["mode"] = kubeconfig.stat().st_mode & 0o777
        seen["process"] = subprocess.Popen([sys.executable, "-c", FORWARDS, *argv], **options)
        return seen["process"]

    with cloud_targets(outputs, "dev", start=kubectl) as targets:
        private = {target.site: target for target in targets}["private"].endpoint
        local_port = seen["argv"][-1].split(":")[0]
        assert seen["argv"] == portforward.port_forward_argv(seen["kubeconfig"], int(local_port))
        assert private.grpc == f"127.0.0.1:{local_port}"
        assert private.tls_server_name == "triton.private.hybrid.internal"
        assert (seen["text"], seen["mode"]) == (outputs["privateKubeconfig"], 0o600)
    assert seen["process"].poll() is not None, "the port-forward is stopped afterwards"
    assert not seen["kubeconfig"].exists(), "the kubeconfig is removed afterwards"


def test_each_site_expects_the_stack_placement_whatever_the_source_says() -> None:
    endpoints = {
        site: Endpoint(site, "127.0.0.1:1", None, None, ("whatever",))
        for site in ("public", "private")
    }
    targets = {target.site: target for target in placed("dev", endpoints)}
    config = load_stack_config("dev")
    for site in ("public", "private"):
        assert targets[site].endpoint.models == site_models(config, site)
    assert targets["public"].absent == ("ctr_ranker",)
    assert targets["private"].absent == ()
    local = {target.site: target for target in placed("dev", endpoints, local=True)}
    assert local["public"].endpoint.models == ("text_embedding",), "fused: no ensemble steps"
    assert local["private"].endpoint.models == ("ctr_ranker", "text_embedding")
    assert local["public"].absent == ("ctr_ranker",)


def test_the_addresses_match_what_the_stack_deploys() -> None:
    """The names the check restates (serving imports no components) are the deployed ones."""
    for site, mutual_tls in (("public", False), ("private", True)):
        assert server_name(site) in dns_names(site)
        service = manifests.load_balancer_service(
            manifests.TritonSite(
                site=site, cloud="gcp", image="triton", repository_url="gs://b/repo/h",
                content_hash="h", models=(), repository_bytes=0, accelerators=(),
                serving_cidrs=(), mutual_tls=mutual_tls, min_replicas=1, max_replicas=1,
                queue_target_us=1, startup_seconds_per_gib=1, monitoring_namespace="m",
            ),
            {},
        )  # fmt: skip
        metadata = service["metadata"]
        assert (metadata["namespace"], metadata["name"]) == (
            portforward.NAMESPACE,
            portforward.SERVICE,
        )
        ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
        assert ports[portforward.GRPC_PORT_NAME] == GRPC_PORT
