"""Bad requests get a clear error from the server itself, and the server stays healthy."""

from collections.abc import Callable

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving.clients import EmbeddingClient
from serving.errors import RequestError
from serving.inprocess import InProcessEmbedder
from serving.local.state import LocalState
from serving.routing import Router

pytestmark = pytest.mark.local_stack

MODEL = "text_embedding"


def text_input(values: list[bytes], shape: list[int] | None = None) -> grpcclient.InferInput:
    array = np.array(values, dtype=np.object_).reshape(shape or [len(values), 1])
    tensor = grpcclient.InferInput("TEXT", list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


def wrong_dtype() -> tuple[str, list[grpcclient.InferInput]]:
    tensor = grpcclient.InferInput("TEXT", [1, 1], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 1), np.float32))
    return MODEL, [tensor]


BAD_REQUESTS: dict[str, tuple[Callable[[], tuple[str, list[grpcclient.InferInput]]], str]] = {
    "wrong dtype": (wrong_dtype, "data-type is 'FP32', but model 'text_embedding' expects 'BYTES'"),
    "wrong shape": (
        lambda: (MODEL, [text_input([b"a", b"b"], [1, 2])]),
        "Expected [-1,1], got [1,2]",
    ),
    "unknown model": (
        lambda: ("no_such_model", [text_input([b"a"])]),
        "unknown model: 'no_such_model' is not found",
    ),
    "batch above max_batch_size": (
        lambda: (MODEL, [text_input([b"a"] * 65)]),
        "batch-size must be <= 64 for 'text_embedding'",
    ),
}


@pytest.mark.parametrize("site", ["public", "private"])
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_a_clear_error_and_the_site_stays_healthy(
    local_stack: LocalState, site: str, case: str
) -> None:
    build, message = BAD_REQUESTS[case]
    model, inputs = build()
    client = local_stack.sites[site].endpoint.grpc_client()
    try:
        with pytest.raises(InferenceServerException) as raised:
            client.infer(model, inputs, client_timeout=30)
        assert message in str(raised.value), str(raised.value)
        assert client.is_server_ready() and client.is_model_ready(MODEL)
        answer = client.infer(MODEL, [text_input([b"still serving"])]).as_numpy("EMBEDDING")
        assert answer.shape == (1, 384)
    finally:
        client.close()


def test_the_router_raises_bad_requests_at_once_without_retrying(local_stack: LocalState) -> None:
    router = Router([site.endpoint for site in local_stack.sites.values()])
    try:
        with pytest.raises(RequestError, match="public refused the request to 'text_embedding'"):
            router.infer(MODEL, {"TEXT": np.ones((1, 1), np.float32)}, ["EMBEDDING"])
        assert router.attempts[("public", MODEL)] == 1
        assert router.attempts[("private", MODEL)] == 0, "not failed over: it would fail too"
    finally:
        router.close()


def test_a_one_megabyte_text(local_stack: LocalState, reference: InProcessEmbedder) -> None:
    """The client refuses it with a clear error; sent raw, the server truncates it to the
    encoder's 128 tokens, answers the in-process embedding and stays healthy."""
    huge = "trail running shoes " * ((1 << 20) // 20 + 1)
    assert len(huge.encode()) > 1 << 20
    router = Router([local_stack.sites["public"].endpoint])
    try:
        with pytest.raises(RequestError, match="bytes; the limit is 65536"):
            EmbeddingClient(router).embed([huge])
        assert router.attempts[("public", MODEL)] <= 1, "refused before any inference"
    finally:
        router.close()
    for site in local_stack.sites.values():
        client = site.endpoint.grpc_client()
        try:
            served = client.infer(MODEL, [text_input([huge.encode()])], client_timeout=60)
            (embedding,) = served.as_numpy("EMBEDDING")
            assert float(embedding @ reference.embed([huge])[0]) >= 0.9999
            assert client.is_server_ready() and client.is_model_ready(MODEL)
        finally:
            client.close()
