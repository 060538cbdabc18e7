"""Placement-aware routing against scripted sites: no server needed, every path exercised."""

import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from serving.clients import EmbeddingClient, RankerClient
from serving.endpoints import Endpoint
from serving.errors import RequestError, ServingError, SiteUnavailableError
from serving.policies import BurstPolicy
from serving.routing import RetryPolicy, Router
from serving.signals import TritonMetrics
from tests.serving.test_signals import triton_text

EMBEDDING_STEPS = ("tokenizer", "minilm_encoder", "text_embedding")
FAST = RetryPolicy(deadline=0.5, attempt_timeout=0.2, backoff=0.01, max_backoff=0.05)
REFUSED_BOUND = 5.0
"""Seconds a call may take when every site refuses connections, against a 30 s deadline:
three attempts with the default backoff take about 0.3 s on an idle machine; the rest is
slack for a starved one (at load 8 on two cores, one refused HTTP attempt took 0.7 s)."""
SLO = {"text_embedding": 200}


class FakeSite:
    """A Triton site whose behaviour the test scripts: 'ok', 'down' (refuses connections),
    'slow' (never answers in time) or 'refuse' (refuses the request itself)."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.mode = "ok"
        self.calls: list[tuple[str, int]] = []

    def infer(self, model, inputs, outputs=None, client_timeout=None):
        assert client_timeout is not None and client_timeout <= FAST.attempt_timeout
        if self.mode == "down":
            raise InferenceServerException(
                "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
                "Failed to connect to remote host: Connection refused",
                status="StatusCode.UNAVAILABLE",
            )
        if self.mode == "slow":
            raise InferenceServerException(
                "Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"
            )
        if self.mode == "refuse":
            raise InferenceServerException(
                "unexpected datatype", status="StatusCode.INVALID_ARGUMENT"
            )
        rows = inputs[0].shape()[0]
        self.calls.append((model, rows))
        return FakeResult(self.site, rows)

    def get_model_metadata(self, model, as_json=False):
        if model == "ctr_ranker":
            inputs = [
                {"name": "user_id", "datatype": "INT64", "shape": [-1, 1]},
                {"name": "item_id", "datatype": "INT64", "shape": [-1, 1]},
                {"name": "dense_features", "datatype": "FP32", "shape": [-1, 8]},
            ]
            outputs = [{"name": "click_probability", "datatype": "FP32", "shape": [-1, 1]}]
        else:
            inputs = [{"name": "TEXT", "datatype": "BYTES", "shape": [-1, 1]}]
            outputs = [{"name": "EMBEDDING", "datatype": "FP32", "shape": [-1, 4]}]
        return {"inputs": inputs, "outputs": outputs}

    def get_model_config(self, model, as_json=False):
        return {"config": {"max_batch_size": 4}}

    def close(self) -> None:
        pass


class FakeResult:
    def __init__(self, site: str, rows: int) -> None:
        self.value = 1.0 if site == "public" else 2.0
        self.rows = rows

    def as_numpy(self, name: str) -> np.ndarray:
        if name == "click_probability":
            return np.linspace(0.1, 0.9, self.rows, dtype=np.float32).reshape(-1, 1)
        return np.full((self.rows, 4), self.value, np.float32)


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, FakeSite]]:
    fakes = {"public": FakeSite("public"), "private": FakeSite("private")}
    monkeypatch.setattr(Endpoint, "grpc_client", lambda self: fakes[self.site])
    yield fakes


def router(policy: RetryPolicy = FAST, **options: object) -> Router:
    endpoints = [
        Endpoint("public", "127.0.0.1:1", "127.0.0.1:2", None, EMBEDDING_STEPS),
        Endpoint("private", "127.0.0.1:3", None, None, (*EMBEDDING_STEPS, "ctr_ranker")),
    ]
    return Router(endpoints, policy=policy, **options)  # type: ignore[arg-type]


def test_embeddings_are_batched_within_max_batch_size(sites: dict[str, FakeSite]) -> None:
    embeddings = EmbeddingClient(router()).embed([f"text {i}" for i in range(10)])
    assert embeddings.shape == (10, 4)
    assert [rows for _, rows in sites["public"].calls] == [4, 4, 2]


def test_a_shared_model_fails_over_to_the_other_site(sites: dict[str, FakeSite]) -> None:
    client = EmbeddingClient(router())
    assert np.all(client.embed(["warm"]) == 1.0), "public comes first by default"
    attempts = client.router.attempts
    before = attempts[("public", "text_embedding")]
    sites["public"].mode = "down"
    embeddings = client.embed(["a", "b"])
    assert np.all(embeddings == 2.0), "answered by private"
    assert attempts[("public", "text_embedding")] == before + 1
    client.embed(["c"])
    assert attempts[("public", "text_embedding")] == before + 1, "a failed site is tried last"


def test_prefer_changes_the_first_site(sites: dict[str, FakeSite]) -> None:
    embeddings = EmbeddingClient(router(prefer=["private"])).embed(["a"])
    assert np.all(embeddings == 2.0)
    assert not sites["public"].calls


def test_a_private_only_model_never_reaches_public(sites: dict[str, FakeSite]) -> None:
    ranker = RankerClient(router(prefer=["public"]))
    ranking = ranker.rank(7, [1, 2, 3], ranker.neutral_context(3))
    assert [item for item, _ in ranking] == [3, 2, 1]
    sites["private"].mode = "down"
    with pytest.raises(SiteUnavailableError) as raised:
        ranker.rank(7, [1, 2, 3], ranker.neutral_context(3))
    assert "placed only there; never sent elsewhere" in str(raised.value)
    assert raised.value.sites == ("private",)
    assert ranker.router.attempts[("public", "ctr_ranker")] == 0
    assert not sites["public"].calls


def test_both_sites_slow_ends_at_the_deadline(sites: dict[str, FakeSite]) -> None:
    sites["public"].mode = sites["private"].mode = "slow"
    client = router()
    started = time.monotonic()
    with pytest.raises(SiteUnavailableError) as raised:
        embed(client)
    assert time.monotonic() - started >= FAST.deadline, "a slow site is waited for"
    assert set(raised.value.causes) == {"public", "private"}
    assert client.attempts[("public", "text_embedding")] >= 2, "retried with backoff"


def test_both_sites_refusing_fail_without_waiting_for_the_deadline(
    sites: dict[str, FakeSite],
) -> None:
    sites["public"].mode = sites["private"].mode = "down"
    client = router(policy=replace(FAST, deadline=30.0))
    started = time.monotonic()
    with pytest.raises(SiteUnavailableError) as raised:
        embed(client)
    assert time.monotonic() - started < REFUSED_BOUND
    assert set(raised.value.causes) == {"public", "private"}
    assert "Connection refused" in raised.value.causes["private"]
    for site in ("public", "private"):
        assert client.attempts[(site, "text_embedding")] == FAST.refused_attempts


def test_a_refused_request_is_not_retried(sites: dict[str, FakeSite]) -> None:
    client = EmbeddingClient(router())
    client.embed(["warm"])
    sites["public"].mode = "refuse"
    with pytest.raises(RequestError, match="public refused the request to 'text_embedding'"):
        client.embed(["a"])
    assert client.router.attempts[("private", "text_embedding")] == 0


def test_unknown_models_and_bad_arguments_are_clear(sites: dict[str, FakeSite]) -> None:
    with pytest.raises(RequestError, match="'nope' is not placed on any site in use"):
        EmbeddingClient(router(), model="nope").embed(["a"])
    with pytest.raises(RequestError, match=r"batch size 9 is outside 1\.\.4"):
        EmbeddingClient(router(), batch_size=9).embed(["a"])
    ranker = RankerClient(router())
    with pytest.raises(RequestError, match=r"expected \(2, 8\)"):
        ranker.score([1, 1], [1, 2], np.zeros((2, 3), np.float32))
    with pytest.raises(ServingError, match="protocol 'udp'"):
        router(protocol="udp")


def test_oversized_texts_are_refused_before_sending(sites: dict[str, FakeSite]) -> None:
    with pytest.raises(RequestError, match="only the first 128 tokens"):
        EmbeddingClient(router()).embed(["x" * (1 << 20)])
    assert not sites["public"].calls


def test_http_is_refused_for_a_grpc_only_site() -> None:
    endpoint = Endpoint("private", "127.0.0.1:3", None, None, ("ctr_ranker",))
    with pytest.raises(ServingError, match="serves gRPC only"):
        endpoint.http_client()


def refusing_port() -> int:
    """A port nothing listens on: bound, then closed again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_refused_connection_to_the_only_site_fails_closed_fast(protocol: str) -> None:
    """The private site down (nothing listening): `rank` fails closed well before the
    default 30 s deadline, with the usual message, and never tries public."""
    address = f"127.0.0.1:{refusing_port()}"
    http = address if protocol == "http" else None
    endpoints = [
        Endpoint("public", f"127.0.0.1:{refusing_port()}", None, None, EMBEDDING_STEPS),
        Endpoint("private", address, http, None, ("ctr_ranker",)),
    ]
    client = Router(endpoints, protocol=protocol, prefer=["public"])
    assert client.policy.deadline == 30.0
    ranker = RankerClient(client)
    started = time.monotonic()
    try:
        with pytest.raises(SiteUnavailableError) as raised:
            ranker.rank(7, [1, 2], np.zeros((2, 8), np.float32))
    finally:
        client.close()
    assert time.monotonic() - started < REFUSED_BOUND
    assert "placed only there; never sent elsewhere" in str(raised.value)
    assert "every site refused the connection, so it failed at once" in str(raised.value)
    assert "connection refused" in raised.value.causes["private"].lower()
    assert client.attempts[("private", "ctr_ranker")] == client.policy.refused_attempts
    assert client.attempts[("public", "ctr_ranker")] == 0


