"""Placement-aware routing: each request goes only to sites its model is placed on.

A model on both sites fails over to the other one when a site stops answering; a model
placed on one site (the private-only ranker) has nowhere else to go, so it fails closed
with `SiteUnavailableError` instead of ever reaching a site it is not placed on.
Transient errors (site down, deadline, overload) are retried with backoff until the
request's deadline; errors about the request itself are raised at once.
"""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from serving.endpoints import DEFAULT_STATE, PROTOCOLS, Endpoint, endpoints_from_state
from serving.errors import RequestError, ServingError, SiteUnavailableError

TRANSIENT_GRPC = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "CANCELLED"}
# A connection cut mid-call can surface as INTERNAL/UNKNOWN with one of these messages.
TRANSIENT_WORDS = ("socket closed", "connection reset", "rst_stream", "broken pipe", "eof")
TRANSIENT_HTTP = {429, 502, 503, 504}
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    deadline: float = 30.0
    """Seconds one call may take in all, retries and failover included."""
    attempt_timeout: float = 10.0
    """Seconds one attempt on one site may take."""
    backoff: float = 0.05
    """First pause after every site failed; doubles each round, with jitter."""
    max_backoff: float = 1.0
    cooldown: float = 2.0
    """Seconds a failed site is tried after the healthy ones."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    """Without the batch dimension; -1 is variable."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int


class Router:
    """Sends inferences to the sites a model is placed on, in preference order."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        protocol: str = "grpc",
        policy: RetryPolicy | None = None,
        prefer: Sequence[str] = (),
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ServingError(f"protocol '{protocol}' is not one of {list(PROTOCOLS)}")
        rank = {site: i for i, site in enumerate(prefer)}
        self.endpoints = sorted(endpoints, key=lambda e: rank.get(e.site, len(rank)))
        self.protocol = protocol
        self.policy = policy or RetryPolicy()
        self.attempts: Counter[tuple[str, str]] = Counter()
        """(site, model) -> attempts sent there: proof of where requests went."""
        self._down_until: dict[str, float] = {}
        self._specs: dict[str, ModelSpec] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: list[Any] = []

    @classmethod
    def from_state(cls, path: Path = DEFAULT_STATE, **options: Any) -> "Router":
        return cls(endpoints_from_state(path), **options)

    def sites_for(self, model: str) -> tuple[Endpoint, ...]:
        sites = tuple(e for e in self.endpoints if model in e.models)
        if not sites:
            placed = sorted({m for e in self.endpoints for m in e.models})
            where = ", ".join(e.site for e in self.endpoints)
            raise RequestError(
                f"model '{model}' is not placed on any site in use ({where}); "
                f"models placed there: {placed}"
            )
        return sites

    def spec(self, model: str) -> ModelSpec:
        """Names, datatypes and shapes of a model, read once from a site that serves it."""
        if model not in self._specs:
            self._specs[model] = self._call(
                model, lambda client, _: _read_spec(client, model, self.protocol)
            )
        return self._specs[model]

    def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """One inference; `inputs` include the batch dimension."""

        def send(client: Any, timeout: float) -> dict[str, np.ndarray]:
            module = grpcclient if self.protocol == "grpc" else httpclient
            tensors = []
            for name, array in inputs.items():
                tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
                tensor.set_data_from_numpy(array)
                tensors.append(tensor)
            wanted = [module.InferRequestedOutput(name) for name in outputs]
            if self.protocol == "grpc":
                result = client.infer(model, tensors, outputs=wanted, client_timeout=timeout)
            else:
                result = client.infer(model, tensors, outputs=wanted)
            return {name: result.as_numpy(name) for name in outputs}

        return self._call(model, send)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        self._local = threading.local()

    def _call(self, model: str, action: Callable[[Any, float], T]) -> T:
        sites = self.sites_for(model)
        policy = self.policy
        deadline = time.monotonic() + policy.deadline
        causes: dict[str, str] = {}
        pause = policy.backoff
        while True:
            for endpoint in self._ordered(sites):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with self._lock:
                    self.attempts[(endpoint.site, model)] += 1
                try:
                    timeout = min(policy.attempt_timeout, remaining)
                    result = action(self._client(endpoint), timeout)
                except (InferenceServerException, OSError) as error:
                    if not _transient(error):
                        raise RequestError(
                            f"{endpoint.site} refused the request to '{model}': {_message(error)}"
                        ) from error
                    causes[endpoint.site] = _message(error)
                    with self._lock:
                        self._down_until[endpoint.site] = time.monotonic() + policy.cooldown
                    continue
                with self._lock:
                    self._down_until.pop(endpoint.site, None)
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SiteUnavailableError(model, tuple(e.site for e in sites), causes)
            time.sleep(min(pause * (1 + random.random()), remaining, policy.max_backoff))
            pause *= 2

    def _ordered(self, sites: tuple[Endpoint, ...]) -> list[Endpoint]:
        """Healthy sites first, in preference order; sites that just failed last."""
        now = time.monotonic()
        with self._lock:
            return sorted(sites, key=lambda e: self._down_until.get(e.site, 0.0) > now)

    def _client(self, endpoint: Endpoint) -> Any:
        """One client per thread and site: tritonclient's HTTP client is not thread-safe."""
        clients = self._local.__dict__.setdefault("clients", {})
        if endpoint.site not in clients:
            if self.protocol == "grpc":
                client = endpoint.grpc_client()
            else:
                client = endpoint.http_client(self.policy.attempt_timeout)
            clients[endpoint.site] = client
            with self._lock:
                self._clients.append(client)
        return clients[endpoint.site]


def _read_spec(client: Any, model: str, protocol: str) -> ModelSpec:
    if protocol == "grpc":
        metadata = client.get_model_metadata(model, as_json=True)
        config = client.get_model_config(model, as_json=True)["config"]
    else:
        metadata = client.get_model_metadata(model)
        config = client.get_model_config(model)
    batch = int(config.get("max_batch_size", 0))

    def tensors(entries: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(
                name=entry["name"],
                datatype=entry["datatype"],
                shape=tuple(int(d) for d in entry["shape"])[1 if batch else 0 :],
            )
            for entry in entries
        )

    return ModelSpec(model, tensors(metadata["inputs"]), tensors(metadata["outputs"]), batch)


def _transient(error: Exception) -> bool:
    if isinstance(error, OSError):
        return True
    assert isinstance(error, InferenceServerException)
    status = str(error.status() or "")
    if status.startswith("StatusCode."):
        code = status.removeprefix("StatusCode.")
        message = str(error.message() or "").lower()
        return code in TRANSIENT_GRPC or (
            code in ("INTERNAL", "UNKNOWN") and any(w in message for w in TRANSIENT_WORDS)
        )
    return status.isdigit() and int(status) in TRANSIENT_HTTP


def _message(error: Exception) -> str:
    if isinstance(error, InferenceServerException):
        return str(error.message() or error)
    return f"{type(error).__name__}: {error}"
