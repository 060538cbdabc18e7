"""Each site serves exactly the rendered artifact: its embeddings equal the in-process ones."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serving.clients import EmbeddingClient
from serving.endpoints import PROJECT_ROOT
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


def test_the_cli_prints_the_similarity_the_library_computes(
    state_dir: Path, local_stack: LocalState, reference: InProcessEmbedder
) -> None:
    pair = ["cheap running shoes", "affordable sneakers"]
    result = subprocess.run(
        [sys.executable, "-m", "serving", "embed", "--state", str(state_dir / "state.json"),
         "--similarity", "--format", "json", *pair],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    matrix = json.loads(result.stdout)["similarity"]
    a, b = reference.embed(pair)
    assert matrix[0][1] == pytest.approx(float(a @ b), abs=1e-4)
    assert matrix[0][0] == pytest.approx(1.0, abs=1e-4)
