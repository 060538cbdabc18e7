"""The rendered repositories: complete, valid, placed correctly, deterministic, incremental."""

import dataclasses
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from infra.stack_config import PRIVATE_ONLY_MODELS, load_stack_config
from modelkit.artifacts import ENCODER_ONNX, MINILM
from modelkit.build import BuildResult, build
from modelkit.errors import PlacementError
from modelkit.layout import TARGETS
from modelkit.manifest import Manifest, load_verified
from modelkit.placement import expand, site_models
from modelkit.render import plans_folder
from modelkit.triton_config import CONFIG_NAME, read_config
from modelkit.tuning import GPU_TUNING, LOCAL_TUNING
from modelkit.validate import validate_repository

SITES = ("public", "private")


def _config(root: Path, model: str) -> mc.ModelConfig:
    return read_config(root / model / CONFIG_NAME, model)


def test_every_target_is_rendered_with_a_manifest_that_matches_its_files(built, repos) -> None:
    assert sorted(repos) == sorted(TARGETS)
    for target, root in repos.items():
        manifest = load_verified(root)  # sha256 and size of every file, nothing unlisted
        assert manifest.target == target and manifest.stack == "dev"
        assert manifest == Manifest.of_directory(root, target=target, stack="dev")


def test_every_config_parses_and_validates(repos) -> None:
    for root in repos.values():
        configs = validate_repository(root)
        assert set(configs) == set(Manifest.read(root).models)
        for name, config in configs.items():
            assert isinstance(config, mc.ModelConfig) and config.name == name


def test_local_target_serves_everything_through_the_python_backend(repos) -> None:
    root = repos["local"]
    assert Manifest.read(root).models == (
        "ctr_ranker",
        "minilm_encoder",
        "text_embedding",
        "tokenizer",
    )
    for model, tuning in LOCAL_TUNING.items():
        config = _config(root, model)
        assert config.backend == "python" and not config.platform
        (group,) = config.instance_group
        assert group.kind == mc.ModelInstanceGroup.KIND_CPU and group.count == tuning.instances
        batching = config.dynamic_batching
        assert list(batching.preferred_batch_size) == list(tuning.preferred_batch_sizes)
        assert batching.max_queue_delay_microseconds == tuning.max_queue_delay_us
    encoder = _config(root, "minilm_encoder")
    assert encoder.parameters["onnx_file"].string_value == "model.onnx"
    assert encoder.parameters["intra_op_threads"].string_value == str(
        LOCAL_TUNING["minilm_encoder"].threads
    )
    assert (root / "minilm_encoder/1/model.py").is_file()
    assert (root / "ctr_ranker/1/model.pt").is_file()


def test_site_targets_use_gpu_backends_batching_and_warmup(repos) -> None:
    for site in SITES:
        encoder = _config(repos[site], "minilm_encoder")
        assert encoder.platform == "onnxruntime_onnx"  # no TensorRT plans in this build
        for config in [encoder] + (
            [_config(repos[site], "ctr_ranker")] if site == "private" else []
        ):
            (group,) = config.instance_group
            assert group.kind == mc.ModelInstanceGroup.KIND_GPU
            assert list(config.dynamic_batching.preferred_batch_size) == list(
                GPU_TUNING[config.name].preferred_batch_sizes
            )
            assert {w.batch_size for w in config.model_warmup} == {1, config.max_batch_size}
        assert not (repos[site] / "minilm_encoder/1/model.py").exists()
    assert _config(repos["private"], "ctr_ranker").platform == "pytorch_libtorch"


def test_text_embedding_is_the_client_interface(repos) -> None:
    for root in repos.values():
        config = _config(root, "text_embedding")
        assert config.platform == "ensemble" and config.max_batch_size > 0
        (text,) = config.input
        assert (text.name, text.data_type, list(text.dims)) == ("TEXT", mc.TYPE_STRING, [1])
        (embedding,) = config.output
        assert (embedding.name, embedding.data_type, list(embedding.dims)) == (
            "EMBEDDING",
            mc.TYPE_FP32,
            [384],
        )
        assert [step.model_name for step in config.ensemble_scheduling.step] == [
            "tokenizer",
            "minilm_encoder",
        ]


def test_each_site_holds_only_its_models_and_nothing_private_reaches_public(repos) -> None:
    config = load_stack_config("dev")
    for site in SITES:
        assert Manifest.read(repos[site]).models == site_models(config, site)
    public = Manifest.read(repos["public"])
    private_only = set(PRIVATE_ONLY_MODELS) | set(config.private_only_models())
    assert private_only and "ctr_ranker" in private_only
    leaked = [name for name in public.files if name.split("/", 1)[0] in private_only]
    assert leaked == []
    assert not any(root.name == "ctr_ranker" for root in repos["public"].iterdir())
    assert "ctr_ranker" in Manifest.read(repos["private"]).models


def test_placement_expands_ensembles_and_refuses_private_models_on_public() -> None:
    assert expand(["text_embedding"]) == ("minilm_encoder", "text_embedding", "tokenizer")
    config = load_stack_config("dev")
    leaky = dataclasses.replace(
        config, models={"text_embedding": ("public",), "ctr_ranker": ("public", "private")}
    )
    with pytest.raises(PlacementError, match=r"private-only.*ctr_ranker.*user behaviour"):
        site_models(leaky, "public")
    with pytest.raises(PlacementError, match="no model 'nope'"):
        expand(["nope"])


def test_a_second_build_changes_nothing(built: BuildResult, repos) -> None:
    again = build("dev", out=repos["local"].parent)
    assert [t.changed for t in again.targets] == [False] * len(TARGETS)
    assert not any(artifact.built for artifact in again.artifacts.values())
    assert {t.target: t.manifest for t in again.targets} == {
        t.target: t.manifest for t in built.targets
    }


def test_rendering_is_deterministic(built: BuildResult, tmp_path: Path) -> None:
    other = build("dev", out=tmp_path / "repos")
    for first, second in zip(built.targets, other.targets, strict=True):
        assert first.manifest.files == second.manifest.files
        assert first.manifest.content_hash == second.manifest.content_hash


def test_a_damaged_target_is_rendered_again(tmp_path: Path) -> None:
    out = tmp_path / "repos"
    build("dev", targets=["public"], out=out)
    (out / "public/tokenizer/1/model.py").write_text("broken = True\n")
    result = build("dev", targets=["public"], out=out)
    assert result.targets[0].changed
    load_verified(out / "public")
    assert "broken" not in (out / "public/tokenizer/1/model.py").read_text()


def test_tensorrt_plans_switch_a_site_to_tensorrt_when_every_gpu_has_one(built, tmp_path):
    plans = plans_folder(tmp_path / "plans", built.artifacts[MINILM].files[ENCODER_ONNX])
    plans.mkdir(parents=True)
    (plans / "model_sm75.plan").write_bytes(b"t4 engine")  # dev public pool: t4 (7.5)
    result = build("dev", targets=list(SITES), out=tmp_path / "repos", plans_dir=tmp_path / "plans")
    public, private = (t.path for t in result.targets)
    encoder = _config(public, "minilm_encoder")
    assert encoder.platform == "tensorrt_plan"
    assert dict(encoder.cc_model_filenames) == {"7.5": "model_sm75.plan"}
    assert "minilm_encoder/1/model_sm75.plan" in Manifest.read(public).files
    assert "minilm_encoder/1/model.onnx" in Manifest.read(public).files  # the Job's input
    # dev private pool is an l4 (8.9) without a plan: it keeps onnxruntime
    assert _config(private, "minilm_encoder").platform == "onnxruntime_onnx"
