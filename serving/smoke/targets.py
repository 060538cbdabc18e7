"""Where the smoke check finds the sites: a stack's outputs, or the local mode's state.

Either way, what each site must serve comes from the stack's model placement
(`modelkit.placement.site_models`), never from the source: a site that serves what it was
not given is caught, not believed.
"""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from hybrid.config import load_stack_config
from hybrid.sites import SITES
from hybrid.triton import GRPC_PORT_NAME, PORTS, server_name
from modelkit.placement import site_models
from serving.endpoints import Endpoint, TlsFiles
from serving.errors import TargetError
from serving.local.state import read_state, state_path
from serving.smoke.checks import SiteTarget
from serving.smoke.portforward import Starter, port_forward

OUTPUTS_COMMAND = ("pulumi", "stack", "output", "--json", "--show-secrets", "--stack")
PULUMI_TIMEOUT = 120.0
GRPC_PORT = PORTS[GRPC_PORT_NAME]
"""Triton's gRPC port on both sites' load balancers."""
PKI_OUTPUTS = ("caCertPem", "clientCertPem", "clientKeyPem")
HIDDEN = "[secret]"
"""What `pulumi stack output` prints for a secret without --show-secrets."""


def placed(
    stack: str, endpoints: Mapping[str, Endpoint], *, local: bool = False
) -> list[SiteTarget]:
    """Each site's endpoint, expected to serve exactly the models the stack places there
    (``local``: the local mode's sites, which serve the local target's folders)."""
    config = load_stack_config(stack)
    folders: dict[str, tuple[str, ...]] = {
        site: site_models(config, site, local=local) for site in SITES
    }
    everywhere = set().union(*folders.values())
    return [
        SiteTarget(
            replace(endpoint, models=folders[site]),
            absent=tuple(sorted(everywhere - set(folders[site]))),
        )
        for site, endpoint in endpoints.items()
    ]


def local_targets(folder: Path) -> list[SiteTarget]:
    """The sites `make up-local` started, with the stack placement they were started for."""
    state = read_state(folder)
    if state is None:
        raise TargetError(
            f"{state_path(folder)} does not exist: start the local mode with `make up-local`."
        )
    endpoints = {name: site.endpoint for name, site in state.sites.items()}
    return placed(state.stack, endpoints, local=True)


def read_outputs(
    stack: str,
    source: str | None = None,
    *,
    run: Callable[..., "subprocess.CompletedProcess[str]"] = subprocess.run,
    stdin: IO[str] | None = None,
) -> dict[str, Any]:
    """The stack's outputs: from `source` (a file, or `-` for stdin) or from the Pulumi CLI."""
    command = " ".join((*OUTPUTS_COMMAND, stack))
    if source == "-":
        text, origin = (stdin or sys.stdin).read(), "stdin"
    elif source:
        try:
            text, origin = Path(source).read_text(), source
        except OSError as error:
            raise TargetError(f"cannot read the stack outputs from {source}: {error}") from error
    else:
        try:
            result = run(
                [*OUTPUTS_COMMAND, stack], capture_output=True, text=True, timeout=PULUMI_TIMEOUT
            )
        except FileNotFoundError as error:
            raise TargetError(
                f"the Pulumi CLI is not on PATH; install it, or pass the output of `{command}` "
                "with --outputs FILE (or - for stdin)."
            ) from error
        except subprocess.TimeoutExpired as error:
            raise TargetError(f"`{command}` did not answer in {PULUMI_TIMEOUT:.0f} s") from error
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip() or "no output"
            raise TargetError(f"`{command}` failed (exit status {result.returncode}): {said}")
        text, origin = result.stdout, f"`{command}`"
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise TargetError(f"the stack outputs from {origin} are not JSON ({error})") from error
    if not isinstance(outputs, dict):
        raise TargetError(f"the stack outputs from {origin} are not a JSON object")
    return outputs


