"""Which numeric precision each target's encoder serves (``hybrid:encoderPrecision``).

CPU targets run the encoder on onnxruntime, in FP32 or as the INT8 variant the model build
quantizes and gates; GPU targets serve TensorRT FP16 plans once the clusters built them
(``hybrid:tensorrtPlans``) and the FP32 ONNX graph until then. INT8 is a CPU format here
(onnxruntime dynamic quantization), so a GPU target may not ask for it.
"""

from typing import Literal

from hybrid.paths import LOCAL, TARGETS

Precision = Literal["fp32", "int8", "fp16"]
FP32: Precision = "fp32"
INT8: Precision = "int8"
FP16: Precision = "fp16"

CPU_TARGETS = (LOCAL,)
"""Targets whose Triton runs on CPUs only (the local mode's python-backend Triton)."""

ALLOWED_PRECISIONS: dict[str, tuple[Precision, ...]] = {
    target: (FP32, INT8) if target in CPU_TARGETS else (FP16,) for target in TARGETS
}
"""Per target, the precisions it may serve."""

DEFAULT_PRECISION: dict[str, Precision] = {
    target: FP32 if target in CPU_TARGETS else FP16 for target in TARGETS
}
"""``hybrid:encoderPrecision``'s default: FP32 on CPU, TensorRT FP16 on GPU (as before)."""
