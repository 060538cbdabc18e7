"""The checks: is every site ready, serving what is placed on it, and agreeing with the others?

Given the sites (wherever their addresses come from), it waits for each Triton to be ready,
reads its repository index against the placement, embeds one sentence on every site that
serves the encoder, ranks on every site that serves the ranker, and compares the sites'
embeddings. Every outcome is a `Check`: a site that misbehaves never raises, so the report
always says what was seen on every site.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from hybrid.cli import ExitCode
from serving.clients import EMBEDDING_MODEL, RANKER_MODEL, EmbeddingClient, RankerClient
from serving.endpoints import Endpoint
from serving.errors import ServingError, SiteUnavailableError
from serving.routing import RetryPolicy, Router

SENTENCE = "Hybrid inference: the same sentence, embedded on every site."
MIN_COSINE = 0.999
"""Lowest cosine allowed between two sites' embeddings of SENTENCE. Sites may run the encoder
on different hardware and runtimes (ONNX on one, a TensorRT plan on another), which moves the
fourth decimal at most; a different model, build or tokenizer lands far below."""
RANK_USER = 7
RANK_ITEMS = (11, 22, 33)
READY_TIMEOUT = 300.0
"""Seconds to wait for the sites: a pod on a fresh GPU node downloads and loads its models."""
POLL_SECONDS = 2.0
PROGRESS_SECONDS = 10.0
PROBE_SECONDS = 5.0
REQUEST_DEADLINE = 30.0
# gRPC words for a TLS handshake that failed on this side: waiting cannot fix it.
TLS_REFUSALS = ("handshake failed", "hostname verification", "certificate verify")


@dataclass(frozen=True)
class SiteTarget:
    """One site to check: how to reach it, and what must and must not be there."""

    endpoint: Endpoint
    """Its `models` are the folders placed on the site: each must be READY."""
    absent: tuple[str, ...] = ()
    """Models placed only on other sites: they must not even be in this site's repository."""

    @property
    def site(self) -> str:
        return self.endpoint.site


@dataclass(frozen=True)
class Check:
    site: str
    """A site, or `a/b` for a comparison of two sites."""
    check: str
    ok: bool
    detail: str
    unavailable: bool = False
    """The site did not answer at all: exit status UNAVAILABLE rather than FAILED."""
    value: float | None = None
    """The number the check is about, where there is one (the cosine of two embeddings)."""


@dataclass(frozen=True)
class SmokeReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def exit_code(self) -> int:
        if self.ok:
            return ExitCode.OK
        if any(check.unavailable for check in self.checks if not check.ok):
            return ExitCode.UNAVAILABLE
        return ExitCode.FAILED

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "sentence": SENTENCE,
            "min_cosine": MIN_COSINE,
            "checks": [asdict(check) for check in self.checks],
        }


def run_smoke(
    targets: Sequence[SiteTarget],
    *,
    timeout: float = READY_TIMEOUT,
    progress: Callable[[str], None] = lambda _: None,
) -> SmokeReport:
    """Every check on every site; `progress` hears about sites that are not ready yet."""
    ready = wait_ready(targets, timeout, progress)
    checks: list[Check] = []
    embeddings: dict[str, np.ndarray] = {}
    for target in targets:
        checks.append(ready[target.site])
        if not ready[target.site].ok:
            continue
        checks.append(placement(target))
        router = Router([target.endpoint], policy=RetryPolicy(deadline=REQUEST_DEADLINE))
        try:
            if EMBEDDING_MODEL in target.endpoint.models:
                check, vector = _embed(target.site, router)
                checks.append(check)
                if vector is not None:
                    embeddings[target.site] = vector
            if RANKER_MODEL in target.endpoint.models:
                checks.append(_rank(target.site, router))
        finally:
            router.close()
    embedders = [t.site for t in targets if EMBEDDING_MODEL in t.endpoint.models]
    checks.extend(agreement(a, b, embeddings) for a, b in combinations(embedders, 2))
    return SmokeReport(tuple(checks))


def wait_ready(
    targets: Sequence[SiteTarget], timeout: float, progress: Callable[[str], None]
) -> dict[str, Check]:
    """One `ready` check per site, after at most `timeout` seconds for all of them together.

    A TLS handshake this side refuses (wrong CA or server name) fails at once; anything
    else (connection refused, reset, models loading) is retried until the deadline.
    """
    start = time.monotonic()
    deadline = start + timeout
    results: dict[str, Check] = {}
    causes: dict[str, str] = {}
    pending = list(targets)
    next_progress = start
    while True:
        for target in list(pending):
            endpoint = target.endpoint
            budget = max(1.0, min(PROBE_SECONDS, deadline - time.monotonic()))
            cause, final = _probe(endpoint, budget)
            elapsed = time.monotonic() - start
            if cause is None:
                detail = f"{endpoint.grpc} ready after {elapsed:.1f} s ({_transport(endpoint)})"
                results[target.site] = Check(target.site, "ready", True, detail)
            elif final:
                detail = f"{endpoint.grpc} refused: {cause}{_hint(endpoint, cause)}"
                results[target.site] = Check(target.site, "ready", False, detail, unavailable=True)
            else:
                causes[target.site] = cause
                continue
            pending.remove(target)
        now = time.monotonic()
        if not pending or now >= deadline:
            break
        if now >= next_progress:
            waiting = "; ".join(f"{t.site} ({causes[t.site]})" for t in pending)
            progress(f"waiting for {waiting} [{now - start:.0f} s of {timeout:.0f} s]")
            next_progress = now + PROGRESS_SECONDS
        time.sleep(min(POLL_SECONDS, deadline - now))
    for target in pending:
        cause = causes[target.site]
        detail = (
            f"{target.endpoint.grpc} not ready within {timeout:.0f} s: "
            f"{cause}{_hint(target.endpoint, cause)}"
        )
        results[target.site] = Check(target.site, "ready", False, detail, unavailable=True)
    return {target.site: results[target.site] for target in targets}


