"""The one table of GPU types both clouds offer, with the machine types that carry them.

Stack validation uses it to check a pool's machine type against its GPU and to take the
GPUs per node from the machine type, the cost guard to bill the GPUs a machine really
carries, the GPU node pools for accelerator names and labels, and the model build for
the compute capability that names TensorRT plans (a plan built for one architecture does
not run on another).

The machine types are the clouds' real ones, per family and size, as their docs list them:

- EC2: https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html (accelerated computing
  instance specifications); the names match ``pulumi_aws.ec2.InstanceType`` (a test checks).
- GCE: https://cloud.google.com/compute/docs/gpus (GPU machine types: the accelerator-optimized
  A2, A3 and G2 types with their fixed GPU counts, and the GPUs N1 machines attach, with the
  most vCPUs each GPU count allows).

Only families of the GPUs below are listed. Refresh a family as a whole from those pages.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

N1_MACHINE_VCPUS: dict[str, int] = {
    f"n1-{series}-{vcpus}": vcpus
    for series, sizes in (
        ("standard", (1, 2, 4, 8, 16, 32, 64, 96)),
        ("highmem", (2, 4, 8, 16, 32, 64, 96)),
        ("highcpu", (2, 4, 8, 16, 32, 64, 96)),
    )
    for vcpus in sizes
}
"""The predefined N1 machine types (the shared-core ones take no GPU) and their vCPUs."""


@dataclass(frozen=True)
class GpuType:
    """A GPU model as each cloud sells it (compared and hashed by its scalar facts; the
    machine tables are lookups, not identity)."""

    name: str
    """Cloud-neutral key used in stack config, e.g. ``l4``."""
    compute_capability: str
    """CUDA compute capability, e.g. ``8.9``."""
    memory_gib: int
    gcp_accelerator: str | None = None
    """GCE accelerator type, e.g. ``nvidia-l4``; None if GCP has none."""
    aws_instances: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    """EC2 instance type -> the GPUs it carries; empty if AWS has none."""
    gcp_machines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Accelerator-optimized GCE machine type -> the GPUs it carries (fixed)."""
    n1_max_vcpus: Mapping[int, int] = field(default_factory=dict, compare=False, repr=False)
    """GPUs attachable to an N1 machine -> the most vCPUs that machine may have."""

    @property
    def sm(self) -> str:
        """Compute capability as TensorRT plan suffixes spell it: ``8.9`` -> ``89``."""
        return self.compute_capability.replace(".", "")

    @property
    def aws_instance_families(self) -> tuple[str, ...]:
        """EC2 families that carry this GPU (``g6`` for ``g6.xlarge``)."""
        return tuple(dict.fromkeys(t.split(".", 1)[0] for t in self.aws_instances))

    @property
    def gcp_machine_prefixes(self) -> tuple[str, ...]:
        """GCE machine-type prefixes that carry (``g2-standard-``) or attach (``n1-``) it."""
        fixed = (m.rsplit("-", 1)[0] + "-" for m in self.gcp_machines)
        return tuple(dict.fromkeys(fixed)) + (("n1-",) if self.n1_max_vcpus else ())

    def gpu_counts(self, cloud: str, machine_type: str) -> tuple[int, ...]:
        """How many of this GPU a machine type may carry: one fixed count, the N1 counts
        its vCPUs allow, or none when the machine type cannot carry this GPU at all."""
        if cloud == "aws":
            fixed = self.aws_instances.get(machine_type)
        else:
            fixed = self.gcp_machines.get(machine_type)
            vcpus = N1_MACHINE_VCPUS.get(machine_type)
            if vcpus is not None:
                return tuple(n for n, most in self.n1_max_vcpus.items() if vcpus <= most)
        return () if fixed is None else (fixed,)


def carried_by(cloud: str, machine_type: str) -> tuple[GpuType, int] | None:
    """The GPU and GPU count a fixed-count machine type carries; None for N1 or CPU types."""
    for gpu in GPU_TYPES.values():
        machines = gpu.aws_instances if cloud == "aws" else gpu.gcp_machines
        if machine_type in machines:
            return gpu, machines[machine_type]
    return None


def _sizes(family: str, separator: str, sizes_by_count: Mapping[int, str]) -> dict[str, int]:
    """``_sizes("g6", ".", {1: "xlarge 2xlarge", 4: "12xlarge"})`` -> ``{"g6.xlarge": 1, ...}``."""
    return {
        f"{family}{separator}{size}": count
        for count, sizes in sizes_by_count.items()
        for size in sizes.split()
    }


EC2_G_SIZES = {1: "xlarge 2xlarge 4xlarge 8xlarge 16xlarge", 4: "12xlarge 24xlarge", 8: "48xlarge"}
"""g5, g6 and g6e share their sizes and GPU counts."""
GCE_SIZES = {1: "1g", 2: "2g", 4: "4g", 8: "8g"}
"""A2 and A3 name the GPU count in the size."""

GPU_TYPES: dict[str, GpuType] = {
    gpu.name: gpu
    for gpu in (
        GpuType(
            "t4", "7.5", 16, "nvidia-tesla-t4",
            aws_instances=_sizes("g4dn", ".", {1: "xlarge 2xlarge 4xlarge 8xlarge 16xlarge",
                                               4: "12xlarge", 8: "metal"}),
            n1_max_vcpus={1: 48, 2: 48, 4: 96},
        ),
        GpuType(
            "v100", "7.0", 16, "nvidia-tesla-v100",
            aws_instances=_sizes("p3", ".", {1: "2xlarge", 4: "8xlarge", 8: "16xlarge"}),
            n1_max_vcpus={1: 12, 2: 24, 4: 48, 8: 96},
        ),
        GpuType("a10g", "8.6", 24, aws_instances=_sizes("g5", ".", EC2_G_SIZES)),
        GpuType(
            "l4", "8.9", 24, "nvidia-l4",
            aws_instances=_sizes("g6", ".", EC2_G_SIZES),
            gcp_machines=_sizes("g2-standard", "-", {1: "4 8 12 16 32", 2: "24", 4: "48",
                                                     8: "96"}),
        ),
        GpuType("l40s", "8.9", 48, aws_instances=_sizes("g6e", ".", EC2_G_SIZES)),
        GpuType(
            "a100-40gb", "8.0", 40, "nvidia-tesla-a100",
            aws_instances=_sizes("p4d", ".", {8: "24xlarge"}),
            gcp_machines=_sizes("a2-highgpu", "-", GCE_SIZES)
            | _sizes("a2-megagpu", "-", {16: "16g"}),
        ),
        GpuType(
            "a100-80gb", "8.0", 80, "nvidia-a100-80gb",
            aws_instances=_sizes("p4de", ".", {8: "24xlarge"}),
            gcp_machines=_sizes("a2-ultragpu", "-", GCE_SIZES),
        ),
        GpuType(
            "h100-80gb", "9.0", 80, "nvidia-h100-80gb",
            aws_instances=_sizes("p5", ".", {1: "4xlarge", 8: "48xlarge"}),
            gcp_machines=_sizes("a3-highgpu", "-", GCE_SIZES),
        ),
    )
}  # fmt: skip
