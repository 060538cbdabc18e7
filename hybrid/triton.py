"""The Triton release and how its Service is reached on each site.

The stack deploys Triton under these names; the smoke check and the policy review reach it
by the same ones.
"""

from hybrid.sites import Site

TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:{release}-py3"
TENSORRT_IMAGE = "nvcr.io/nvidia/tensorrt:{release}-py3"
"""The TensorRT builder; its NGC release must equal the Triton image's, or Triton refuses
the plans. The release itself is ``hybrid:tritonImageTag`` (Pulumi.yaml holds its default)."""

NAMESPACE = "triton"
SERVICE = "triton"
SERVICE_ACCOUNT = "triton"
PLAN_BUILDER = "tensorrt-plan-builder"
"""Service account of the TensorRT build Jobs: the only identity that may write plans."""
PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
GRPC_PORT_NAME = "grpc"


def triton_image(release: str) -> str:
    return TRITON_IMAGE.format(release=release)


def tensorrt_image(release: str) -> str:
    return TENSORRT_IMAGE.format(release=release)


def server_name(site: Site | str) -> str:
    """The name a site's server certificate carries across the VPN, which the addresses a
    client uses (an NLB hostname, a port-forward) do not."""
    return f"{SERVICE}.{site}.hybrid.internal"


def dns_names(site: Site | str) -> list[str]:
    """Names a Triton Service answers to: in-cluster, and across the VPN."""
    return [
        SERVICE,
        f"{SERVICE}.{NAMESPACE}",
        f"{SERVICE}.{NAMESPACE}.svc",
        f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
        server_name(site),
    ]
