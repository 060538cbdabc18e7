"""The rendered repositories: complete, valid, placed correctly, deterministic, incremental."""

import dataclasses
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from hybrid.config import load_stack_config
from hybrid.manifest import Manifest, load_verified
from hybrid.models import PRIVATE_ONLY_MODELS
from hybrid.paths import MODEL_REPO, TARGETS
from modelkit.artifacts import ENCODER_ONNX, MINILM
from modelkit.build import BuildResult, build
from modelkit.errors import PlacementError
from modelkit.placement import expand, site_models
from modelkit.render import RenderInputs, TargetPlan, plan_target, plans_folder
from modelkit.triton_config import CONFIG_NAME, read_config
from modelkit.tuning import GPU_TUNING, LOCAL_LENGTH_BUCKETS, LOCAL_TUNING
from modelkit.validate import validate_repository

SITES = ("public", "private")


def _config(root: Path, model: str) -> mc.ModelConfig:
    return read_config(root / model / CONFIG_NAME, model)


def test_every_target_is_rendered_with_a_manifest_that_matches_its_files(built, repos) -> None:
    assert sorted(repos) == sorted(TARGETS)
    for target, root in repos.items():
        manifest = load_verified(root)  # sha256 and size of every file, nothing unlisted
        assert manifest.target == target and manifest.stack == "dev"
        on_disk = Manifest.of_directory(root, target=target, stack="dev")
        assert (manifest.models, manifest.files) == (on_disk.models, on_disk.files), target
        steps = () if target == "local" else ("tokenizer", "minilm_encoder")  # fused on local
        assert manifest.calls["text_embedding"] == steps, target
        profiled = set() if target == "local" else {"minilm_encoder"}
        assert set(manifest.profiles) == profiled, target


def test_every_config_parses_and_validates(repos) -> None:
    for root in repos.values():
        configs = validate_repository(root)
        assert set(configs) == set(Manifest.read(root).models)
        for name, config in configs.items():
            assert isinstance(config, mc.ModelConfig) and config.name == name


def test_local_target_serves_everything_through_the_python_backend(repos) -> None:
    root = repos["local"]
    assert Manifest.read(root).models == ("ctr_ranker", "text_embedding")
    assert set(LOCAL_TUNING) == {"ctr_ranker", "text_embedding"}
    for model, tuning in LOCAL_TUNING.items():
        config = _config(root, model)
        assert config.backend == "python" and not config.platform
        (group,) = config.instance_group
        assert group.kind == mc.ModelInstanceGroup.KIND_CPU and group.count == tuning.instances
        assert config.HasField("dynamic_batching"), model
        batching = config.dynamic_batching
        assert list(batching.preferred_batch_size) == list(tuning.preferred_batch_sizes)
        assert batching.max_queue_delay_microseconds == tuning.max_queue_delay_us
    assert (root / "ctr_ranker/1/model.pt").is_file()


def test_local_text_embedding_is_one_model_that_tokenizes_and_encodes(repos) -> None:
    """No ensemble hops on CPU: the tokenizer's and the encoder's parameters in one config."""
    root = repos["local"]
    config = _config(root, "text_embedding")
    assert not config.HasField("ensemble_scheduling")
    params = {key: value.string_value for key, value in config.parameters.items()}
    assert params == {
        "tokenizer_file": "tokenizer.json",
        "max_sequence_length": "128",
        "length_buckets": ",".join(map(str, LOCAL_LENGTH_BUCKETS)),
        "onnx_file": ENCODER_ONNX,
        "intra_op_threads": str(LOCAL_TUNING["text_embedding"].threads),
        "inter_op_threads": "1",
        "intra_op_spin_us": str(LOCAL_TUNING["text_embedding"].spin_us),
    }
    files = {p.name for p in (root / "text_embedding/1").iterdir()}
    assert {"model.py", "minilm_steps.py", "tokenizer.json", ENCODER_ONNX} <= files
    gpu_files = {p.name for p in (repos["public"] / "text_embedding/1").iterdir()}
    assert gpu_files == {"version.txt"}, "the GPU ensemble ships no code"


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
    """Same name, inputs and outputs on every target; an ensemble on the GPU targets."""
    for target, root in repos.items():
        config = _config(root, "text_embedding")
        assert config.max_batch_size > 0
        (text,) = config.input
        assert (text.name, text.data_type, list(text.dims)) == ("TEXT", mc.TYPE_STRING, [1])
        (embedding,) = config.output
        assert (embedding.name, embedding.data_type, list(embedding.dims)) == (
            "EMBEDDING",
            mc.TYPE_FP32,
            [384],
        )
        if target == "local":
            assert config.backend == "python" and not config.platform
            continue
        assert config.platform == "ensemble"
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
    assert expand(["text_embedding", "ctr_ranker"], local=True) == ("ctr_ranker", "text_embedding")
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


