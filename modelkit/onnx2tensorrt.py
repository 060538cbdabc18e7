"""Build an FP16 TensorRT plan from the encoder's ONNX graph, on the GPU it will run on.

A plan is tied to the GPU architecture (compute capability) and to the TensorRT version,
so plans are built on the site's own GPU pool, named ``model_sm<cc>.plan`` and chosen by
Triton through ``cc_model_filenames``; the builder image's NGC release must equal the
Triton image's (``hybrid.triton.tensorrt_image``).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hybrid.gpus import GpuType


@dataclass(frozen=True)
class ShapeProfile:
    """The batch and sequence lengths one engine accepts (TensorRT optimization profile)."""

    input_names: Sequence[str]
    max_batch: int
    max_length: int
    opt_batch: int
    opt_length: int

    def spec(self, batch: int, length: int) -> str:
        return ",".join(f"{name}:{batch}x{length}" for name in self.input_names)


def plan_filename(gpu: GpuType) -> str:
    """``model_sm89.plan`` for compute capability 8.9: the name Triton's config points at."""
    return f"model_sm{gpu.sm}.plan"


def trtexec_command(onnx_path: str, plan_path: str, profile: ShapeProfile) -> list[str]:
    """The ``trtexec`` invocation that turns the ONNX graph into an FP16 plan (build only)."""
    return [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={plan_path}",
        "--fp16",
        f"--minShapes={profile.spec(1, 1)}",
        f"--optShapes={profile.spec(profile.opt_batch, profile.opt_length)}",
        f"--maxShapes={profile.spec(profile.max_batch, profile.max_length)}",
        "--skipInference",
    ]
