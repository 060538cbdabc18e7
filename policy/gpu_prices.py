"""The price table behind the cost guard: USD per GPU-hour, per GPU type and cloud.

Approximate list prices in us-east-1 (AWS) and us-central1 (GCP), mid-2025, for the
smallest machine that carries the GPU, divided by its GPU count, so the host's CPU and
memory are included. Spot prices move daily; these are typical values. Refresh the whole
table at once, and keep a row for every GPU in ``hybrid.gpus.GPU_TYPES`` on every cloud
that offers it (a test checks that).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuPrice:
    on_demand: float
    spot: float

    def hourly(self, spot: bool) -> float:
        return self.spot if spot else self.on_demand


HOURS_PER_MONTH = 730

PRICES: dict[tuple[str, str], GpuPrice] = {
    # AWS: g4dn.xlarge, p3.2xlarge, g5.xlarge, g6.xlarge, g6e.xlarge; p4d/p4de/p5 are 8-GPU.
    ("t4", "aws"): GpuPrice(on_demand=0.526, spot=0.21),
    ("v100", "aws"): GpuPrice(on_demand=3.06, spot=0.92),
    ("a10g", "aws"): GpuPrice(on_demand=1.006, spot=0.40),
    ("l4", "aws"): GpuPrice(on_demand=0.805, spot=0.35),
    ("l40s", "aws"): GpuPrice(on_demand=1.861, spot=0.75),
    ("a100-40gb", "aws"): GpuPrice(on_demand=2.745, spot=1.40),
    ("a100-80gb", "aws"): GpuPrice(on_demand=3.431, spot=1.70),
    ("h100-80gb", "aws"): GpuPrice(on_demand=6.88, spot=3.50),
    # GCP: accelerator plus n1-standard-4 / n1-standard-8, g2-standard-4, a2-highgpu-1g,
    # a2-ultragpu-1g, a3-highgpu-8g / 8.
    ("t4", "gcp"): GpuPrice(on_demand=0.54, spot=0.18),
    ("v100", "gcp"): GpuPrice(on_demand=2.86, spot=1.10),
    ("l4", "gcp"): GpuPrice(on_demand=0.707, spot=0.28),
    ("a100-40gb", "gcp"): GpuPrice(on_demand=3.673, spot=1.47),
    ("a100-80gb", "gcp"): GpuPrice(on_demand=5.069, spot=2.03),
    ("h100-80gb", "gcp"): GpuPrice(on_demand=11.06, spot=3.50),
}
