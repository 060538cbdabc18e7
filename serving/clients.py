"""What applications call: text embeddings and click-through ranking, over the router.

Both clients split their input into requests no larger than the model's max_batch_size
(read from the server, never assumed) and send them through a placement-aware `Router`.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from serving.errors import RequestError
from serving.routing import ModelSpec, Router, TensorSpec

EMBEDDING_MODEL = "text_embedding"
RANKER_MODEL = "ctr_ranker"
RANKER_INPUTS = ("user_id", "item_id", "dense_features")
MAX_TEXT_BYTES = 64 * 1024
"""Longer texts are refused: the encoder reads only the first 128 tokens of a text anyway."""


class EmbeddingClient:
    """Texts in, L2-normalized embeddings out (one row per text, in order)."""

    def __init__(
        self,
        router: Router,
        model: str = EMBEDDING_MODEL,
        batch_size: int | None = None,
        parallel: int = 1,
    ) -> None:
        self.router = router
        self.model = model
        self.batch_size = batch_size
        self.parallel = parallel

    def embed(self, texts: Sequence[str], sensitive: bool = False) -> np.ndarray:
        """One row per text; `sensitive` texts are embedded on the private site only."""
        spec = self.router.spec(self.model)
        text_input = _one(spec, spec.inputs, "BYTES", "input")
        output = _one(spec, spec.outputs, "FP32", "output")
        if not texts:
            return np.zeros((0, output.shape[-1]), np.float32)
        encoded = [text.encode("utf-8") for text in texts]
        for index, data in enumerate(encoded):
            if len(data) > MAX_TEXT_BYTES:
                raise RequestError(
                    f"text {index} is {len(data)} bytes; the limit is {MAX_TEXT_BYTES} because "
                    "the encoder reads only the first 128 tokens of a text; send less."
                )

        def request(chunk: Sequence[bytes]) -> np.ndarray:
            array = np.array(chunk, dtype=np.object_)
            array = array.reshape(len(chunk), *([1] * len(text_input.shape)))
            tensors = {text_input.name: array}
            result = self.router.infer(self.model, tensors, [output.name], sensitive=sensitive)
            return result[output.name].reshape(len(chunk), -1)

        return np.concatenate(self._map(request, _chunks(encoded, self._batch(spec))))

    def similarity(self, first: str, second: str) -> float:
        """Cosine similarity of two texts."""
        a, b = self.embed([first, second])
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    def _batch(self, spec: ModelSpec) -> int:
        return _batch_size(spec, self.batch_size)

    def _map(
        self, request: Callable[[Sequence[bytes]], np.ndarray], chunks: list[Sequence[bytes]]
    ) -> list[np.ndarray]:
        if self.parallel <= 1 or len(chunks) <= 1:
            return [request(chunk) for chunk in chunks]
        with ThreadPoolExecutor(self.parallel) as pool:
            return list(pool.map(request, chunks))


class RankerClient:
    """Click probabilities for (user, item, dense features) rows; placed on private only."""

    def __init__(
        self, router: Router, model: str = RANKER_MODEL, batch_size: int | None = None
    ) -> None:
        self.router = router
        self.model = model
        self.batch_size = batch_size

    def score(
        self, user_ids: Sequence[int], item_ids: Sequence[int], dense_features: np.ndarray
    ) -> np.ndarray:
        """One click probability per row."""
        spec = self.router.spec(self.model)
        width = self._dense_width(spec)
        dense = np.asarray(dense_features, dtype=np.float32)
        rows = len(item_ids)
        if len(user_ids) != rows or dense.shape != (rows, width):
            raise RequestError(
                f"ranker rows disagree: {len(user_ids)} users, {rows} items and dense "
                f"features of shape {dense.shape}; expected ({rows}, {width})"
            )
        (output,) = spec.outputs
        scores = []
        batch = _batch_size(spec, self.batch_size)
        for start in range(0, rows, batch):
            end = start + batch
            inputs: dict[str, np.ndarray] = {
                "user_id": np.asarray(user_ids[start:end], np.int64).reshape(-1, 1),
                "item_id": np.asarray(item_ids[start:end], np.int64).reshape(-1, 1),
                "dense_features": dense[start:end],
            }
            result = self.router.infer(self.model, inputs, [output.name])
            scores.append(result[output.name].reshape(-1))
        return np.concatenate(scores) if scores else np.zeros(0, np.float32)

    def neutral_context(self, rows: int) -> np.ndarray:
        """All-zero dense features: the average context the ranker was trained around."""
        return np.zeros((rows, self._dense_width(self.router.spec(self.model))), np.float32)

    def _dense_width(self, spec: ModelSpec) -> int:
        """How many dense features a row takes; a model without the ranker's inputs is a
        caller's mistake (another model named), said as such."""
        names = {t.name: t for t in spec.inputs}
        if set(RANKER_INPUTS) - names.keys():
            raise RequestError(
                f"model '{self.model}' is not a ranker: it takes {sorted(names)}, a ranker "
                f"takes {list(RANKER_INPUTS)}; the catalog's ranker is '{RANKER_MODEL}'"
            )
        return names["dense_features"].shape[-1]

    def rank(
        self, user_id: int, item_ids: Sequence[int], dense_features: np.ndarray
    ) -> list[tuple[int, float]]:
        """The items of one user, most likely click first."""
        scores = self.score([user_id] * len(item_ids), item_ids, dense_features)
        order = np.argsort(-scores, kind="stable")
        return [(int(item_ids[i]), float(scores[i])) for i in order]


def _one(spec: ModelSpec, tensors: Sequence[TensorSpec], datatype: str, kind: str) -> TensorSpec:
    found = [t for t in tensors if t.datatype == datatype]
    if len(found) != 1:
        raise RequestError(
            f"model '{spec.name}' has {kind}s {[(t.name, t.datatype) for t in tensors]}; "
            f"this client needs exactly one {datatype} {kind}"
        )
    return found[0]


def _batch_size(spec: ModelSpec, wanted: int | None) -> int:
    limit = spec.max_batch_size
    if limit < 1:
        raise RequestError(f"model '{spec.name}' does not batch (max_batch_size 0)")
    if wanted is not None and not 1 <= wanted <= limit:
        raise RequestError(
            f"batch size {wanted} is outside 1..{limit} (max_batch_size of '{spec.name}')"
        )
    return wanted or limit


def _chunks(items: Sequence[bytes], size: int) -> list[Sequence[bytes]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