@contextmanager
def cloud_targets(
    outputs: Mapping[str, Any],
    stack: str,
    *,
    private_address: str | None = None,
    start: Starter = subprocess.Popen,
) -> Iterator[list[SiteTarget]]:
    """Both cloud sites while the block runs: TLS material in an owner-only temporary folder
    and, unless `private_address` is given, a port-forward to the private site."""
    values = _checked(outputs, stack, private_address)
    with tempfile.TemporaryDirectory(prefix="hybrid-smoke-") as temporary:
        folder = Path(temporary)
        tls = TlsFiles(
            ca=str(_secret_file(folder / "ca.crt", values["caCertPem"])),
            cert=str(_secret_file(folder / "client.crt", values["clientCertPem"])),
            key=str(_secret_file(folder / "client.key", values["clientKeyPem"])),
        )
        forward: AbstractContextManager[str] = (
            nullcontext(private_address)
            if private_address
            else port_forward(
                _secret_file(folder / "private-kubeconfig", values["privateKubeconfig"]),
                start=start,
            )
        )
        with forward as private:
            addresses = {"public": f"{values['public']}:{GRPC_PORT}", "private": private}
            # The public site asks for no client certificate; presenting one is harmless.
            endpoints = {
                site: Endpoint(site, address, None, tls, (), tls_server_name=server_name(site))
                for site, address in addresses.items()
            }
            yield placed(stack, endpoints)


def _checked(outputs: Mapping[str, Any], stack: str, private_address: str | None) -> dict[str, str]:
    """The outputs the check needs, as strings; every problem reported at once."""
    needed = [*PKI_OUTPUTS, "tritonEndpoints"]
    if private_address is None:
        needed.append("privateKubeconfig")
    problems: list[str] = []
    values: dict[str, str] = {}
    for key in needed:
        value = outputs.get(key)
        if value is None:
            problems.append(f"{key}: missing (run `pulumi up` with this version of the program)")
        elif value == HIDDEN:
            problems.append(f"{key}: hidden as {HIDDEN} (read the outputs with --show-secrets)")
        elif key == "tritonEndpoints":
            public = value.get("public") if isinstance(value, dict) else None
            if not public or not isinstance(public, str):
                problems.append(
                    "tritonEndpoints.public: no address (the public load balancer has none "
                    "yet: see `kubectl -n triton get service triton` on the public cluster)"
                )
            else:
                values["public"] = public
        elif not isinstance(value, str):
            problems.append(f"{key}: a {type(value).__name__}, not a string")
        else:
            values[key] = value
    problems += _pki_problems(values)
    if private_address is not None and not _is_address(private_address):
        problems.append(f"--private-address {private_address!r}: expected HOST:PORT")
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise TargetError(
            f"stack '{stack}' outputs cannot be used for the smoke check (as read by "
            f"`{' '.join((*OUTPUTS_COMMAND, stack))}`):\n{lines}"
        )
    return values


def _pki_problems(values: Mapping[str, str]) -> list[str]:
    """A bad certificate is found here, by name, rather than as a failed TLS handshake."""
    problems = []
    certificates = {}
    for key in ("caCertPem", "clientCertPem"):
        if key in values:
            try:
                certificates[key] = x509.load_pem_x509_certificate(values[key].encode())
            except ValueError:
                problems.append(f"{key}: not a PEM certificate")
    if "clientKeyPem" in values:
        try:
            private = serialization.load_pem_private_key(values["clientKeyPem"].encode(), None)
        except (ValueError, TypeError):
            problems.append("clientKeyPem: not an unencrypted PEM private key")
        else:
            client = certificates.get("clientCertPem")
            if client is not None and _public(client.public_key()) != _public(private.public_key()):
                problems.append("clientKeyPem: not the key of clientCertPem")
    return problems


def _public(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _is_address(address: str) -> bool:
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit()


def _secret_file(path: Path, content: str) -> Path:
    """Written owner-only from the first byte; the folder is removed with it afterwards."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(content)
    return path