def placement(target: SiteTarget) -> Check:
    """The repository index holds every model placed on the site, READY, and none of the
    models placed only elsewhere."""
    site = target.site
    client = target.endpoint.grpc_client()
    try:
        entries = client.get_model_repository_index(as_json=True).get("models", [])
    except InferenceServerException as error:
        detail = f"cannot read the repository index: {_short(error)}"
        return Check(site, "placement", False, detail, unavailable=True)
    finally:
        client.close()
    states = {entry["name"]: entry.get("state") or "not loaded" for entry in entries}
    problems = [
        f"{model} is placed here but "
        + (f"is {states[model]}" if model in states else "not in the repository index")
        for model in target.endpoint.models
        if states.get(model) != "READY"
    ]
    problems += [
        f"{model} must not be on {site} but is in its repository index ({states[model]})"
        for model in target.absent
        if model in states
    ]
    if problems:
        return Check(site, "placement", False, "; ".join(problems))
    detail = f"ready: {', '.join(target.endpoint.models)}"
    if target.absent:
        detail += f"; absent: {', '.join(target.absent)}"
    return Check(site, "placement", True, detail)


def _embed(site: str, router: Router) -> tuple[Check, np.ndarray | None]:
    try:
        (vector,) = EmbeddingClient(router).embed([SENTENCE])
    except ServingError as error:
        return _failed(site, EMBEDDING_MODEL, error), None
    norm = float(np.linalg.norm(vector))
    if not np.all(np.isfinite(vector)) or abs(norm - 1.0) > 1e-3:
        detail = f"the embedding is not a unit vector (norm {norm:.4f})"
        return Check(site, EMBEDDING_MODEL, False, detail), None
    return Check(site, EMBEDDING_MODEL, True, f"{vector.size} dims, norm {norm:.4f}"), vector


def _rank(site: str, router: Router) -> Check:
    try:
        ranker = RankerClient(router)
        ranking = ranker.rank(RANK_USER, RANK_ITEMS, ranker.neutral_context(len(RANK_ITEMS)))
    except ServingError as error:
        return _failed(site, RANKER_MODEL, error)
    probabilities = [p for _, p in ranking]
    if not all(0.0 <= p <= 1.0 for p in probabilities):
        return Check(site, RANKER_MODEL, False, f"p(click) outside [0, 1]: {probabilities}")
    item, probability = ranking[0]
    detail = f"user {RANK_USER}: top item {item} of {len(ranking)}, p(click) {probability:.3f}"
    return Check(site, RANKER_MODEL, True, detail)


def agreement(first: str, second: str, embeddings: dict[str, np.ndarray]) -> Check:
    """The two sites embed the same sentence the same way, within MIN_COSINE."""
    pair = f"{first}/{second}"
    missing = [site for site in (first, second) if site not in embeddings]
    if missing:
        detail = f"not compared: no embedding from {' and '.join(missing)}"
        return Check(pair, "agreement", False, detail)
    a, b = embeddings[first], embeddings[second]
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    ok = cosine >= MIN_COSINE
    detail = f"cosine {cosine:.6f} {'>=' if ok else '<'} {MIN_COSINE}"
    if not ok:
        detail += ": the sites serve different encoders; rebuild (`make models`) and redeploy"
    return Check(pair, "agreement", ok, detail, value=cosine)


def _failed(site: str, check: str, error: ServingError) -> Check:
    unavailable = isinstance(error, SiteUnavailableError)
    return Check(site, check, False, str(error), unavailable=unavailable)


def _probe(endpoint: Endpoint, timeout: float) -> tuple[str | None, bool]:
    """(why the site is not ready, whether waiting cannot help); (None, False) when ready."""
    try:
        client = endpoint.grpc_client()
    except OSError as error:
        return f"cannot read TLS material: {error}", True
    try:
        if client.is_server_ready(client_timeout=timeout):
            return None, False
        return "Triton answers but is not ready yet (models loading)", False
    except InferenceServerException as error:
        cause = _short(error)
        return cause, any(word in cause.lower() for word in TLS_REFUSALS)
    finally:
        client.close()


def _short(error: InferenceServerException) -> str:
    """gRPC's own last error, without its 'failed to connect to all addresses' preamble."""
    return str(error.message() or error).rsplit("last error: ", 1)[-1]


def _transport(endpoint: Endpoint) -> str:
    if endpoint.tls is None:
        return "plaintext"
    if endpoint.tls_server_name:
        return f"TLS, server name {endpoint.tls_server_name}"
    return "TLS"


def _hint(endpoint: Endpoint, cause: str) -> str:
    lowered = cause.lower()
    if any(word in lowered for word in TLS_REFUSALS):
        name = endpoint.tls_server_name or endpoint.grpc.rsplit(":", 1)[0]
        return (
            f". The site's certificate was not accepted: check that the CA is the one that "
            f"signed it and that it carries the name {name}"
        )
    if "socket closed" in lowered and endpoint.tls is not None:
        return (
            ". A mutual-TLS site closes the connection when it refuses the client "
            "certificate: check that the client certificate and key are the ones its CA signed"
        )
    if "socket closed" in lowered:
        return ". The site closed a plaintext connection: it may require (mutual) TLS"
    return ""
