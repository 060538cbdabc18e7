"""The INT8 encoder: its texts, its quality gate, the manifest's record, precision as config."""

import dataclasses
import platform
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from hybrid.config import load_stack_config
from hybrid.manifest import FileEntry, Manifest, file_sha256
from hybrid.paths import LOCAL, MODEL_REPO
from hybrid.precision import FP32, INT8
from modelkit import quality, texts
from modelkit.artifacts import ENCODER_INT8_ONNX, ENCODER_ONNX, MINILM, MINILM_INT8, RECIPES
from modelkit.build import BuildResult
from modelkit.cache import Artifact, ensure
from modelkit.errors import BuildError
from modelkit.quantize import (
    activation_ranges,
    kernel_instructions,
    quantize_encoder,
    smooth,
    weight_matmuls,
)
from modelkit.render import RenderInputs, TargetPlan, plan_target


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


def test_the_cpu_is_named_by_the_integer_instructions_its_kernels_choose_between(
    tmp_path: Path,
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu sse2 avx2 avx512_vnni ht\n")
    assert kernel_instructions(cpuinfo)[1:] == ["avx2", "avx512_vnni"]
    assert kernel_instructions(tmp_path / "none") == [platform.machine()]


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


def test_smoothing_and_the_first_token_rescale_leave_the_fp32_function_unchanged(
    built: BuildResult, sets: texts.TextSets, small: texts.TextSets, tmp_path: Path
) -> None:
    fp32 = built.artifacts[MINILM].path(ENCODER_ONNX)
    calibration = quality.feeds(sets.calibration[:64])
    rescaled = smooth(
        fp32, tmp_path / "smoothed.onnx", activation_ranges(fp32, calibration), weight_matmuls(fp32)
    )
    assert rescaled, "the first layers' [CLS] row stands out, so some rows are rescaled"
    graph = onnx.load(str(tmp_path / "smoothed.onnx")).graph
    assert sum(node.op_type == "Mul" for node in graph.node) > len(rescaled) * 2
    original, smoothed = (
        quality.onnx_embedder(fp32),
        quality.onnx_embedder(tmp_path / "smoothed.onnx"),
    )
    texts_ = list(small.queries[:64])
    found = quality.cosines(original(texts_), smoothed(texts_))
    assert found.min() > 0.99999


@pytest.fixture(scope="module")
def int8_graph(built: BuildResult, sets: texts.TextSets, tmp_path_factory) -> Path:
    """The shipped recipe's INT8 graph, smoothed on a slice of the calibration texts."""
    out = tmp_path_factory.mktemp("int8") / ENCODER_INT8_ONNX
    quantize_encoder(
        built.artifacts[MINILM].path(ENCODER_ONNX), out, quality.feeds(sets.calibration[:64])
    )
    return out


def test_the_gate_refuses_activations_quantized_with_a_wrong_scale(
    built: BuildResult, int8_graph: Path, small: texts.TextSets, tmp_path: Path
) -> None:
    fp32 = quality.onnx_embedder(built.artifacts[MINILM].path(ENCODER_ONNX))
    good = quality.evaluate(fp32, quality.onnx_embedder(int8_graph), small)
    assert good.min_cosine >= quality.MIN_COSINE, "the recipe's graph stays close on these"
    broken = _with_wrong_activation_scale(int8_graph, tmp_path / "broken.onnx", scale=0.002)
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


@pytest.fixture(scope="module")
def plans(
    built: BuildResult, int8_graph: Path, small: texts.TextSets
) -> dict[str, tuple[TargetPlan, quality.Quality]]:
    """The local target rendered per precision, with an INT8 artifact measured on the small
    set (the real one is built and gated by `make models` when a stack serves int8)."""
    fp32 = built.artifacts[MINILM]
    measured = quality.evaluate(
        quality.onnx_embedder(fp32.path(ENCODER_ONNX)), quality.onnx_embedder(int8_graph), small
    )
    entry = FileEntry(file_sha256(int8_graph), int8_graph.stat().st_size)
    int8 = Artifact(
        MINILM_INT8,
        "test",
        int8_graph.parent,
        {ENCODER_INT8_ONNX: entry},
        {
            "quality": measured.facts(),
            "recipe": {},
            "measured_on": kernel_instructions(),
            "reference": {"file": ENCODER_ONNX, "sha256": fp32.files[ENCODER_ONNX].sha256},
            "signature": fp32.facts["signature"],
        },
        built=True,
    )
    config = load_stack_config("dev")
    inputs = RenderInputs(MODEL_REPO, {**built.artifacts, MINILM_INT8: int8}, Path("no-plans"))
    return {
        precision: (
            plan_target(
                LOCAL,
                dataclasses.replace(
                    config,
                    serving=dataclasses.replace(
                        config.serving,
                        encoder_precision={**config.serving.encoder_precision, LOCAL: precision},
                    ),
                ),
                inputs,
            ),
            measured,
        )
        for precision in (FP32, INT8)
    }


def test_the_precision_changes_the_rendered_repository_and_records_the_quality(
    built: BuildResult, plans: dict[str, tuple[TargetPlan, quality.Quality]]
) -> None:
    fp32 = built.artifacts[MINILM]
    measured = plans[INT8][1]
    manifests = {precision: plan.manifest("dev") for precision, (plan, _) in plans.items()}
    assert manifests[FP32].content_hash != manifests[INT8].content_hash
    changed = {
        name
        for name in set(manifests[FP32].files) | set(manifests[INT8].files)
        if manifests[FP32].files.get(name) != manifests[INT8].files.get(name)
    }
    model = "text_embedding"  # the local target's fused model holds the graph
    assert changed == {
        f"{model}/config.pbtxt",
        f"{model}/1/{ENCODER_ONNX}",
        f"{model}/1/{ENCODER_INT8_ONNX}",
    }
    for precision, onnx_file in ((FP32, ENCODER_ONNX), (INT8, ENCODER_INT8_ONNX)):
        rendered = plans[precision][0].files[f"{model}/config.pbtxt"].data or b""
        encoder = text_format.Parse(rendered.decode(), mc.ModelConfig())
        assert encoder.parameters["onnx_file"].string_value == onnx_file
    assert manifests[FP32].quality == {}
    record = manifests[INT8].quality[model]
    path = f"{model}/1/{ENCODER_INT8_ONNX}"
    assert record["precision"] == INT8 and record["file"] == path
    assert record["sha256"] == manifests[INT8].files[path].sha256, "next to the artifact hash"
    assert record["reference"]["sha256"] == fp32.files[ENCODER_ONNX].sha256
    assert record["min_cosine"] == round(measured.min_cosine, 6)
    assert record["measured_on"] == kernel_instructions(), "the gate holds for this CPU"
    assert Manifest.build(**_fields(manifests[INT8])).quality == manifests[INT8].quality


def _fields(manifest: Manifest) -> dict:
    return {
        "target": manifest.target,
        "stack": manifest.stack,
        "models": manifest.models,
        "files": manifest.files,
        "calls": manifest.calls,
        "profiles": manifest.profiles,
        "quality": manifest.quality,
    }


@pytest.mark.local_stack
def test_a_real_triton_serves_the_int8_graph_where_the_stack_says_so(
    plans: dict[str, tuple[TargetPlan, quality.Quality]], tmp_path: Path
) -> None:
    """The local Triton binary on the rendered INT8 target: it answers with the INT8 graph
    (what this process computes from that graph, padded as served), not with FP32's."""
    import tritonclient.grpc as grpcclient

    from serving.inprocess import InProcessEmbedder
    from tests.modelkit.triton_support import serving

    repositories = {}
    for precision, (plan, _) in plans.items():
        repositories[precision] = tmp_path / precision
        plan.write(repositories[precision])
        plan.manifest("dev").write(repositories[precision])
    served_copy = tmp_path / "served"  # Triton's python stub writes bytecode next to model.py
    shutil.copytree(repositories[INT8] / "text_embedding", served_copy / "text_embedding")
    sample = ["cheap running shoes", "a waterproof hiking jacket for women"]
    with serving(served_copy, ("text_embedding",), tmp_path) as server:
        text = grpcclient.InferInput("TEXT", [len(sample), 1], "BYTES")
        text.set_data_from_numpy(np.array([[t.encode()] for t in sample], object))
        served = server.client.infer("text_embedding", [text]).as_numpy("EMBEDDING")
    as_int8, as_fp32 = (
        InProcessEmbedder(repositories[precision]).embed(sample, as_served=True)
        for precision in (INT8, FP32)
    )
    assert quality.cosines(as_int8, served).min() > 0.99999
    assert quality.cosines(as_fp32, served).max() < 0.99999, "INT8 rounding shows"
