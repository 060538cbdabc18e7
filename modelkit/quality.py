"""The quality gate of a compressed encoder: how close it stays to the FP32 one.

Both encoders embed the same evaluation texts in the same padded batches as the served
path produces them; the gate then asks three things of the candidate:

- every embedding points where FP32's does (minimum cosine), and on average very closely
  (mean cosine);
- search returns the same neighbours: for each query, the share of FP32's 10 nearest
  documents that are also among the candidate's 10 nearest (mean over the queries).

A candidate below any threshold is refused with every measured number.
"""

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelkit.errors import BuildError
from modelkit.minilm_steps import ENCODER_INPUTS
from modelkit.texts import TextSets
from modelkit.tokenization import load_tokenizer, tokenize

MIN_COSINE = 0.99
MEAN_COSINE = 0.998
TOP_K = 10
TOP_K_AGREEMENT = 0.95
BATCH = 32
"""Texts per encoder call, each batch padded to its longest text (as Triton's are)."""

Embed = Callable[[Sequence[str]], np.ndarray]
"""Texts -> one embedding per text (rows)."""


@dataclass(frozen=True)
class Quality:
    min_cosine: float
    mean_cosine: float
    top10_agreement: float
    texts: int
    queries: int
    documents: int

    def failures(self) -> list[str]:
        """One line per missed threshold, with the measured number."""
        checks = (
            ("minimum cosine", self.min_cosine, MIN_COSINE),
            ("mean cosine", self.mean_cosine, MEAN_COSINE),
            (f"top-{TOP_K} retrieval agreement", self.top10_agreement, TOP_K_AGREEMENT),
        )
        return [
            f"{what} {value:.5f} < {threshold}"
            for what, value, threshold in checks
            if value < threshold
        ]

    def facts(self) -> dict[str, Any]:
        return {
            **{k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()},
            "thresholds": {
                "min_cosine": MIN_COSINE,
                "mean_cosine": MEAN_COSINE,
                "top10_agreement": TOP_K_AGREEMENT,
            },
        }


def onnx_embedder(model: Path) -> Embed:
    """The encoder graph at ``model`` on onnxruntime, behind the tokenizer.

    One thread: the gate measures fidelity, not speed, and a single thread never spins
    waiting for another, so a build on a loaded machine wastes none of its CPU share.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, ["CPUExecutionProvider"])
    tokenizer = load_tokenizer()

    def embed(texts: Sequence[str]) -> np.ndarray:
        ids, mask = tokenize(tokenizer, list(texts))
        (rows,) = session.run(None, dict(zip(ENCODER_INPUTS, (ids, mask), strict=True)))
        return np.asarray(rows)

    return embed


def _order(texts: Sequence[str]) -> list[int]:
    """Shortest first: batches of similar lengths pad little, as the served length buckets."""
    return sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))


def batches(texts: Sequence[str]) -> list[list[str]]:
    """The texts in encoder calls of BATCH, each padded to its longest text."""
    order = _order(texts)
    return [[texts[i] for i in order[at : at + BATCH]] for at in range(0, len(order), BATCH)]


def feeds(texts: Sequence[str]) -> list[dict[str, np.ndarray]]:
    """The encoder graph's inputs for ``texts`` in ``batches`` (calibration passes)."""
    tokenizer = load_tokenizer()
    return [
        dict(zip(ENCODER_INPUTS, tokenize(tokenizer, batch), strict=True))
        for batch in batches(texts)
    ]


def embed_all(embed: Embed, texts: Sequence[str]) -> np.ndarray:
    """Every text embedded in ``batches``, returned in the order of ``texts``."""
    rows = np.concatenate([embed(batch) for batch in batches(texts)])
    embeddings = np.empty_like(rows)
    embeddings[_order(texts)] = rows
    return embeddings


def cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Row-wise cosine; a row that is not finite counts as -1 (as wrong as it gets)."""
    found = np.sum(reference * candidate, axis=1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    )
    return np.nan_to_num(found, nan=-1.0, posinf=-1.0, neginf=-1.0)


def measure(reference: np.ndarray, candidate: np.ndarray, queries: int) -> Quality:
    """Compare two embeddings of the same texts: the first ``queries`` rows are the queries,
    the rest the documents they are searched against."""
    found = cosines(reference, candidate)
    agreement = np.mean(
        [
            len(set(want) & set(got)) / TOP_K
            for want, got in zip(
                _nearest(reference[:queries], reference[queries:]),
                _nearest(candidate[:queries], candidate[queries:]),
                strict=True,
            )
        ]
    )
    return Quality(
        min_cosine=float(found.min()),
        mean_cosine=float(found.mean()),
        top10_agreement=float(agreement),
        texts=len(reference),
        queries=queries,
        documents=len(reference) - queries,
    )


def evaluate(reference: Embed, candidate: Embed, sets: TextSets) -> Quality:
    texts = sets.evaluation
    return measure(embed_all(reference, texts), embed_all(candidate, texts), len(sets.queries))


def check(quality: Quality, what: str) -> None:
    """Raise BuildError naming every missed threshold (nothing is released then)."""
    failures = quality.failures()
    if failures:
        raise BuildError(
            f"{what} fails the quality gate against FP32 on {quality.texts} texts "
            f"({quality.queries} queries x {quality.documents} documents): "
            + "; ".join(failures)
            + f" (measured: minimum cosine {quality.min_cosine:.5f}, mean cosine "
            f"{quality.mean_cosine:.5f}, top-{TOP_K} agreement {quality.top10_agreement:.4f}); "
            "nothing was released"
        )


def _nearest(queries: np.ndarray, documents: np.ndarray) -> np.ndarray:
    return np.argpartition(-(queries @ documents.T), TOP_K, axis=1)[:, :TOP_K]
