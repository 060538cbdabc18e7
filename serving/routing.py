"""Placement-aware routing: each request goes only to sites its model is placed on.

A model on both sites fails over to the other one when a site stops answering; a model
placed on one site (the private-only ranker) has nowhere else to go, so it fails closed
with `SiteUnavailableError` instead of ever reaching a site it is not placed on.
Transient errors (site down, deadline, overload) are retried with backoff until the
request's deadline; errors about the request itself are raised at once. A site that refuses
the connection (nothing listens there: its server is down, not slow) gets
`RetryPolicy.refused_attempts` quick attempts per call; once every site the call may use has
refused that often, the call fails at once instead of at its deadline (with the default
backoff, three attempts within about 0.3 s, plus the connection attempts themselves).

Which site a shared model tries first is the routing policy's choice (`serving.policies`:
failover by preference, or burst by live load). A request marked sensitive is cut down to
the private site before the policy sees it, so it waits there and fails closed at its
deadline. Every request is counted by site, model, reason and sensitivity with
prometheus_client (`decisions`), so one can see why a request went where it went.
"""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from serving.endpoints import DEFAULT_STATE, PROTOCOLS, Endpoint, endpoints_from_state
from serving.errors import RequestError, ServingError, SiteUnavailableError
from serving.policies import (
    FAIL_CLOSED,
    FAILOVER,
    PRIVATE_SITE,
    UNAVAILABLE,
    FailoverPolicy,
    RoutingPolicy,
)
from serving.signals import DEFAULT_INTERVAL, ClientSignals, SiteLoad, TritonMetrics

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
    refused_attempts: int = 3
    """Attempts one call makes on a site that refuses the connection before it gives that
    site up; when all its sites are given up, the call fails without waiting out its deadline."""


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
    """Sends inferences to the sites a model is placed on, in the routing policy's order."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        protocol: str = "grpc",
        policy: RetryPolicy | None = None,
        prefer: Sequence[str] = (),
        routing: RoutingPolicy | None = None,
        metrics: TritonMetrics | None = None,
        metrics_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        """`metrics`: a /metrics source of one's own (tests); by default a policy that reads
        load gets a background scraper of every endpoint that names its metrics address."""
        if protocol not in PROTOCOLS:
            raise ServingError(f"protocol '{protocol}' is not one of {list(PROTOCOLS)}")
        rank = {site: i for i, site in enumerate(prefer)}
        self.endpoints = sorted(endpoints, key=lambda e: rank.get(e.site, len(rank)))
        self.protocol = protocol
        self.policy = policy or RetryPolicy()
        self.routing = routing or FailoverPolicy()
        self.signals = ClientSignals()
        self.metrics = metrics
        if metrics is None and self.routing.uses_load:
            addresses = {e.site: e.metrics for e in self.endpoints if e.metrics}
            self.metrics = TritonMetrics(addresses, metrics_interval)
            self.metrics.start()
        self.attempts: Counter[tuple[str, str]] = Counter()
        """(site, model) -> attempts sent there: proof of where requests went."""
        self.registry = CollectorRegistry()
        self.requests = PromCounter(
            "hybrid_routed_requests",
            "Requests by the site that served them (or held them, when failed) and why.",
            ("site", "model", "reason", "sensitive"),
            registry=self.registry,
        )
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

    def load(self, site: str, model: str) -> SiteLoad:
        """Every live signal about `model` on `site`: what the routing policy reads."""
        load = self.signals.load(site, model)
        if self.metrics is None:
            return load
        return replace(load, server=self.metrics.load(site, model))

    def decisions(self) -> dict[tuple[str, str, str, bool], int]:
        """(site, model, reason, sensitive) -> requests, from the prometheus counters."""
        counts = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    labels = sample.labels
                    key = (labels["site"], labels["model"], labels["reason"])
                    counts[(*key, labels["sensitive"] == "true")] = int(sample.value)
        return counts

    def spec(self, model: str) -> ModelSpec:
        """Names, datatypes and shapes of a model, read once from a site that serves it."""
        if model not in self._specs:
            self._specs[model] = self._call(
                model, lambda client, _: _read_spec(client, model, self.protocol), counted=False
            )
        return self._specs[model]

    def infer(
        self,
        model: str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        *,
        sensitive: bool = False,
    ) -> dict[str, np.ndarray]:
        """One inference; `inputs` include the batch dimension. A sensitive one goes only
        to the private site, whatever its load, and fails closed at the deadline."""

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

        return self._call(model, send, sensitive=sensitive)

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        self._local = threading.local()

    def _call(
        self,
        model: str,
        action: Callable[[Any, float], T],
        *,
        sensitive: bool = False,
        counted: bool = True,
    ) -> T:
        sites = self.sites_for(model)
        if sensitive:
            sites = tuple(e for e in sites if e.site == PRIVATE_SITE)
            if not sites:
                raise RequestError(
                    f"model '{model}' is not placed on the {PRIVATE_SITE} site in use, the "
                    "only site a sensitive request may go to"
                )
        decision = self.routing.decide(model, sites, self.load)
        policy = self.policy
        deadline = time.monotonic() + policy.deadline
        causes: dict[str, str] = {}
        refused: Counter[str] = Counter()  # site -> connections it refused during this call
        pause = policy.backoff
        while True:
            for endpoint in self._ordered(decision.sites):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if refused[endpoint.site] >= policy.refused_attempts:
                    continue
                with self._lock:
                    self.attempts[(endpoint.site, model)] += 1
                met = self.signals.started(endpoint.site, model)
                sent = time.monotonic()
                try:
                    timeout = min(policy.attempt_timeout, remaining)
                    result = action(self._client(endpoint), timeout)
                except (InferenceServerException, OSError) as error:
                    self.signals.finished(endpoint.site, model, None, met)
                    if not _transient(error):
                        raise RequestError(
                            f"{endpoint.site} refused the request to '{model}': {_message(error)}"
                        ) from error
                    causes[endpoint.site] = _message(error)
                    if _refused(error):
                        refused[endpoint.site] += 1
                    with self._lock:
                        self._down_until[endpoint.site] = time.monotonic() + policy.cooldown
                    continue
                self.signals.finished(endpoint.site, model, time.monotonic() - sent, met)
                with self._lock:
                    self._down_until.pop(endpoint.site, None)
                if counted:
                    first = endpoint is decision.sites[0]
                    reason = decision.reason if first else FAILOVER
                    self._count(endpoint.site, model, reason, sensitive)
                return result
            remaining = deadline - time.monotonic()
            down = all(refused[e.site] >= policy.refused_attempts for e in sites)
            if remaining <= 0 or down:
                held = tuple(e.site for e in sites)
                kept = held == (PRIVATE_SITE,)
                if counted:
                    reason = FAIL_CLOSED if kept else UNAVAILABLE
                    self._count("+".join(held), model, reason, sensitive)
                raise SiteUnavailableError(
                    model, held, causes, sensitive=sensitive, refused=down and remaining > 0
                )
            time.sleep(min(pause * (1 + random.random()), remaining, policy.max_backoff))
            pause *= 2

    def _count(self, site: str, model: str, reason: str, sensitive: bool) -> None:
        self.requests.labels(site, model, reason, str(sensitive).lower()).inc()

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


def _refused(error: Exception) -> bool:
    """Nothing listens where the site should be: gRPC says so in its UNAVAILABLE message,
    the HTTP client raises the socket's own error."""
    if isinstance(error, ConnectionRefusedError):
        return True
    return (
        isinstance(error, InferenceServerException)
        and str(error.status() or "") == "StatusCode.UNAVAILABLE"
        and "connection refused" in str(error.message() or "").lower()
    )


def _message(error: Exception) -> str:
    if isinstance(error, InferenceServerException):
        return str(error.message() or error)
    return f"{type(error).__name__}: {error}"
