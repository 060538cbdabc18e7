"""The INT8 encoder: onnxruntime dynamic quantization of the exported FP32 graph.

What is quantized, chosen by measurement (docs/models.md, "INT8 encoder"):

- dynamic quantization: activation scales are computed per call from the actual tensor;
  weights are INT8 per output channel;
- only the two FFN MatMuls of the first three layers (the weights that change the width,
  384 -> 1536 -> 384: two thirds of the MatMul work). Q, K, V and the attention output,
  the attention products, softmax, LayerNorm, GELU, pooling and normalization stay FP32;
- before quantizing, each quantized MatMul's input is smoothed (SmoothQuant): a few
  channels of the LayerNorm and GELU outputs are far larger than the rest, and one 8-bit
  scale per tensor rounds the others away. A per-channel ``Mul`` by ``1/s`` in front of
  the MatMul and the weight rows multiplied by ``s`` leave the FP32 result unchanged and
  move the range into the weights, ``s = amax(x)^a / amax(W)^(1-a)`` with ``a`` = 0.8,
  from the calibration texts' activations.
"""

import contextlib
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

SMOOTHING = 0.8
"""SmoothQuant's migration strength a: 0.5, 0.8, 0.9, 1.0 measured, 0.8 kept."""
LAST_FFN_KEPT = 6
"""FFN MatMuls of the last three layers kept FP32: top-10 agreement 0.9462 with all 12
FFN MatMuls quantized, 0.9466 with the last layer's kept, 0.9486 with two, 0.9544 with
three, the first that the gate passes (docs/models.md)."""


def weight_matmuls(path: Path) -> list[str]:
    """Names of the MatMul nodes whose second input is a weight (an initializer), in order."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def quantize(fp32: Path, out: Path, keep_fp32: Sequence[str] = ()) -> Path:
    """Write the INT8 variant of ``fp32`` to ``out``, with ``keep_fp32`` nodes left as they are."""
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
                nodes_to_exclude=list(keep_fp32),
                extra_options={"MatMulConstBOnly": True},
            )
    finally:
        quiet.setLevel(level)
    return out


def kept_in_fp32(path: Path) -> list[str]:
    """The weight MatMuls left in FP32: those whose weight is square (Q, K, V, output),
    and the last layers' FFNs (their rounding reaches the embedding least damped)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    weighted = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in shapes]
    square = [n.name for n in weighted if len(set(shapes[n.input[1]])) == 1]
    ffn = [n.name for n in weighted if n.name not in square]
    return square + ffn[-LAST_FFN_KEPT:]


def channel_absmax(fp32: Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per input tensor of a weight MatMul, the largest magnitude of each channel over
    ``feeds`` (one FP32 pass with those tensors exposed)."""
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
    absmax: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in zip(names, session.run(names, dict(feed)), strict=True):
            seen = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            absmax[name] = np.maximum(absmax.get(name, seen), seen)
    return absmax


def smooth(
    fp32: Path,
    out: Path,
    absmax: Mapping[str, np.ndarray],
    only: Sequence[str],
    strength: float = SMOOTHING,
) -> Path:
    """Write ``fp32`` with the inputs of the MatMuls named in ``only`` smoothed (see above);
    MatMuls that share an input share its scale. The FP32 function is unchanged."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        if node.name in only:
            consumers.setdefault(node.input[0], []).append(node)
    scales: dict[str, onnx.NodeProto] = {}
    for tensor, nodes in consumers.items():
        matrices = [numpy_helper.to_array(weights[node.input[1]]) for node in nodes]
        wmax = np.max([np.abs(matrix).max(axis=1) for matrix in matrices], axis=0)
        scale = np.maximum(absmax[tensor], 1e-5) ** strength / np.maximum(wmax, 1e-5) ** (
            1 - strength
        )
        for node, matrix in zip(nodes, matrices, strict=True):
            scaled = (matrix * scale[:, None]).astype(np.float32)
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(scaled, node.input[1]))
            node.input[0] = f"{tensor}_smoothed"
        graph.initializer.append(
            numpy_helper.from_array((1 / scale).astype(np.float32), f"{tensor}_smoothing")
        )
        scales[tensor] = onnx.helper.make_node(
            "Mul", [tensor, f"{tensor}_smoothing"], [f"{tensor}_smoothed"], name=f"{tensor}_smooth"
        )
    ordered = []
    for node in graph.node:  # each Mul right before the first node that reads its output
        for name in node.input:
            pending = next((t for t, mul in scales.items() if mul.output[0] == name), None)
            if pending is not None:
                ordered.append(scales.pop(pending))
        ordered.append(node)
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(model, str(out))
    return out


def quantize_encoder(
    fp32: Path, out: Path, feeds: Iterable[Mapping[str, np.ndarray]]
) -> tuple[Path, list[str]]:
    """The shipped INT8 graph: FFN MatMuls smoothed on ``feeds`` and quantized, the rest
    FP32; also the names of the weight MatMuls kept in FP32."""
    kept = kept_in_fp32(fp32)
    quantized = [name for name in weight_matmuls(fp32) if name not in kept]
    smoothed = out.with_name(f".smoothed-{out.name}")
    try:
        smooth(fp32, smoothed, channel_absmax(fp32, feeds), quantized)
        return quantize(smoothed, out, keep_fp32=kept), kept
    finally:
        smoothed.unlink(missing_ok=True)
