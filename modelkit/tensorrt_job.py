"""The Kubernetes Job that builds the encoder's TensorRT plan on a site's own GPUs.

It is a plain manifest (a dict) so it can be unit-tested and validated against the
Kubernetes schema here; the Triton-on-clusters component wraps it in pulumi-kubernetes.
The Job fetches ``minilm_encoder/1/model.onnx`` from the repository prefix, runs trtexec
on a node of the wanted compute capability and uploads ``model_sm<cc>.plan`` next to the
ONNX. Its service account needs read on the prefix and write on that one object.
"""

from typing import Any

from hybrid.config import StackConfig
from hybrid.gpu_scheduling import (
    COMPUTE_CAPABILITY_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_EFFECT,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
)
from hybrid.gpus import GpuType
from hybrid.triton import PLAN_BUILDER, tensorrt_image
from modelkit.onnx2tensorrt import ShapeProfile, plan_filename, trtexec_command

ENCODER = "minilm_encoder"
AWS_CLI_IMAGE = "amazon/aws-cli:2.17.0"
GCLOUD_IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:499.0.0-slim"
DEADLINE_SECONDS = 60 * 60
"""The Job's activeDeadlineSeconds, sized for a pool that starts at zero nodes: the
autoscaler adds a GPU node (up to 15 min when GPU capacity is short), GKE installs its
driver (up to 10 min; EKS's NVIDIA AMI has it), the node pulls the ~10 GB TensorRT image
(up to 15 min), and trtexec builds the encoder (a few minutes, at most three tries with
``backoffLimit: 2``): about 50 minutes at worst."""
_WORK = "/work"


def plan_build_jobs(
    config: StackConfig,
    site: str,
    *,
    repo_url: str,
    namespace: str,
    service_account: str,
    profile: ShapeProfile,
    ngc_release: str | None = None,
) -> list[dict[str, Any]]:
    """One Job per distinct compute capability among the site's GPU pools."""
    by_capability = {gpu.compute_capability: gpu for gpu in config.gpu_types_on(site)}
    return [
        plan_build_job(
            gpu,
            site=site,
            repo_url=repo_url,
            namespace=namespace,
            service_account=service_account,
            profile=profile,
            ngc_release=ngc_release or config.serving.triton_image_tag,
        )
        for _, gpu in sorted(by_capability.items())
    ]


def plan_build_job(
    gpu: GpuType,
    *,
    site: str,
    repo_url: str,
    namespace: str,
    service_account: str,
    profile: ShapeProfile,
    ngc_release: str,
) -> dict[str, Any]:
    """The Job manifest that builds ``model_sm<cc>.plan`` for ``gpu`` under ``repo_url``.

    ``ngc_release`` must be the serving Triton image's release (plans are tied to it).
    """
    base = repo_url.rstrip("/")
    plan = plan_filename(gpu)
    image, copy = _copier(base)
    name = job_name(site, gpu.sm)
    labels = {
        "app.kubernetes.io/name": PLAN_BUILDER,
        "app.kubernetes.io/part-of": "hybrid-inference",
        "hybrid.dev/site": site,
        COMPUTE_CAPABILITY_LABEL: gpu.compute_capability,
    }
    build = _container(
        "build-plan",
        tensorrt_image(ngc_release),
        trtexec_command(f"{_WORK}/model.onnx", f"{_WORK}/{plan}", profile),
        requests={"cpu": "2", "memory": "8Gi"},
        limits={"cpu": "4", "memory": "16Gi", GPU_RESOURCE: "1"},
    )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            # No ttlSecondsAfterFinished: Pulumi owns the Job. Deleted behind its back, the
            # Job would be created (and the plan built) again by the next `pulumi up`; it
            # goes away when the rendered repository holds the plan and the program drops it.
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    # The Job never calls the Kubernetes API. Its cloud identity needs no
                    # API token either: on EKS the pod identity webhook adds its own projected
                    # token (audience sts.amazonaws.com) for IRSA, and on GKE the metadata
                    # server hands out the Workload Identity credentials.
                    "automountServiceAccountToken": False,
                    "nodeSelector": {COMPUTE_CAPABILITY_LABEL: gpu.compute_capability},
                    "tolerations": [
                        {
                            "key": GPU_TAINT_KEY,
                            "operator": "Equal",
                            "value": GPU_TAINT_VALUE,
                            "effect": GPU_TAINT_EFFECT,
                        }
                    ],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # Init containers run in order: fetch, then build; the upload runs last.
                    "initContainers": [
                        _container(
                            "fetch-onnx",
                            image,
                            copy(f"{base}/{ENCODER}/1/model.onnx", f"{_WORK}/model.onnx"),
                        ),
                        build,
                    ],
                    "containers": [
                        _container(
                            "upload-plan",
                            image,
                            copy(f"{_WORK}/{plan}", f"{base}/{ENCODER}/1/{plan}"),
                        )
                    ],
                    "volumes": [
                        {"name": "work", "emptyDir": {"sizeLimit": "4Gi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                },
            },
        },
    }


def job_name(site: str, sm: str) -> str:
    """``tensorrt-plan-public-sm89``: one Job per site and GPU architecture."""
    return f"tensorrt-plan-{site}-sm{sm}"


def _copier(repo_url: str) -> tuple[str, Any]:
    """The image and copy command for the bucket's cloud (S3 on AWS, GCS on GCP).

    Uploads to S3 carry a SHA-256 that S3 checks on arrival and keeps, so that
    ``fetch-plans`` can verify the plan end to end (GCS keeps a CRC32C on its own).
    """
    if repo_url.startswith("s3://"):
        return AWS_CLI_IMAGE, lambda src, dst: [
            "aws", "s3", "cp", "--only-show-errors",
            *(["--checksum-algorithm", "SHA256"] if dst.startswith("s3://") else []),
            src, dst,
        ]  # fmt: skip
    if repo_url.startswith("gs://"):
        return GCLOUD_IMAGE, lambda src, dst: ["gcloud", "storage", "cp", src, dst]
    raise ValueError(f"repo_url must start with s3:// or gs://, got '{repo_url}'")


def _container(
    name: str,
    image: str,
    command: list[str],
    *,
    requests: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "command": command,
        "env": [{"name": "HOME", "value": "/tmp"}],  # CLIs keep their config under HOME
        "resources": {
            "requests": requests or {"cpu": "250m", "memory": "512Mi"},
            "limits": limits or {"cpu": "1", "memory": "1Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "work", "mountPath": _WORK},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
