"""ctr_ranker: learns the planted click signal, reproducibly, and its TorchScript serves it."""

import itertools

import numpy as np
import pytest
import torch

from hybrid.paths import PROJECT_ROOT
from modelkit import ranker
from modelkit.artifacts import RANKER, RANKER_TORCHSCRIPT
from modelkit.build import BuildResult

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


def test_held_out_auc_meets_the_target(built: BuildResult) -> None:
    training = built.artifacts[RANKER].facts["training"]
    assert training["auc"] >= ranker.AUC_TARGET
    assert training["held_out_events"] == ranker.HELD_OUT_EVENTS
    assert 0.05 < training["click_rate"] < 0.95  # both classes are well represented


def test_the_docs_state_the_auc_the_build_reaches(built: BuildResult) -> None:
    """Training is deterministic, so the figures the docs quote are the build's own."""
    training = built.artifacts[RANKER].facts["training"]
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    models = " ".join((PROJECT_ROOT / "docs" / "models.md").read_text().split())
    assert f"held-out AUC {training['auc']:.2f}, build fails below {ranker.AUC_TARGET}" in readme
    assert (
        f"Held-out AUC {training['auc']:.4f} (train {training['train_auc']:.4f}) on "
        f"{training['held_out_events']:,} held-out impressions, with a click rate of "
        f"{training['click_rate']:.2f}"
    ) in models


def test_training_again_reproduces_the_built_model_exactly(built: BuildResult) -> None:
    model, report = ranker.train_ranker()
    assert report.auc == built.artifacts[RANKER].facts["training"]["auc"]
    _, held_out = ranker.synthetic_click_logs()
    scripted = torch.jit.load(str(built.artifacts[RANKER].path(RANKER_TORCHSCRIPT)))
    np.testing.assert_allclose(
        ranker.score(scripted, held_out), ranker.score(model, held_out), atol=1e-6
    )


def test_the_signal_is_real_a_shuffled_log_scores_at_chance(built: BuildResult) -> None:
    _, held_out = ranker.synthetic_click_logs()
    scripted = torch.jit.load(str(built.artifacts[RANKER].path(RANKER_TORCHSCRIPT)))
    shuffled = np.random.default_rng(0).permutation(held_out.clicked)
    assert abs(ranker.roc_auc(shuffled, ranker.score(scripted, held_out)) - 0.5) < 0.02


def test_torchscript_takes_named_inputs_and_hashes_unseen_ids(built: BuildResult) -> None:
    scripted = torch.jit.load(str(built.artifacts[RANKER].path(RANKER_TORCHSCRIPT)))
    assert [a.name for a in scripted.forward.schema.arguments[1:]] == [
        "user_id",
        "item_id",
        "dense_features",
    ]
    ids = torch.tensor([[0], [ranker.N_USERS * 7 + 3], [-5], [10**12]])
    with torch.inference_mode():
        scores = scripted(ids, ids, torch.zeros(4, ranker.N_DENSE))
    assert scores.shape == (4, 1)
    assert torch.all((scores > 0) & (scores < 1))


def test_roc_auc_equals_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(60) < 0.4
    scores = rng.integers(0, 6, 60).astype(np.float32)  # many ties
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(scores[labels], scores[~labels])
    ]
    assert ranker.roc_auc(labels.astype(np.float32), scores) == pytest.approx(np.mean(pairs))
    with pytest.raises(ValueError, match="both"):
        ranker.roc_auc(np.ones(3, np.float32), np.arange(3, dtype=np.float32))
