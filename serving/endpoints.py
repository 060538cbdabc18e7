"""Where a site answers and how to reach it: the client's view of one Triton site.

Endpoints come from the local mode's `state.json` or are given explicitly (a cloud site
behind the VPN); either way TLS material is a set of file paths.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from hybrid.paths import PROJECT_ROOT
from serving.errors import ServingError, TargetError

DEFAULT_STATE = PROJECT_ROOT / ".local" / "state.json"
PROTOCOLS = ("grpc", "http")


@dataclass(frozen=True)
class TlsFiles:
    """PEM paths one side of a mutual-TLS link needs: the peer's CA, its own cert and key."""

    ca: str
    cert: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"ca": self.ca, "cert": self.cert, "key": self.key}


@dataclass(frozen=True)
class Endpoint:
    site: str
    grpc: str
    """host:port of the gRPC endpoint."""
    http: str | None
    """host:port of the HTTP endpoint; None where the site serves gRPC only (mTLS sites)."""
    tls: TlsFiles | None
    """Client-side mutual TLS (CA of the server, client cert and key); None for plaintext."""
    models: tuple[str, ...]
    """The Triton models placed on this site: requests for any other model never go here."""
    tls_server_name: str | None = None
    """The name the server's certificate carries, where the address does not (a cloud load
    balancer's hostname, a port-forward to 127.0.0.1); None: the address itself."""
    metrics: str | None = None
    """host:port of the site's Triton /metrics (plain HTTP), for load-aware routing; None:
    the client routes on its own signals only."""

    def grpc_client(self) -> grpcclient.InferenceServerClient:
        if self.tls is None:
            return grpcclient.InferenceServerClient(self.grpc)
        channel_args = None
        if self.tls_server_name:
            # channel_args replaces tritonclient's defaults: keep its message size limits.
            channel_args = [
                ("grpc.max_send_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
                ("grpc.max_receive_message_length", grpcclient.MAX_GRPC_MESSAGE_SIZE),
                ("grpc.ssl_target_name_override", self.tls_server_name),
            ]
        return grpcclient.InferenceServerClient(
            self.grpc,
            ssl=True,
            root_certificates=self.tls.ca,
            private_key=self.tls.key,
            certificate_chain=self.tls.cert,
            channel_args=channel_args,
        )

    def http_client(self, timeout: float = 60.0) -> httpclient.InferenceServerClient:
        if self.http is None:
            raise ServingError(
                f"site '{self.site}' serves gRPC only (Triton's HTTP endpoint cannot do "
                "mutual TLS); use protocol 'grpc' for it."
            )
        return httpclient.InferenceServerClient(
            self.http, connection_timeout=timeout, network_timeout=timeout
        )


def endpoints_from_state(path: Path = DEFAULT_STATE) -> list[Endpoint]:
    """Every site recorded by `make up-local`."""
    if not path.is_file():
        raise TargetError(f"{path} does not exist: start the local mode with `make up-local`.")
    try:
        raw = json.loads(path.read_text())
        return [endpoint_from_json(site, entry) for site, entry in raw["sites"].items()]
    except (OSError, ValueError, LookupError, TypeError, AttributeError) as error:
        raise TargetError(
            f"{path} is not a local-mode state file ({type(error).__name__}: {error}); "
            "`make down-local up-local` writes a fresh one."
        ) from error


def endpoint_from_json(site: str, entry: dict[str, Any]) -> Endpoint:
    tls = entry.get("tls")
    return Endpoint(
        site=site,
        grpc=entry["grpc"],
        http=entry.get("http"),
        tls=TlsFiles(**tls) if tls else None,
        models=tuple(entry["models"]),
        metrics=entry.get("metrics"),
    )


def explicit_endpoint(
    site: str,
    grpc: str,
    models: Sequence[str],
    *,
    http: str | None = None,
    ca: str | None = None,
    cert: str | None = None,
    key: str | None = None,
) -> Endpoint:
    """An endpoint from explicit values; CA, cert and key come all together or not at all."""
    given = [value for value in (ca, cert, key) if value]
    if given and len(given) != 3:
        raise TargetError(
            f"site '{site}': mutual TLS needs all of the CA, client cert and client key "
            "paths (--ca, --cert, --key)"
        )
    for value in given:
        if not Path(value).is_file():
            raise TargetError(f"site '{site}': TLS file {value} does not exist")
    tls = TlsFiles(ca=ca, cert=cert, key=key) if ca and cert and key else None
    return Endpoint(site=site, grpc=grpc, http=http, tls=tls, models=tuple(models))