def busy_private(queue_ms: int) -> TritonMetrics:
    """A /metrics source whose private site reports `queue_ms` per request, scraped twice."""
    pages = iter([triton_text(0, 0, 0), triton_text(10, queue_ms * 10_000, queue_ms * 10_000)])
    metrics = TritonMetrics({"private": "127.0.0.1:9"}, fetch=lambda _: next(pages))
    metrics.scrape()
    metrics.scrape()
    return metrics


def embed(router: Router, sensitive: bool = False) -> np.ndarray:
    text = {"TEXT": np.array([[b"x"]], dtype=np.object_)}
    return router.infer("text_embedding", text, ["EMBEDDING"], sensitive=sensitive)["EMBEDDING"]


def test_burst_spills_a_busy_private_site_to_public(sites: dict[str, FakeSite]) -> None:
    calm = router(routing=BurstPolicy(SLO), metrics=busy_private(5))
    assert np.all(embed(calm) == 2.0), "private first while its wait is short"
    busy = router(routing=BurstPolicy(SLO), metrics=busy_private(300))
    assert np.all(embed(busy) == 1.0), "public once private's wait passes the threshold"
    assert busy.decisions() == {("public", "text_embedding", "burst", False): 1}
    assert calm.decisions() == {("private", "text_embedding", "preferred", False): 1}


