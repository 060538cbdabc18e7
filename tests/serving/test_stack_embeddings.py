"""Each site serves exactly the rendered artifact: its embeddings equal the in-process ones."""

import numpy as np
import pytest

from serving.clients import EmbeddingClient
from serving.inprocess import InProcessEmbedder
from serving.local.state import LocalState
from serving.routing import Router

pytestmark = pytest.mark.local_stack

TEXTS = {
    "ascii": "cheap running shoes",
    "unicode": "Grüße aus Zürich — 東京の寿司 🍣, naïve café, ½ price",
    "empty": "",
    "over-long": " ".join(["lightweight trail running shoes with a wide toe box"] * 300),
}
MIN_COSINE = 0.9999


def cosines(served: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    norms = np.linalg.norm(served, axis=1) * np.linalg.norm(expected, axis=1)
    return dict(zip(TEXTS, (np.sum(served * expected, axis=1) / norms).tolist(), strict=True))


@pytest.mark.parametrize("site", ["public", "private"])
def test_each_site_matches_the_in_process_artifact(
    local_stack: LocalState, reference: InProcessEmbedder, site: str
) -> None:
    router = Router([local_stack.sites[site].endpoint])
    try:
        served = EmbeddingClient(router).embed(list(TEXTS.values()))
    finally:
        router.close()
    found = cosines(served, reference.embed(list(TEXTS.values())))
    assert min(found.values()) >= MIN_COSINE, found
    assert np.allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-4), "unit vectors"


def test_http_and_grpc_agree_and_batches_above_the_limit_are_split(
    local_stack: LocalState, reference: InProcessEmbedder
) -> None:
    texts = [f"item {i}: {TEXTS['unicode']}" for i in range(150)]  # max_batch_size is 64
    router = Router([local_stack.sites["public"].endpoint], protocol="http")
    try:
        client = EmbeddingClient(router, parallel=3)
        served = client.embed(texts)
        assert client.router.attempts[("public", "text_embedding")] == 1 + 3, "spec + 3 batches"
    finally:
        router.close()
    expected = reference.embed(texts)
    assert served.shape == (150, 384)
    assert np.min(np.sum(served * expected, axis=1)) >= MIN_COSINE
