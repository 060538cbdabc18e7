"""Placement-aware routing against scripted sites: no server needed, every path exercised."""

from collections.abc import Iterator

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from serving.clients import EmbeddingClient, RankerClient
from serving.endpoints import Endpoint
from serving.errors import RequestError, ServingError, SiteUnavailableError
from serving.routing import RetryPolicy, Router

EMBEDDING_STEPS = ("tokenizer", "minilm_encoder", "text_embedding")
FAST = RetryPolicy(deadline=0.5, attempt_timeout=0.2, backoff=0.01, max_backoff=0.05)


class FakeSite:
    """A Triton site whose behaviour the test scripts: 'ok', 'down' or 'refuse'."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.mode = "ok"
        self.calls: list[tuple[str, int]] = []

    def infer(self, model, inputs, outputs=None, client_timeout=None):
        assert client_timeout is not None and client_timeout <= FAST.attempt_timeout
        if self.mode == "down":
            raise InferenceServerException("connection refused", status="StatusCode.UNAVAILABLE")
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


def router(**options: object) -> Router:
    endpoints = [
        Endpoint("public", "127.0.0.1:1", "127.0.0.1:2", None, EMBEDDING_STEPS),
        Endpoint("private", "127.0.0.1:3", None, None, (*EMBEDDING_STEPS, "ctr_ranker")),
    ]
    return Router(endpoints, policy=FAST, **options)  # type: ignore[arg-type]


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


def test_both_sites_down_ends_at_the_deadline(sites: dict[str, FakeSite]) -> None:
    sites["public"].mode = sites["private"].mode = "down"
    client = EmbeddingClient(router(), batch_size=1)
    with pytest.raises(SiteUnavailableError) as raised:
        client.router.infer(
            "text_embedding", {"TEXT": np.array([[b"x"]], dtype=np.object_)}, ["EMBEDDING"]
        )
    assert set(raised.value.causes) == {"public", "private"}
    assert client.router.attempts[("public", "text_embedding")] >= 2, "retried with backoff"


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
