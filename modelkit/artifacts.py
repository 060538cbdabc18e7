"""What the build makes: the exported MiniLM encoder, its INT8 variant, the trained ctr_ranker.

Each recipe checks its own output before it is cached (exported graphs against eager
torch, the INT8 graph against the FP32 one on the quality gate, the ranker's AUC against
its target), so a broken export never reaches a target.
"""

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelkit.cache import Artifact, Recipe, Report
from modelkit.errors import BuildError

MINILM = "minilm"
MINILM_INT8 = "minilm_int8"
RANKER = "ctr_ranker"
ENCODER_ONNX = "model.onnx"
ENCODER_INT8_ONNX = "model.int8.onnx"
ENCODER_TORCHSCRIPT = "encoder.pt"
TOKENIZER_JSON = "tokenizer.json"
RANKER_TORCHSCRIPT = "model.pt"
PARITY_TARGET = 0.9999
_CHECK_SHAPES = ((1, 1), (3, 7), (4, 128))


def _minilm_inputs() -> list[Path]:
    from modelkit.tokenization import model_dir

    return [model_dir() / name for name in ("model.safetensors", "config.json", "tokenizer.json")]


def _build_minilm(folder: Path, report: Report, used: Mapping[str, Artifact]) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import torch

    from modelkit import minilm
    from modelkit.tokenization import model_dir
    from modelkit.torch2onnx import export_onnx
    from modelkit.torch2torchscript import export_torchscript

    started = time.perf_counter()
    report("load all-MiniLM-L6-v2", 0, 3)
    encoder = minilm.load_encoder()
    example = minilm.example_inputs(2, 16)
    report("export ONNX", 1, 3)
    export_onnx(
        encoder,
        example,
        folder / ENCODER_ONNX,
        input_names=minilm.INPUT_NAMES,
        output_names=[minilm.OUTPUT_NAME],
        dynamic_axes={name: {0: "batch", 1: "sequence"} for name in minilm.INPUT_NAMES},
    )
    report("trace TorchScript", 2, 3)
    export_torchscript(encoder, folder / ENCODER_TORCHSCRIPT, example)
    shutil.copyfile(model_dir() / "tokenizer.json", folder / TOKENIZER_JSON)

    session = ort.InferenceSession(str(folder / ENCODER_ONNX), providers=["CPUExecutionProvider"])
    traced = torch.jit.load(str(folder / ENCODER_TORCHSCRIPT))
    worst = {"onnx": 1.0, "torchscript": 1.0}
    for seed, (batch, length) in enumerate(_CHECK_SHAPES):
        ids, mask = minilm.example_inputs(batch, length, seed=seed)
        mask[0, length // 2 + 1 :] = 0  # a padded row, as the tokenizer produces
        with torch.inference_mode():
            expected = encoder(ids, mask).numpy()
            outputs = {
                "onnx": session.run(
                    None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
                )[0],
                "torchscript": traced(ids, mask).numpy(),
            }
        for fmt, got in outputs.items():
            worst[fmt] = min(worst[fmt], float(np.min(np.sum(got * expected, axis=1))))
    report("export done", 3, 3)
    if min(worst.values()) < PARITY_TARGET:
        raise BuildError(f"exported encoder drifted from eager torch: cosine {worst}")
    return {
        "min_cosine_vs_eager": worst,
        "signature": _onnx_signature(folder / ENCODER_ONNX),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _onnx_signature(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Input/output names, Triton dtypes and dims (-1 = dynamic) of an ONNX graph."""
    import onnx

    types = {onnx.TensorProto.INT64: "TYPE_INT64", onnx.TensorProto.FLOAT: "TYPE_FP32"}
    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values: Any) -> dict[str, dict[str, Any]]:
        return {
            value.name: {
                "data_type": types[value.type.tensor_type.elem_type],
                "dims": [
                    d.dim_value if d.HasField("dim_value") else -1
                    for d in value.type.tensor_type.shape.dim
                ],
            }
            for value in values
        }

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}


def _build_ranker(folder: Path, report: Report, used: Mapping[str, Artifact]) -> dict[str, Any]:
    import numpy as np
    import torch

    from modelkit import ranker
    from modelkit.torch2torchscript import export_torchscript

    started = time.perf_counter()
    model, training = ranker.train_ranker(
        on_step=lambda done, total: report("train ctr_ranker", done, total)
    )
    if training.auc < ranker.AUC_TARGET:
        raise BuildError(
            f"ctr_ranker reached held-out AUC {training.auc:.4f} < {ranker.AUC_TARGET}"
        )
    export_torchscript(model, folder / RANKER_TORCHSCRIPT)
    _, held_out = ranker.synthetic_click_logs()
    scripted = torch.jit.load(str(folder / RANKER_TORCHSCRIPT))
    drift = float(np.max(np.abs(ranker.score(scripted, held_out) - ranker.score(model, held_out))))
    if drift > 1e-5:
        raise BuildError(f"TorchScript ctr_ranker differs from eager by {drift}")
    batch = [-1]
    return {
        "training": vars(training),
        "signature": {
            "inputs": {
                "user_id": {"data_type": "TYPE_INT64", "dims": [*batch, 1]},
                "item_id": {"data_type": "TYPE_INT64", "dims": [*batch, 1]},
                "dense_features": {"data_type": "TYPE_FP32", "dims": [*batch, ranker.N_DENSE]},
            },
            "outputs": {ranker.OUTPUT_NAME: {"data_type": "TYPE_FP32", "dims": [*batch, 1]}},
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def _kernel_instructions() -> list[str]:
    from modelkit.quantize import kernel_instructions

    return kernel_instructions()


def _build_minilm_int8(
    folder: Path, report: Report, used: Mapping[str, Artifact]
) -> dict[str, Any]:
    """Smooth and quantize the FP32 graph's MatMuls on the calibration texts; gate it."""
    from modelkit import quality
    from modelkit.quantize import quantize_encoder
    from modelkit.texts import text_sets

    started = time.perf_counter()
    fp32 = used[MINILM].path(ENCODER_ONNX)
    report("INT8: calibration and evaluation texts", 0, 3)
    sets = text_sets()
    report("INT8: smooth and quantize on calibration", 1, 3)
    out = folder / ENCODER_INT8_ONNX
    recipe = quantize_encoder(fp32, out, quality.feeds(sets.calibration))
    report("INT8: quality gate vs FP32", 2, 3)
    measured = quality.evaluate(quality.onnx_embedder(fp32), quality.onnx_embedder(out), sets)
    quality.check(measured, "the INT8 encoder")
    return {
        "quality": measured.facts(),
        "recipe": recipe,
        "calibration": {"texts": len(sets.calibration)},
        "reference": {"file": ENCODER_ONNX, "sha256": used[MINILM].files[ENCODER_ONNX].sha256},
        "measured_on": _kernel_instructions(),
        "signature": _onnx_signature(out),
        "seconds": round(time.perf_counter() - started, 1),
    }


RECIPES: dict[str, Recipe] = {
    MINILM: Recipe(
        name=MINILM,
        modules=(
            "modelkit.artifacts",
            "modelkit.minilm",
            "modelkit.minilm_steps",
            "modelkit.tokenization",
            "modelkit.torch2onnx",
            "modelkit.torch2torchscript",
        ),
        packages=("torch", "transformers", "tokenizers", "onnx", "onnxscript", "onnxruntime"),
        inputs=_minilm_inputs,
        build=_build_minilm,
    ),
    MINILM_INT8: Recipe(
        name=MINILM_INT8,
        modules=(
            "modelkit.artifacts",
            "modelkit.minilm_steps",
            "modelkit.quantize",
            "modelkit.quality",
            "modelkit.texts",
            "modelkit.tokenization",
        ),
        packages=("onnx", "onnxruntime", "tokenizers", "numpy"),
        # The FP32 graph comes in through ``uses``; the stdlib texts change with the Python,
        # which comes with a new venv (new package versions) here.
        inputs=list,
        build=_build_minilm_int8,
        uses=(MINILM,),
        machine=_kernel_instructions,
    ),
    RANKER: Recipe(
        name=RANKER,
        modules=("modelkit.artifacts", "modelkit.ranker", "modelkit.torch2torchscript"),
        packages=("torch", "numpy"),
        inputs=list,
        build=_build_ranker,
    ),
}
