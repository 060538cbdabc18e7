"""The exported encoder against the transformers reference, and its semantics."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from modelkit.artifacts import ENCODER_ONNX, ENCODER_TORCHSCRIPT, MINILM
from modelkit.build import BuildResult
from modelkit.tokenization import load_tokenizer, model_dir, tokenize
from modelkit.tuning import MAX_SEQUENCE_LENGTH

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")

SENTENCES = [
    "wireless noise cancelling headphones",
    "Organic cotton T-shirt, men's size L (navy blue)",
    "",
    "   ",
    "Café crème brûlée — naïve façade, Ünïcödé straße",
    "東京のラーメン屋 🍜 and 北京烤鸭 🦆 Ωμέγα ∑",
    "over-long product description " * 120,
    "x" * 1000,
]
PRODUCT_SEARCH = [
    # (query, relevant product, unrelated product)
    (
        "wireless noise cancelling headphones",
        "Bluetooth over-ear headset with active noise cancellation",
        "stainless steel 8 inch chef's knife",
    ),
    (
        "running shoes for men",
        "men's lightweight trail running sneakers",
        "ceramic coffee mug 12 oz",
    ),
    (
        "55 inch 4k smart tv",
        '55" UHD television with HDR and streaming apps',
        "organic baby shampoo, tear free",
    ),
    (
        "cast iron skillet",
        "pre-seasoned 12-inch cast-iron frying pan",
        "kids' waterproof winter snow boots",
    ),
    (
        "waterproof laptop backpack",
        'water-resistant rucksack with padded 15.6" laptop sleeve',
        "AA alkaline batteries, 24 pack",
    ),
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """transformers' BertModel with masked mean pooling and L2 normalization, offline."""
    folder = str(model_dir())
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    batch = tokenizer(
        SENTENCES,
        padding=True,
        truncation=True,
        max_length=MAX_SEQUENCE_LENGTH,
        return_tensors="pt",
    )
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1).numpy()


@pytest.fixture(scope="module")
def tokens() -> tuple[np.ndarray, np.ndarray]:
    return tokenize(load_tokenizer(), SENTENCES)


@pytest.fixture(scope="module")
def onnx_session(built: BuildResult) -> ort.InferenceSession:
    path = built.artifacts[MINILM].path(ENCODER_ONNX)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _onnx(session: ort.InferenceSession, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _cosines(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    return np.sum(got * expected, axis=1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
    )


def test_tokenizer_matches_transformers_and_truncates_at_128(tokens) -> None:
    ids, mask = tokens
    folder = str(model_dir())
    expected = AutoTokenizer.from_pretrained(folder, local_files_only=True)(
        SENTENCES, padding=True, truncation=True, max_length=MAX_SEQUENCE_LENGTH
    )
    assert ids.tolist() == expected["input_ids"]
    assert mask.tolist() == expected["attention_mask"]
    assert ids.shape[1] == MAX_SEQUENCE_LENGTH  # the over-long texts were cut, not dropped
    assert mask[2].sum() == 2  # the empty text is [CLS] [SEP]


def test_onnx_matches_the_reference_on_every_sentence(onnx_session, tokens, reference) -> None:
    cosines = _cosines(_onnx(onnx_session, *tokens), reference)
    assert cosines.min() >= 0.9999, dict(zip(SENTENCES, cosines.round(6), strict=True))


def test_torchscript_matches_the_reference_on_every_sentence(built, tokens, reference) -> None:
    traced = torch.jit.load(str(built.artifacts[MINILM].path(ENCODER_TORCHSCRIPT)))
    with torch.inference_mode():
        got = traced(*(torch.from_numpy(t) for t in tokens)).numpy()
    cosines = _cosines(got, reference)
    assert cosines.min() >= 0.9999, dict(zip(SENTENCES, cosines.round(6), strict=True))


def test_embeddings_do_not_depend_on_padding_or_batch(onnx_session, tokens) -> None:
    """The Triton tokenizer pads to length buckets and batches requests together."""
    ids, mask = tokens
    width = MAX_SEQUENCE_LENGTH
    padded_ids = np.zeros((len(ids), width), np.int64)
    padded_mask = np.zeros((len(ids), width), np.int64)
    padded_ids[:, : ids.shape[1]], padded_mask[:, : ids.shape[1]] = ids, mask
    batch = _onnx(onnx_session, padded_ids, padded_mask)
    for row in range(len(SENTENCES)):
        length = int(mask[row].sum())
        alone = _onnx(onnx_session, ids[row : row + 1, :length], mask[row : row + 1, :length])
        assert _cosines(alone, batch[row : row + 1])[0] >= 0.9999


def test_embeddings_are_unit_vectors_of_384(onnx_session, tokens) -> None:
    embeddings = _onnx(onnx_session, *tokens)
    assert embeddings.shape == (len(SENTENCES), 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("query", "similar", "dissimilar"), PRODUCT_SEARCH)
def test_product_search_ranks_the_relevant_product_first(
    onnx_session, query: str, similar: str, dissimilar: str
) -> None:
    q, s, d = _onnx(onnx_session, *tokenize(load_tokenizer(), [query, similar, dissimilar]))
    assert q @ s > q @ d + 0.1, (float(q @ s), float(q @ d))