def _encoder_of(plan: TargetPlan) -> mc.ModelConfig:
    data = plan.files[f"minilm_encoder/{CONFIG_NAME}"].data
    assert data is not None
    return text_format.Parse(data.decode(), mc.ModelConfig())


def _with_tensorrt(stack: str, enabled: bool):
    config = load_stack_config(stack)
    return dataclasses.replace(
        config, serving=dataclasses.replace(config.serving, tensorrt=enabled)
    )


@pytest.mark.parametrize("enabled", [False, True], ids=["tensorrt-off", "tensorrt-on"])
@pytest.mark.parametrize(
    "have", [(), ("8.9",), ("8.6",), ("8.6", "8.9")], ids=["none", "l4", "a10g", "every-gpu"]
)
def test_tensorrt_is_served_only_when_enabled_and_every_gpu_of_the_site_has_a_plan(
    built, tmp_path, enabled, have
) -> None:
    """prod's public pools are L4 (8.9) and A10G (8.6); anything less keeps ONNX."""
    onnx = built.artifacts[MINILM].files[ENCODER_ONNX]
    folder = plans_folder(tmp_path / "plans", onnx)
    folder.mkdir(parents=True)
    for capability in have:
        (folder / f"model_sm{capability.replace('.', '')}.plan").write_bytes(b"engine")
    config = _with_tensorrt("prod", enabled)
    inputs = RenderInputs(MODEL_REPO, built.artifacts, tmp_path / "plans")
    plan = plan_target("public", config, inputs)
    encoder = _encoder_of(plan)
    rendered = sorted(name for name in plan.files if name.endswith(".plan"))
    assert "minilm_encoder/1/model.onnx" in plan.files  # always: the build Jobs read it
    if enabled and len(have) == 2:
        assert encoder.platform == "tensorrt_plan"
        assert dict(encoder.cc_model_filenames) == {
            "8.6": "model_sm86.plan",
            "8.9": "model_sm89.plan",
        }
        assert rendered == ["minilm_encoder/1/model_sm86.plan", "minilm_encoder/1/model_sm89.plan"]
    else:
        assert encoder.platform == "onnxruntime_onnx"
        assert not encoder.cc_model_filenames and rendered == []
    local = plan_target("local", config, inputs).files  # never plans: it fuses the encoder
    assert not [name for name in local if name.startswith("minilm_encoder/") or ".plan" in name]


def test_plans_of_another_graph_are_never_served(built, tmp_path) -> None:
    stale = tmp_path / "plans" / ("0" * 16)  # filed under a graph that is not the current one
    stale.mkdir(parents=True)
    for sm in ("86", "89"):
        (stale / f"model_sm{sm}.plan").write_bytes(b"engine")
    inputs = RenderInputs(MODEL_REPO, built.artifacts, tmp_path / "plans")
    plan = plan_target("public", _with_tensorrt("prod", True), inputs)
    assert _encoder_of(plan).platform == "onnxruntime_onnx"


def test_a_tensorrt_site_renders_validates_and_keeps_onnx_where_the_stack_keeps_it_off(
    built, tmp_path
) -> None:
    onnx = built.artifacts[MINILM].files[ENCODER_ONNX]
    plans = plans_folder(tmp_path / "plans", onnx)
    plans.mkdir(parents=True)
    for sm in ("75", "80", "86", "89"):  # dev: t4 / l4; prod: l4 + a10g / l4 + a100
        (plans / f"model_sm{sm}.plan").write_bytes(f"sm{sm} engine".encode())
    prod = build("prod", targets=list(SITES), out=tmp_path / "prod", plans_dir=tmp_path / "plans")
    for target in prod.targets:  # written, validated (cc_model_filenames files exist), hashed
        encoder = _config(target.path, "minilm_encoder")
        assert encoder.platform == "tensorrt_plan"
        for name in encoder.cc_model_filenames.values():
            assert f"minilm_encoder/1/{name}" in target.manifest.files
    dev = build("dev", targets=list(SITES), out=tmp_path / "dev", plans_dir=tmp_path / "plans")
    for target in dev.targets:  # dev keeps hybrid:tensorrtPlans off: the plans are ignored
        assert _config(target.path, "minilm_encoder").platform == "onnxruntime_onnx"
        assert not [name for name in target.manifest.files if name.endswith(".plan")]
