"""The INT8 encoder: onnxruntime dynamic quantization of the exported FP32 graph.

What is quantized, chosen by measurement (docs/models.md, "INT8 encoder"):

- dynamic quantization: activation scales are computed per call from the actual tensor
  (one scale per tensor); weights are INT8 per output channel;
- every MatMul with a weight: Q, K, V, the attention output and both FFN MatMuls of all six
  layers. The attention products, softmax, LayerNorm, GELU, pooling and normalization stay
  FP32;
- before quantizing, each MatMul's input is *smoothed* (SmoothQuant): a few channels of
  the LayerNorm and GELU outputs are far larger than the rest, and one 8-bit scale per
  tensor rounds the others away. A per-channel ``Mul`` by ``1/s`` in front of the MatMul
  and the weight rows multiplied by ``s`` leave the FP32 result unchanged and move the
  range into the weights, ``s = amax(x)^a / amax(W)^(1-a)`` with ``a`` = SMOOTHING, from
  the calibration texts' activations;
- the first token ([CLS], the attention sink) is an outlier of its own: in the first
  layers' FFNs its largest value is up to 4x the largest of every other token, so the one
  scale per tensor is set by one row in each text. Where that is so (its smoothed range
  above FIRST_TOKEN_AT of the rest's), the same ``Mul`` also shrinks that row by
  ``c`` = rest / first, and a ``Mul`` after the MatMul grows the row's result back:
  ``R^-1 ((R x) W) = x W`` for a diagonal ``R``, exact in FP32.
"""

import contextlib
import io
import logging
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx

