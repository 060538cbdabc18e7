"""Render one target's Triton repository from the sources and the built artifacts.

A render is first a plan (path -> bytes or cached file, each with its sha256), so the
manifest is known before anything is written and an unchanged target is not touched.
The per-target choices live here:

- ``local``: the local Triton has only the python backend. ``text_embedding`` is one python
  model that tokenizes and runs the ONNX graph on onnxruntime (faster than TorchScript on
  CPU, see ``make bench-models``) in the same execute, instead of the ensemble's two python
  hops (``placement.FUSED_ON_LOCAL``); the ranker is a python model running its TorchScript.
  The stack's ``hybrid:encoderPrecision`` picks the FP32 graph or its gated INT8 variant;
  the INT8 file's measured quality goes into the manifest next to its hash.
- sites: ``onnxruntime_onnx`` for the encoder, or ``tensorrt_plan`` when the stack enables
  plans (``hybrid:tensorrtPlans``) and one exists for every GPU type of the site's pools;
  ``pytorch_libtorch`` for the ranker; KIND_GPU; the ``tokenizers`` package shipped inside
  the tokenizer model, since the GPU image lacks it (``modelkit/vendor.py``).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hybrid.config import StackConfig
from hybrid.gpus import GpuType
from hybrid.manifest import FileEntry, Manifest, bytes_sha256, file_sha256
from hybrid.models import DEFAULT_MODEL_PLACEMENT
from hybrid.paths import LOCAL
from hybrid.precision import INT8
from modelkit.artifacts import (
    ENCODER_INT8_ONNX,
    ENCODER_ONNX,
    MINILM,
    MINILM_INT8,
    RANKER,
    RANKER_TORCHSCRIPT,
    TOKENIZER_JSON,
)
from modelkit.cache import Artifact
from modelkit.errors import SourceError
from modelkit.minilm_steps import ENCODER_INPUTS as MINILM_ENCODER_INPUTS
from modelkit.minilm_steps import ENCODER_OUTPUT as MINILM_ENCODER_OUTPUT
from modelkit.minilm_steps import SHIPPED_AS as MINILM_STEPS
from modelkit.onnx2tensorrt import ShapeProfile, plan_filename
from modelkit.placement import expand, site_models
from modelkit.tensorrt_job import ENCODER
from modelkit.triton_config import (
    CONFIG_NAME,
    KIND_CPU,
    KIND_GPU,
    ModelConfig,
    add_zero_warmup,
    apply_tuning,
    data_type_name,
    read_config,
    render_config,
    set_parameters,
)
from modelkit.tuning import (
    GPU_TUNING,
    LENGTH_BUCKETS,
    LOCAL_LENGTH_BUCKETS,
    LOCAL_TUNING,
    MAX_SEQUENCE_LENGTH,
)
from modelkit.validate import check_signature, dims_agree
from modelkit.vendor import VENDOR_DIR, vendored_files

VERSION = "1"
LOCAL_ENCODER_RUNTIME = "onnxruntime"
"""How the local target's python-backend text_embedding runs the graph (the faster CPU format)."""
MINILM_STEPS_SOURCE = Path(__file__).with_name(MINILM_STEPS)
"""Shipped next to each python model.py that tokenizes or encodes (modelkit/minilm_steps.py)."""


