"""ctr_ranker: a small DLRM-style click model trained at build time on a synthetic click log.

The log is generated from a fixed seed with a planted signal (user/item affinity, item
popularity, dense context features), so training is reproducible and the held-out AUC
says whether the model learned the signal.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SEED = 20240611
N_USERS = 5000
N_ITEMS = 2000
N_DENSE = 8
EMBEDDING_DIM = 16
TRAIN_EVENTS = 200_000
HELD_OUT_EVENTS = 50_000
EPOCHS = 4
BATCH_SIZE = 1024
LEARNING_RATE = 3e-3
AUC_TARGET = 0.75
OUTPUT_NAME = "click_probability"


@dataclass(frozen=True)
class ClickLog:
    """One impression per row: who saw what, in which context, and whether they clicked."""

    user_id: np.ndarray  # int64 [n, 1]
    item_id: np.ndarray  # int64 [n, 1]
    dense_features: np.ndarray  # float32 [n, N_DENSE]
    clicked: np.ndarray  # float32 [n]

    def __len__(self) -> int:
        return len(self.clicked)


@dataclass(frozen=True)
class TrainingReport:
    auc: float
    """Held-out ROC AUC; the build fails below AUC_TARGET."""
    train_auc: float
    click_rate: float
    train_events: int
    held_out_events: int
    seed: int


def synthetic_click_logs(seed: int = SEED) -> tuple[ClickLog, ClickLog]:
    """A training log and a held-out log drawn from the same planted click behaviour."""
    rng = np.random.default_rng(seed)
    user_taste = rng.normal(size=(N_USERS, 4))
    item_traits = rng.normal(size=(N_ITEMS, 4))
    popularity = rng.normal(scale=0.8, size=N_ITEMS)
    context_weights = rng.normal(scale=0.6, size=N_DENSE)

    def draw(n: int) -> ClickLog:
        users = rng.integers(0, N_USERS, n)
        items = np.minimum(rng.zipf(1.3, n) - 1, N_ITEMS - 1)  # a long tail, like real catalogs
        dense = rng.normal(size=(n, N_DENSE)).astype(np.float32)
        affinity = np.einsum("nd,nd->n", user_taste[users], item_traits[items]) / 2.0
        logit = affinity + popularity[items] + dense @ context_weights - 1.0
        clicked = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
        return ClickLog(
            users[:, None].astype(np.int64),
            items[:, None].astype(np.int64),
            dense,
            clicked.astype(np.float32),
        )

    return draw(TRAIN_EVENTS), draw(HELD_OUT_EVENTS)


class DlrmRanker(nn.Module):
    """Embedding bags for ids, a bottom MLP for dense features, pairwise dot interactions
    and a top MLP, as in DLRM. Ids are hashed into the tables, so unseen ids still score."""

    def __init__(self) -> None:
        super().__init__()
        self.users = nn.EmbeddingBag(N_USERS, EMBEDDING_DIM, mode="sum")
        self.items = nn.EmbeddingBag(N_ITEMS, EMBEDDING_DIM, mode="sum")
        self.bottom = nn.Sequential(
            nn.Linear(N_DENSE, 32), nn.ReLU(), nn.Linear(32, EMBEDDING_DIM), nn.ReLU()
        )
        self.top = nn.Sequential(nn.Linear(EMBEDDING_DIM + 3, 32), nn.ReLU(), nn.Linear(32, 1))

    def logits(
        self, user_id: torch.Tensor, item_id: torch.Tensor, dense_features: torch.Tensor
    ) -> torch.Tensor:
        user = self.users(torch.remainder(user_id, self.users.num_embeddings))
        item = self.items(torch.remainder(item_id, self.items.num_embeddings))
        dense = self.bottom(dense_features)
        features = torch.stack([dense, user, item], dim=1)
        dots = torch.bmm(features, features.transpose(1, 2))
        pairs = torch.stack([dots[:, 0, 1], dots[:, 0, 2], dots[:, 1, 2]], dim=1)
        return self.top(torch.cat([dense, pairs], dim=1))

    def forward(
        self, user_id: torch.Tensor, item_id: torch.Tensor, dense_features: torch.Tensor
    ) -> torch.Tensor:
        return torch.sigmoid(self.logits(user_id, item_id, dense_features))


def train_ranker(
    seed: int = SEED, on_step: Callable[[int, int], None] | None = None
) -> tuple[DlrmRanker, TrainingReport]:
    """Train on the synthetic log, single-threaded so that every machine gets the same weights."""
    train, held_out = synthetic_click_logs(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = DlrmRanker()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        loss_fn = nn.BCEWithLogitsLoss()
        tensors = [torch.from_numpy(a) for a in (*_inputs(train), train.clicked)]
        order = torch.Generator().manual_seed(seed)
        steps_per_epoch = -(-len(train) // BATCH_SIZE)
        for epoch in range(EPOCHS):
            permutation = torch.randperm(len(train), generator=order)
            for step, start in enumerate(range(0, len(train), BATCH_SIZE)):
                batch = permutation[start : start + BATCH_SIZE]
                *inputs, labels = (t[batch] for t in tensors)
                optimizer.zero_grad()
                loss = loss_fn(model.logits(*inputs).squeeze(1), labels)
                loss.backward()
                optimizer.step()
                if on_step is not None:
                    on_step(epoch * steps_per_epoch + step + 1, EPOCHS * steps_per_epoch)
        model.eval()
        report = TrainingReport(
            auc=roc_auc(held_out.clicked, score(model, held_out)),
            train_auc=roc_auc(train.clicked, score(model, train)),
            click_rate=float(train.clicked.mean()),
            train_events=len(train),
            held_out_events=len(held_out),
            seed=seed,
        )
    finally:
        torch.set_num_threads(threads)
    return model, report


def score(model: torch.nn.Module, log: ClickLog) -> np.ndarray:
    """Click probabilities for every row of a log (works for eager and TorchScript models)."""
    with torch.inference_mode():
        return model(*(torch.from_numpy(a) for a in _inputs(log))).squeeze(1).numpy()


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic, with tied scores sharing their average rank."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    positives = labels > 0.5
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both clicks and non-clicks")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _inputs(log: ClickLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return log.user_id, log.item_id, log.dense_features
