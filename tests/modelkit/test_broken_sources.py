"""A broken model source fails the build with a clear error and leaves no partial output."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hybrid.manifest import load_verified
from hybrid.paths import MODEL_REPO
from modelkit import ranker
from modelkit.artifacts import RANKER, RECIPES
from modelkit.build import build
from modelkit.cache import ensure
from modelkit.errors import BuildError, SourceError


def _edit(model: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def apply(source: Path) -> None:
        path = source / model / "config.pbtxt"
        text = path.read_text()
        assert text.count(old) >= count, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, count))

    return apply


def _remove(relative: str) -> Callable[[Path], None]:
    return lambda source: (source / relative).unlink()


BROKEN = {
    "unparsable value": (
        _edit("minilm_encoder", "max_batch_size: 64", "max_batch_size: sixty-four"),
        "minilm_encoder",
        "max_batch_size",
    ),
    "unknown dtype": (
        _edit("tokenizer", "TYPE_STRING", "TYPE_STRNG"),
        "tokenizer",
        "data_type",
    ),
    "folder and name disagree": (
        _edit("tokenizer", 'name: "tokenizer"', 'name: "tokeniser"'),
        "tokenizer",
        "name",
    ),
    "step calls a missing model": (
        _edit("text_embedding", 'model_name: "tokenizer"', 'model_name: "tokenizr"'),
        "text_embedding",
        "ensemble_scheduling.step[0].model_name",
    ),
    "step reads a tensor nobody produces": (
        _edit(
            "text_embedding",
            'key: "input_ids" value: "input_ids" }\n      input_map',
            'key: "input_ids" value: "token_ids" }\n      input_map',
        ),
        "text_embedding",
        "ensemble_scheduling.step[1].input_map[input_ids]",
    ),
    "dtypes disagree across steps": (
        _edit(
            "tokenizer",
            'name: "attention_mask"\n    data_type: TYPE_INT64',
            'name: "attention_mask"\n    data_type: TYPE_INT32',
        ),
        "text_embedding",
        "ensemble_scheduling.step[1].input_map[attention_mask]",
    ),
    "dims disagree across steps": (
        _edit("text_embedding", "dims: [ 384 ]", "dims: [ 383 ]"),
        "text_embedding",
        "output[0]",
    ),
    "config differs from the exported graph": (
        _edit("minilm_encoder", 'name: "sentence_embedding"', 'name: "embedding"'),
        "minilm_encoder",
        "output",
    ),
    "ranker dense width differs from the model": (
        _edit("ctr_ranker", "dims: [ 8 ]", "dims: [ 9 ]"),
        "ctr_ranker",
        "input[2].dims",
    ),
    "python model without model.py": (
        _remove("tokenizer/1/model.py"),
        "tokenizer",
        "default_model_filename",
    ),
    "local text_embedding without model.py": (  # the GPU ensemble ships none; local must
        _remove("text_embedding/1/model.py"),
        "text_embedding",
        "default_model_filename",
    ),
    # The whole chain shrinks (the ensemble may not exceed its steps); the GPU targets'
    # preferred sizes (16, 32, 64) then no longer fit the encoder.
    "preferred batch above max_batch_size": (
        lambda source: [
            _edit(model, "max_batch_size: 64", "max_batch_size: 4")(source)
            for model in ("text_embedding", "tokenizer", "minilm_encoder")
        ],
        "minilm_encoder",
        "dynamic_batching.preferred_batch_size",
    ),
}


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    copy = tmp_path / "model_repo"
    shutil.copytree(MODEL_REPO, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_source_names_model_and_field_and_writes_nothing(
    case: str, source: Path, tmp_path: Path
) -> None:
    breaks, model, field = BROKEN[case]
    breaks(source)
    out = tmp_path / "out" / "repos"
    out.parent.mkdir()
    with pytest.raises(SourceError) as caught:
        build("dev", source=source, out=out)
    assert (caught.value.model, caught.value.field) == (model, field), str(caught.value)
    assert f"model '{model}'" in str(caught.value) and field in str(caught.value)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no staging folder left behind


def test_a_failed_build_keeps_the_previous_repositories_intact(source: Path, tmp_path: Path):
    out = tmp_path / "repos"
    before = {t.target: t.manifest for t in build("dev", source=source, out=out).targets}
    BROKEN["dims disagree across steps"][0](source)
    with pytest.raises(SourceError):
        build("dev", source=source, out=out)
    for target, manifest in before.items():
        assert load_verified(out / target) == manifest
    assert sorted(p.name for p in out.iterdir()) == sorted(before)


def test_a_ranker_below_its_auc_target_is_refused_and_not_cached(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(ranker, "AUC_TARGET", 0.99)
    with pytest.raises(BuildError, match="AUC"):
        ensure(RECIPES[RANKER], tmp_path / "cache", lambda what, done, total: None)
    assert list((tmp_path / "cache").iterdir()) == []
