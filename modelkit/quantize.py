"""The INT8 encoder: onnxruntime dynamic quantization of the exported FP32 graph.

What is quantized, chosen by measurement (docs/models.md, "INT8 encoder"):

- dynamic quantization: activation scales are computed per call from the actual tensor,
  so there is no calibration drift between texts; weights are INT8 per output channel;
- only the MatMuls with a weight matrix (Q, K, V, attention output and the two FFN layers
  of each block). The attention score and context products, softmax, LayerNorm, GELU,
  pooling and normalization stay FP32;
- the few weight MatMuls whose inputs suffer most from 8-bit rounding on the calibration
  texts stay FP32 (``activation_errors``, ``keep_in_fp32``), as many as it takes to keep
  the calibration set's minimum cosine above the gate's threshold with a margin.
"""

import contextlib
import io
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

CALIBRATION_MIN_COSINE = 0.995
"""What the calibration texts must reach before the evaluation gate (0.99) is even tried."""
MAX_KEPT_FP32 = 8


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


def activation_errors(fp32: Path, feeds: Iterable[Mapping[str, np.ndarray]]) -> dict[str, float]:
    """Per weight MatMul, the relative error that quantizing its input per tensor to 8 bits
    (what dynamic quantization does at run time) puts on its output, over ``feeds``.

    One FP32 pass with every such input exposed; only real tokens (attention mask 1) are
    scored, padded positions only widen the range as they do when served.
    """
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(fp32))
    weights = {init.name: init for init in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights}
    for node in nodes.values():
        model.graph.output.append(onnx.ValueInfoProto(name=node.input[0]))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    matrices = {name: onnx.numpy_helper.to_array(weights[n.input[1]]) for name, n in nodes.items()}
    error = dict.fromkeys(nodes, 0.0)
    signal = dict.fromkeys(nodes, 0.0)
    for feed in feeds:
        values = dict(zip(names, session.run(names, dict(feed)), strict=True))
        real = feed["attention_mask"].astype(bool)
        for name, node in nodes.items():
            inputs = values[node.input[0]]
            low, high = min(float(inputs.min()), 0.0), max(float(inputs.max()), 0.0)
            scale = (high - low) / 255 or 1.0
            zero = round(-low / scale)
            rounded = (np.clip(np.round(inputs / scale) + zero, 0, 255) - zero) * scale
            rows = real.reshape(-1) if inputs.ndim == 3 else slice(None)
            flat = inputs.reshape(-1, inputs.shape[-1])[rows]
            noise = (rounded.reshape(-1, inputs.shape[-1])[rows] - flat) @ matrices[name]
            error[name] += float(np.sum(noise**2))
            signal[name] += float(np.sum((flat @ matrices[name]) ** 2))
    return {name: (error[name] / signal[name]) ** 0.5 for name in nodes}


def keep_in_fp32(
    fp32: Path,
    scratch: Path,
    errors: Mapping[str, float],
    min_cosine: Callable[[Path], float],
) -> tuple[list[str], dict[int, float]]:
    """The fewest weight MatMuls, worst ``errors`` first, to leave in FP32 so that the rest
    quantized reaches CALIBRATION_MIN_COSINE (``min_cosine`` of a candidate graph on the
    calibration texts), and the minimum cosine measured at each count tried.

    Keeping more in FP32 only removes rounding, so the count is found by bisection.
    """
    ranked = sorted(errors, key=lambda name: -errors[name])
    tried: dict[int, float] = {}
    low, high = 0, MAX_KEPT_FP32
    while low < high:
        count = (low + high) // 2
        tried[count] = round(min_cosine(quantize(fp32, scratch, keep_fp32=ranked[:count])), 6)
        if tried[count] >= CALIBRATION_MIN_COSINE:
            high = count
        else:
            low = count + 1
    return ranked[:low], dict(sorted(tried.items()))