SMOOTHING = 0.6
"""SmoothQuant's migration strength a, measured 0.5 to 1.0 (docs/models.md)."""
FIRST_TOKEN_AT = 0.8
"""The first token's row is rescaled where the rest's range is below this share of its own."""
FIRST_TOKEN = "first_token_row"
"""The graph's [1, S, 1] tensor: 1 in the first token's row, 0 in the others."""
KERNEL_FLAGS = frozenset(
    {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8"}
)
"""CPU flags (as /proc/cpuinfo names them) that onnxruntime's integer kernels choose between:
the same INT8 graph computes slightly different numbers on each (docs/models.md)."""


def kernel_instructions(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The architecture and this CPU's KERNEL_FLAGS: the machines the gate's numbers hold on."""
    flags: set[str] = set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.partition(":")[2].split())
    return [platform.machine(), *sorted(flags & KERNEL_FLAGS)]


@dataclass(frozen=True)
class Ranges:
    """Per channel, the largest magnitude one MatMul input takes over the calibration
    texts: in the first token's row, and in every other row (padding included)."""

    first: np.ndarray
    rest: np.ndarray


def weight_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes whose second input is a weight (an initializer), in order."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def quantize(fp32: Path, out: Path) -> Path:
    """Write ``fp32`` with every weight MatMul dynamically quantized to ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "Please consider to run pre-processing" notices
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_dynamic(
                fp32,
                out,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                extra_options={"MatMulConstBOnly": True},
            )
    finally:
        quiet.setLevel(level)
    return out


def activation_ranges(fp32: Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, Ranges]:
    """``Ranges`` of every weight MatMul's input over ``feeds`` (one FP32 pass with those
    tensors exposed)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fp32))
    weights = {init.name for init in model.graph.initializer}
    names = sorted(
        {n.input[0] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights}
    )
    for name in names:
        model.graph.output.append(onnx.ValueInfoProto(name=name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    first: dict[str, np.ndarray] = {}
    rest: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in zip(names, session.run(names, dict(feed)), strict=True):
            magnitude = np.abs(value)
            seen_first = magnitude[:, 0].max(axis=0)
            seen_rest = magnitude[:, 1:].reshape(-1, value.shape[-1]).max(axis=0)
            first[name] = np.maximum(first.get(name, seen_first), seen_first)
            rest[name] = np.maximum(rest.get(name, seen_rest), seen_rest)
    return {name: Ranges(first[name], rest[name]) for name in names}


def smooth(
    fp32: Path,
    out: Path,
    ranges: Mapping[str, Ranges],
    only: Sequence[str],
    strength: float = SMOOTHING,
) -> list[str]:
    """Write ``fp32`` to ``out`` with the inputs of the MatMuls named in ``only`` smoothed
    and, where the first token stands out, its row rescaled (see above); MatMuls that share
    an input share its scales. The FP32 function is unchanged. Returns the tensors whose
    first-token row is rescaled."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        if node.name in only:
            consumers.setdefault(node.input[0], []).append(node)

    def constant(name: str, value: float | np.ndarray, dtype: type = np.float32) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    steps: dict[str, list[onnx.NodeProto]] = {}  # placed before the first node reading them
    restore: dict[str, onnx.NodeProto] = {}  # per MatMul: the Mul that grows its row back
    rescaled: list[str] = []
    for tensor, nodes in consumers.items():
        matrices = [numpy_helper.to_array(weights[node.input[1]]) for node in nodes]
        wmax = np.max([np.abs(matrix).max(axis=1) for matrix in matrices], axis=0)
        seen = ranges[tensor]
        largest = np.maximum(np.maximum(seen.first, seen.rest), 1e-5)
        scale = largest**strength / np.maximum(wmax, 1e-5) ** (1 - strength)
        for node, matrix in zip(nodes, matrices, strict=True):
            scaled = (matrix * scale[:, None]).astype(np.float32)
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(scaled, node.input[1]))
            node.input[0] = f"{tensor}_smoothed"
        factor = constant(f"{tensor}_smoothing", 1 / scale)
        shrink = float((seen.rest / scale).max() / max((seen.first / scale).max(), 1e-12))
        first_row: list[onnx.NodeProto] = []
        if shrink < FIRST_TOKEN_AT:
            rescaled.append(tensor)
            rows = _row_factor(f"{tensor}_rows", shrink, constant)
            back = _row_factor(f"{tensor}_rows_back", 1 / shrink, constant)
            first_row = [
                *rows,
                *back,
                helper.make_node("Mul", [rows[-1].output[0], factor], [f"{tensor}_factor"]),
            ]
            factor = f"{tensor}_factor"
            for node in nodes:
                result = node.output[0]
                node.output[0] = f"{result}_rows_scaled"
                restore[node.name] = helper.make_node(
                    "Mul", [node.output[0], back[-1].output[0]], [result]
                )
        steps[f"{tensor}_smoothed"] = [
            *first_row,
            helper.make_node("Mul", [tensor, factor], [f"{tensor}_smoothed"]),
        ]
    ordered = _first_token_row(constant) if restore else []
    for node in graph.node:
        for name in node.input:
            ordered.extend(steps.pop(name, []))
        ordered.append(node)
        if node.name in restore:
            ordered.append(restore.pop(node.name))
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(model, str(out))
    return rescaled


def _first_token_row(constant: Callable[..., str]) -> list["onnx.NodeProto"]:
    from onnx import TensorProto, helper

    one = constant(f"{FIRST_TOKEN}_one", 1, np.int64)
    zero = constant(f"{FIRST_TOKEN}_zero", 0, np.int64)
    return [
        helper.make_node("Shape", ["input_ids"], [f"{FIRST_TOKEN}_shape"], start=1, end=2),
        helper.make_node("Squeeze", [f"{FIRST_TOKEN}_shape"], [f"{FIRST_TOKEN}_length"]),
        helper.make_node("Range", [zero, f"{FIRST_TOKEN}_length", one], [f"{FIRST_TOKEN}_at"]),
        helper.make_node("Equal", [f"{FIRST_TOKEN}_at", zero], [f"{FIRST_TOKEN}_is"]),
        helper.make_node(
            "Cast", [f"{FIRST_TOKEN}_is"], [f"{FIRST_TOKEN}_flat"], to=TensorProto.FLOAT
        ),
        helper.make_node(
            "Reshape",
            [f"{FIRST_TOKEN}_flat", constant(f"{FIRST_TOKEN}_dims", [1, -1, 1], np.int64)],
            [FIRST_TOKEN],
        ),
    ]


def _row_factor(name: str, first: float, constant: Callable[..., str]) -> list["onnx.NodeProto"]:
    """``name`` = [1, S, 1]: ``first`` in the first token's row, 1 in the others."""
    from onnx import helper

    return [
        helper.make_node(
            "Mul", [FIRST_TOKEN, constant(f"{name}_less_one", first - 1)], [f"{name}_less"]
        ),
        helper.make_node("Add", [f"{name}_less", constant(f"{name}_one", 1.0)], [name]),
    ]


def quantize_encoder(
    fp32: Path, out: Path, feeds: Iterable[Mapping[str, np.ndarray]]
) -> dict[str, Any]:
    """Write the shipped INT8 graph to ``out``: every weight MatMul smoothed on ``feeds``
    and quantized. Returns what the manifest records of the recipe."""
    quantized = weight_matmuls(fp32)
    smoothed = out.with_name(f".smoothed-{out.name}")
    try:
        rescaled = smooth(fp32, smoothed, activation_ranges(fp32, feeds), quantized)
        quantize(smoothed, out)
    finally:
        smoothed.unlink(missing_ok=True)
    return {
        "quantized_matmuls": len(quantized),
        "smoothing": SMOOTHING,
        "first_token_rescaled": rescaled,
    }
