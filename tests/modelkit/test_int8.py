"""The INT8 encoder: its texts, its quality gate, the manifest's record, precision as config."""

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from hybrid.config import load_stack_config
from hybrid.manifest import Manifest
from hybrid.paths import LOCAL, MODEL_REPO
from hybrid.precision import FP32, INT8
from modelkit import quality, texts
from modelkit.artifacts import ENCODER_INT8_ONNX, ENCODER_ONNX, MINILM, MINILM_INT8, RECIPES
from modelkit.build import BuildResult
from modelkit.cache import ensure
from modelkit.errors import BuildError
from modelkit.render import RenderInputs, plan_target


@pytest.fixture(scope="module")
def sets() -> texts.TextSets:
    return texts.text_sets()


@pytest.fixture(scope="module")
def small(sets: texts.TextSets) -> texts.TextSets:
    """A slice of the real sets, quick to embed three times: both sources in each part."""
    return texts.TextSets(
        calibration=sets.calibration[:16],
        queries=sets.queries[::10],
        documents=sets.documents[::40],
    )


def test_the_texts_are_reproducible_disjoint_and_from_both_sources(sets) -> None:
    assert len(sets.evaluation) >= 2_000 and len(sets.queries) >= 500
    assert len(sets.documents) >= 10_000
    assert len(set(sets.evaluation)) == len(sets.evaluation), "no text twice"
    assert not set(sets.calibration) & set(sets.evaluation), "calibration is never evaluated"
    stdlib = set(texts.stdlib_sentences())
    assert set(sets.calibration) | set(sets.evaluation) <= stdlib | set(
        texts.product_titles(20_000) + texts.product_queries(1_000)
    ), "every text comes from one of the two sources"
    for part in (sets.calibration, sets.queries, sets.documents):
        real = sum(text in stdlib for text in part)
        assert 0.1 * len(part) <= real <= 0.6 * len(part), "both sources in every set"
    assert texts.product_titles(50) == texts.product_titles(50), "seeded"
    assert texts.product_queries(50) != texts.product_queries(50, seed=1)


def _with_wrong_activation_scale(quantized: Path, out: Path, scale: float) -> Path:
    """The INT8 graph with every activation quantized at a fixed ``scale`` (and zero point
    128) instead of the scale dynamic quantization computes from the tensor."""
    model = onnx.load(str(quantized))
    graph = model.graph
    graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.array(scale, np.float32), "wrong_scale"),
            onnx.numpy_helper.from_array(np.array(128, np.uint8), "wrong_zero_point"),
        ]
    )
    nodes = []
    for node in graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        values, scales, zero_points = node.output
        nodes += [
            onnx.helper.make_node(
                "QuantizeLinear", [node.input[0], "wrong_scale", "wrong_zero_point"], [values]
            ),
            onnx.helper.make_node("Identity", ["wrong_scale"], [scales]),
            onnx.helper.make_node("Identity", ["wrong_zero_point"], [zero_points]),
        ]
    assert len(nodes) > len(graph.node), "the INT8 graph quantizes activations"
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(out))
    return out


def test_the_gate_refuses_activations_quantized_with_a_wrong_scale(
    built: BuildResult, small: texts.TextSets, tmp_path: Path
) -> None:
    fp32 = quality.onnx_embedder(built.artifacts[MINILM].path(ENCODER_ONNX))
    shipped = built.artifacts[MINILM_INT8].path(ENCODER_INT8_ONNX)
    good = quality.evaluate(fp32, quality.onnx_embedder(shipped), small)
    assert good.failures() == [], "the shipped INT8 graph passes on these texts too"
    broken = _with_wrong_activation_scale(shipped, tmp_path / "broken.onnx", scale=0.002)
    measured = quality.evaluate(fp32, quality.onnx_embedder(broken), small)
    with pytest.raises(BuildError) as refused:
        quality.check(measured, "the INT8 encoder")
    message = str(refused.value)
    assert f"minimum cosine {measured.min_cosine:.5f} < 0.99" in message
    assert f"top-10 agreement {measured.top10_agreement:.4f}" in message
    assert "nothing was released" in message


def test_a_failed_gate_caches_nothing(
    built: BuildResult, small: texts.TextSets, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(texts, "text_sets", lambda: small)
    monkeypatch.setattr(quality, "MEAN_COSINE", 1.001)  # no quantization reaches it
    with pytest.raises(BuildError, match=r"mean cosine \S+ < 1\.001"):
        ensure(
            RECIPES[MINILM_INT8],
            tmp_path / "cache",
            lambda what, done, total: None,
            {MINILM: built.artifacts[MINILM]},
        )
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_manifest_records_the_measured_quality_next_to_the_hash(
    built: BuildResult, repos: dict[str, Path]
) -> None:
    local = Manifest.read(repos[LOCAL])
    path = f"minilm_encoder/1/{ENCODER_INT8_ONNX}"
    record = local.quality["minilm_encoder"]
    assert record["precision"] == INT8 and record["file"] == path
    assert record["sha256"] == local.files[path].sha256
    assert record["reference"]["sha256"] == built.artifacts[MINILM].files[ENCODER_ONNX].sha256
    assert record["min_cosine"] >= quality.MIN_COSINE
    assert record["mean_cosine"] >= quality.MEAN_COSINE
    assert record["top10_agreement"] >= quality.TOP_K_AGREEMENT
    assert (record["texts"], record["queries"], record["documents"]) == (10_500, 500, 10_000)
    assert record == {**record, **built.artifacts[MINILM_INT8].facts["quality"]}
    assert f"minilm_encoder/1/{ENCODER_ONNX}" not in local.files, "only the served graph"
    for site in ("public", "private"):
        assert Manifest.read(repos[site]).quality == {}, "GPU targets serve FP32 ONNX / FP16"


def test_the_precision_changes_the_rendered_repository_and_its_hash(built: BuildResult) -> None:
    config = load_stack_config("dev")
    inputs = RenderInputs(MODEL_REPO, built.artifacts, Path("no-plans"))
    plans = {
        precision: plan_target(
            LOCAL,
            dataclasses.replace(
                config,
                serving=dataclasses.replace(
                    config.serving,
                    encoder_precision={**config.serving.encoder_precision, LOCAL: precision},
                ),
            ),
            inputs,
        )
        for precision in (FP32, INT8)
    }
    manifests = {precision: plan.manifest("dev") for precision, plan in plans.items()}
    assert manifests[FP32].content_hash != manifests[INT8].content_hash
    changed = {
        name
        for name in set(manifests[FP32].files) | set(manifests[INT8].files)
        if manifests[FP32].files.get(name) != manifests[INT8].files.get(name)
    }
    assert changed == {
        "minilm_encoder/config.pbtxt",
        f"minilm_encoder/1/{ENCODER_ONNX}",
        f"minilm_encoder/1/{ENCODER_INT8_ONNX}",
    }
    assert manifests[FP32].quality == {} and set(manifests[INT8].quality) == {"minilm_encoder"}
    for precision, onnx_file in ((FP32, ENCODER_ONNX), (INT8, ENCODER_INT8_ONNX)):
        rendered = plans[precision].files["minilm_encoder/config.pbtxt"].data or b""
        encoder = text_format.Parse(rendered.decode(), mc.ModelConfig())
        assert encoder.parameters["onnx_file"].string_value == onnx_file