@dataclass(frozen=True)
class PlannedFile:
    """One file of a target: literal bytes, or a copy of a file whose hash is known."""

    entry: FileEntry
    data: bytes | None = None
    copy_of: Path | None = None

    @classmethod
    def of_bytes(cls, data: bytes) -> "PlannedFile":
        return cls(FileEntry(bytes_sha256(data), len(data)), data=data)

    @classmethod
    def of_file(cls, path: Path, entry: FileEntry | None = None) -> "PlannedFile":
        known = entry or FileEntry(file_sha256(path), path.stat().st_size)
        return cls(known, copy_of=path)

    def write(self, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self.data is not None:
            dest.write_bytes(self.data)
        elif self.copy_of is not None:
            with self.copy_of.open("rb") as src, dest.open("wb") as out:
                while chunk := src.read(1 << 22):
                    out.write(chunk)


@dataclass(frozen=True)
class TargetPlan:
    target: str
    models: tuple[str, ...]
    files: dict[str, PlannedFile]
    calls: dict[str, tuple[str, ...]]
    profiles: dict[str, dict[str, Any]]
    quality: dict[str, dict[str, Any]]

    def manifest(self, stack: str) -> Manifest:
        entries = {name: planned.entry for name, planned in self.files.items()}
        return Manifest.build(
            self.target, stack, self.models, entries, self.calls, self.profiles, self.quality
        )

    def write(self, root: Path) -> None:
        for name, planned in self.files.items():
            planned.write(root / name)


@dataclass(frozen=True)
class RenderInputs:
    """What every target is rendered from."""

    source: Path
    artifacts: Mapping[str, Artifact]
    plans_dir: Path
    """Holds ``<onnx sha256[:16]>/model_sm<cc>.plan`` built by the TensorRT Jobs."""


@dataclass(frozen=True)
class _Context:
    target: str
    gpus: tuple[GpuType, ...]
    tensorrt: bool
    """The stack serves TensorRT plans where they exist (never on the local target)."""
    precision: str
    """What the encoder serves here (``hybrid:encoderPrecision``)."""
    inputs: RenderInputs

    @property
    def local(self) -> bool:
        return self.target == LOCAL

    def artifact_file(self, artifact: str, name: str) -> PlannedFile:
        built = self.inputs.artifacts[artifact]
        return PlannedFile.of_file(built.path(name), built.files[name])

    def source_files(self, model: str, *, code: bool) -> dict[str, PlannedFile]:
        """The source's own version-folder files (model.py, placeholders); without ``code``
        only the placeholders (an ensemble whose model.py is for the local target only)."""
        folder = self.inputs.source / model / VERSION
        if not folder.is_dir():
            return {}
        return {
            path.relative_to(folder).as_posix(): PlannedFile.of_bytes(path.read_bytes())
            for path in sorted(folder.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and (code or path.suffix != ".py")
        }


def plans_folder(plans_dir: Path, onnx: FileEntry) -> Path:
    """Plans are only valid for the ONNX graph they were built from, so they are filed by it."""
    return plans_dir / onnx.sha256[:16]


def site_plans(plans_dir: Path, onnx: FileEntry, gpus: Sequence[GpuType]) -> dict[str, Path]:
    """Where each compute capability's plan for this graph is (or would be), by capability."""
    folder = plans_folder(plans_dir, onnx)
    return {gpu.compute_capability: folder / plan_filename(gpu) for gpu in gpus}


def plan_target(target: str, config: StackConfig, inputs: RenderInputs) -> TargetPlan:
    """Every file of ``target``'s repository, with configs rendered and signatures checked."""
    if target == LOCAL:  # every model a stack may place; the local sites take their share
        models = expand(sorted(DEFAULT_MODEL_PLACEMENT), inputs.source, local=True)
        gpus: tuple[GpuType, ...] = ()
    else:
        models = site_models(config, target, inputs.source)
        gpus = config.gpu_types_on(target)
    context = _Context(
        target,
        gpus,
        config.serving.tensorrt and target != LOCAL,
        config.serving.encoder_precision[target],
        inputs,
    )
    files: dict[str, PlannedFile] = {}
    calls: dict[str, tuple[str, ...]] = {}
    profiles: dict[str, dict[str, Any]] = {}
    quality: dict[str, dict[str, Any]] = {}
    for model in models:
        renderer = _RENDERERS.get(model)
        if renderer is None:
            raise SourceError(model, "folder", f"modelkit has no renderer for model '{model}'")
        config_message = read_config(inputs.source / model / CONFIG_NAME, model)
        if model == ENCODER and target != LOCAL:
            profiles[model] = asdict(shape_profile(config_message))
        version_files = renderer(config_message, context)
        # What the rendered config calls: a fused ensemble calls nothing.
        calls[model] = tuple(step.model_name for step in config_message.ensemble_scheduling.step)
        python = config_message.backend == "python"
        if python or config_message.platform == "ensemble":
            version_files = {**context.source_files(model, code=python), **version_files}
        files[f"{model}/{CONFIG_NAME}"] = PlannedFile.of_bytes(
            render_config(config_message).encode()
        )
        files.update({f"{model}/{VERSION}/{name}": f for name, f in version_files.items()})
        if ENCODER_INT8_ONNX in version_files and context.precision == INT8:
            quality[model] = _int8_quality(context, f"{model}/{VERSION}/{ENCODER_INT8_ONNX}")
    return TargetPlan(target, models, files, calls, profiles, quality)


def _int8_quality(context: _Context, path: str) -> dict[str, Any]:
    """What the manifest records of the INT8 encoder: its file and hash, what it was
    quantized from, the gate's measured numbers and the CPU they were measured on."""
    built = context.inputs.artifacts[MINILM_INT8]
    return {
        "precision": INT8,
        "file": path,
        "sha256": built.files[ENCODER_INT8_ONNX].sha256,
        "reference": built.facts["reference"],
        "recipe": built.facts["recipe"],
        "measured_on": built.facts["measured_on"],
        **built.facts["quality"],
    }


def encoder_profile(source: Path) -> ShapeProfile:
    """The encoder's TensorRT shape profile, from its source config."""
    return shape_profile(read_config(source / ENCODER / CONFIG_NAME, ENCODER))


def shape_profile(config: ModelConfig) -> ShapeProfile:
    """Shapes from a model's own config: its inputs, max_batch_size and 128 tokens."""
    return ShapeProfile(
        input_names=tuple(tensor.name for tensor in config.input),
        max_batch=config.max_batch_size,
        max_length=MAX_SEQUENCE_LENGTH,
        opt_batch=max(1, config.max_batch_size // 4),
        opt_length=LENGTH_BUCKETS[1],
    )


def _tokenization(buckets: Sequence[int]) -> dict[str, object]:
    """The parameters ``minilm_steps.Tokenize`` reads: the one tokenizer, truncated at 128."""
    return {
        "tokenizer_file": TOKENIZER_JSON,
        "max_sequence_length": MAX_SEQUENCE_LENGTH,
        "length_buckets": ",".join(map(str, buckets)),
    }


def _tokenizer(config: ModelConfig, context: _Context) -> dict[str, PlannedFile]:
    """GPU targets only (the local target fuses text_embedding)."""
    # One shape per tokenizer batch, so the encoder's batcher can merge them.
    set_parameters(config, {**_tokenization(LENGTH_BUCKETS), "one_width_per_batch": "true"})
    apply_tuning(config, GPU_TUNING["tokenizer"], KIND_CPU)  # text processing runs on CPUs
    files = {
        TOKENIZER_JSON: context.artifact_file(MINILM, TOKENIZER_JSON),
        MINILM_STEPS: PlannedFile.of_file(MINILM_STEPS_SOURCE),
    }
    for name, path in vendored_files().items():  # the GPU image has no `tokenizers`
        files[f"{VENDOR_DIR}/{name}"] = PlannedFile.of_file(path)
    return files


def _encoder(config: ModelConfig, context: _Context) -> dict[str, PlannedFile]:
    encoder = context.inputs.artifacts[MINILM]
    check_signature("minilm_encoder", config, encoder.facts["signature"])
    onnx = {ENCODER_ONNX: context.artifact_file(MINILM, ENCODER_ONNX)}
    apply_tuning(config, GPU_TUNING["minilm_encoder"], KIND_GPU)
    add_zero_warmup(config, 1, {tensor.name: [LENGTH_BUCKETS[0]] for tensor in config.input})
    add_zero_warmup(
        config,
        config.max_batch_size,
        {tensor.name: [MAX_SEQUENCE_LENGTH] for tensor in config.input},
    )
    plans = site_plans(context.inputs.plans_dir, encoder.files[ENCODER_ONNX], context.gpus)
    if not context.tensorrt or not plans or not all(path.is_file() for path in plans.values()):
        config.platform = "onnxruntime_onnx"
        return onnx
    config.platform = "tensorrt_plan"
    for capability, path in sorted(plans.items()):
        config.cc_model_filenames[capability] = path.name
    # The ONNX graph stays next to the plans: the TensorRT Job reads it from there.
    return {**onnx, **{path.name: PlannedFile.of_file(path) for path in plans.values()}}


def _ranker(config: ModelConfig, context: _Context) -> dict[str, PlannedFile]:
    check_signature("ctr_ranker", config, context.inputs.artifacts[RANKER].facts["signature"])
    files = {RANKER_TORCHSCRIPT: context.artifact_file(RANKER, RANKER_TORCHSCRIPT)}
    if context.local:
        tuning = LOCAL_TUNING["ctr_ranker"]
        config.backend = "python"
        set_parameters(
            config, {"torchscript_file": RANKER_TORCHSCRIPT, "torch_threads": tuning.threads}
        )
        apply_tuning(config, tuning, KIND_CPU)
        return files
    config.platform = "pytorch_libtorch"
    set_parameters(config, {"INFERENCE_MODE": "true"})
    apply_tuning(config, GPU_TUNING["ctr_ranker"], KIND_GPU)
    add_zero_warmup(config, 1, {})
    add_zero_warmup(config, config.max_batch_size, {})
    return files


def _text_embedding(config: ModelConfig, context: _Context) -> dict[str, PlannedFile]:
    """The ensemble as it is on GPU targets; on the local target, one python model with the
    ensemble's name, inputs and outputs that tokenizes and encodes (model_repo's 1/model.py)."""
    if not context.local:
        return {}
    graph = MINILM_INT8 if context.precision == INT8 else MINILM
    onnx_file = ENCODER_INT8_ONNX if context.precision == INT8 else ENCODER_ONNX
    _check_embedding_output(config, context.inputs.artifacts[graph].facts["signature"])
    config.ClearField("platform")
    config.ClearField("ensemble_scheduling")
    config.backend = "python"
    tuning = LOCAL_TUNING["text_embedding"]
    set_parameters(
        config,
        {
            **_tokenization(LOCAL_LENGTH_BUCKETS),
            "onnx_file": onnx_file,
            "intra_op_threads": tuning.threads,
            "inter_op_threads": 1,
            "intra_op_spin_us": tuning.spin_us,
        },
    )
    # Each request is padded to its own bucket and model.py groups equal widths itself, so
    # the batcher may merge any requests (TEXT is one string per row: no ragged input).
    apply_tuning(config, tuning, KIND_CPU)
    return {
        TOKENIZER_JSON: context.artifact_file(MINILM, TOKENIZER_JSON),
        onnx_file: context.artifact_file(graph, onnx_file),
        MINILM_STEPS: PlannedFile.of_file(MINILM_STEPS_SOURCE),
    }


def _check_embedding_output(config: ModelConfig, signature: Mapping[str, Any]) -> None:
    """The client's output is what the graph computes: an ensemble is checked across its
    steps (validate.py); fused, the config's one output against the graph's embedding, and
    the graph's inputs against what minilm_steps feeds it."""
    if sorted(signature["inputs"]) != sorted(MINILM_ENCODER_INPUTS):
        raise SourceError(
            config.name,
            "parameters[onnx_file]",
            f"the encoder graph takes {sorted(signature['inputs'])}, but the local model "
            f"feeds it {sorted(MINILM_ENCODER_INPUTS)}",
        )
    exported = signature["outputs"][MINILM_ENCODER_OUTPUT]
    for index, output in enumerate(config.output):
        dtype, dims = data_type_name(output.data_type), [-1, *output.dims]
        if dtype != exported["data_type"] or not dims_agree(dims, exported["dims"]):
            raise SourceError(
                config.name,
                f"output[{index}]",
                f"'{output.name}' is {dtype} {dims} (batch first), the encoder graph's "
                f"{MINILM_ENCODER_OUTPUT} is {exported['data_type']} {exported['dims']}",
            )


_RENDERERS: dict[str, Callable[[ModelConfig, _Context], dict[str, PlannedFile]]] = {
    "tokenizer": _tokenizer,
    "minilm_encoder": _encoder,
    "ctr_ranker": _ranker,
    "text_embedding": _text_embedding,
}
