"""The one table of GPU types both clouds offer.

Stack validation uses it to check a pool's machine type against its GPU, the
GPU node pools use it for accelerator names and labels, and the model build uses
the compute capability to name TensorRT plans (a plan built for one architecture
does not run on another).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuType:
    """A GPU model as each cloud sells it."""

    name: str
    """Cloud-neutral key used in stack config, e.g. ``l4``."""
    compute_capability: str
    """CUDA compute capability, e.g. ``8.9``."""
    memory_gib: int
    aws_instance_families: tuple[str, ...]
    """EC2 families that carry this GPU (``g6`` for ``g6.xlarge``); empty if AWS has none."""
    gcp_accelerator: str | None
    """GCE accelerator type, e.g. ``nvidia-l4``; None if GCP has none."""
    gcp_machine_prefixes: tuple[str, ...]
    """Machine-type prefixes this accelerator attaches to (``g2-`` for ``g2-standard-8``)."""

    @property
    def sm(self) -> str:
        """Compute capability as TensorRT plan suffixes spell it: ``8.9`` -> ``89``."""
        return self.compute_capability.replace(".", "")

    def fits_aws(self, instance_type: str) -> bool:
        return instance_type.split(".", 1)[0] in self.aws_instance_families

    def fits_gcp(self, machine_type: str) -> bool:
        return machine_type.startswith(self.gcp_machine_prefixes)


GPU_TYPES: dict[str, GpuType] = {
    gpu.name: gpu
    for gpu in (
        GpuType("t4", "7.5", 16, ("g4dn",), "nvidia-tesla-t4", ("n1-",)),
        GpuType("v100", "7.0", 16, ("p3",), "nvidia-tesla-v100", ("n1-",)),
        GpuType("a10g", "8.6", 24, ("g5",), None, ()),
        GpuType("l4", "8.9", 24, ("g6",), "nvidia-l4", ("g2-",)),
        GpuType("l40s", "8.9", 48, ("g6e",), None, ()),
        GpuType("a100-40gb", "8.0", 40, ("p4d",), "nvidia-tesla-a100", ("a2-highgpu-", "a2-mega")),
        GpuType("a100-80gb", "8.0", 80, ("p4de",), "nvidia-a100-80gb", ("a2-ultragpu-",)),
        GpuType("h100-80gb", "9.0", 80, ("p5",), "nvidia-h100-80gb", ("a3-highgpu-",)),
    )
}