def test_sensitive_requests_stay_private_however_busy(sites: dict[str, FakeSite]) -> None:
    busy = router(routing=BurstPolicy(SLO), metrics=busy_private(300))
    assert np.all(embed(busy, sensitive=True) == 2.0)
    sites["private"].mode = "down"
    with pytest.raises(SiteUnavailableError) as raised:
        embed(busy, sensitive=True)
    message = str(raised.value)
    assert "sensitive request was held to private (never sent elsewhere)" in message
    assert "every site refused the connection, so it failed at once" in message
    assert not sites["public"].calls, "no sensitive request reached public"
    assert busy.decisions() == {
        ("private", "text_embedding", "preferred", True): 1,
        ("private", "text_embedding", "fail_closed", True): 1,
    }
    assert busy.attempts[("public", "text_embedding")] == 0


def test_a_private_only_model_fails_closed_under_burst(sites: dict[str, FakeSite]) -> None:
    busy = router(routing=BurstPolicy(SLO), metrics=busy_private(300))
    ranker = RankerClient(busy)
    ranker.score([1], [2], ranker.neutral_context(1))
    sites["private"].mode = "down"
    with pytest.raises(SiteUnavailableError, match="placed only there"):
        ranker.score([1], [2], ranker.neutral_context(1))
    assert busy.decisions() == {
        ("private", "ctr_ranker", "preferred", False): 1,
        ("private", "ctr_ranker", "fail_closed", False): 1,
    }


def test_burst_fails_over_when_the_preferred_site_is_down(sites: dict[str, FakeSite]) -> None:
    client = router(routing=BurstPolicy(SLO), metrics=busy_private(5))
    sites["private"].mode = "down"
    assert np.all(embed(client) == 1.0)
    assert client.decisions() == {("public", "text_embedding", "failover", False): 1}


def test_the_router_counts_its_own_requests_in_flight(sites: dict[str, FakeSite]) -> None:
    client = router(routing=BurstPolicy(SLO), metrics=busy_private(5))
    seen = []
    infer = sites["private"].infer

    def observing(*args, **kwargs):
        seen.append(client.load("private", "text_embedding").in_flight)
        return infer(*args, **kwargs)

    sites["private"].infer = observing  # type: ignore[method-assign]
    embed(client)
    load = client.load("private", "text_embedding")
    assert seen == [1] and load.in_flight == 0 and load.latency_s is not None
    assert load.server is not None and load.server.request_s == pytest.approx(0.005)


def test_a_sensitive_request_for_a_public_only_set_is_refused(
    sites: dict[str, FakeSite],
) -> None:
    public_only = Router([Endpoint("public", "127.0.0.1:1", None, None, EMBEDDING_STEPS)])
    with pytest.raises(RequestError, match="the only site a sensitive request may go to"):
        embed(public_only, sensitive=True)
    assert not sites["public"].calls
