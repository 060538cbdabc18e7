"""TensorRT: the builder command and the Kubernetes Job that runs it on a site's GPU pool."""

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import numpy as np
import pytest

from hybrid.config import load_stack_config
from hybrid.gpu_scheduling import COMPUTE_CAPABILITY_LABEL
from hybrid.gpus import GPU_TYPES
from hybrid.paths import MODEL_REPO
from hybrid.triton import tensorrt_image
from modelkit.artifacts import ENCODER_ONNX, MINILM
from modelkit.onnx2tensorrt import plan_filename, trtexec_command
from modelkit.render import encoder_profile
from modelkit.tensorrt_job import plan_build_jobs

PROFILE = encoder_profile(MODEL_REPO)

REPO = "s3://acme-models/repo/0123abcd"


def test_plan_names_follow_the_compute_capability() -> None:
    assert plan_filename(GPU_TYPES["t4"]) == "model_sm75.plan"
    assert plan_filename(GPU_TYPES["l4"]) == "model_sm89.plan"
    assert plan_filename(GPU_TYPES["a100-40gb"]) == "model_sm80.plan"


def test_trtexec_builds_an_fp16_plan_covering_every_shape_triton_sends() -> None:
    profile = encoder_profile(MODEL_REPO)
    assert profile.input_names == ("input_ids", "attention_mask")
    assert (profile.max_batch, profile.max_length) == (64, 128)  # encoder max_batch_size, 128
    command = trtexec_command("/w/model.onnx", "/w/model_sm89.plan", profile)
    assert command[0] == "trtexec" and "--fp16" in command
    assert "--onnx=/w/model.onnx" in command and "--saveEngine=/w/model_sm89.plan" in command
    assert "--minShapes=input_ids:1x1,attention_mask:1x1" in command
    assert "--maxShapes=input_ids:64x128,attention_mask:64x128" in command
    assert any(arg.startswith("--optShapes=input_ids:16x32,") for arg in command)


def test_the_builder_image_follows_the_triton_release() -> None:
    (job,) = plan_build_jobs(
        load_stack_config("dev"),
        "private",
        profile=PROFILE,
        repo_url="gs://b/repo/h",
        namespace="triton",
        service_account="sa",
        ngc_release="25.01",
    )
    (_, build) = job["spec"]["template"]["spec"]["initContainers"]
    assert build["image"] == "nvcr.io/nvidia/tensorrt:25.01-py3"


def test_one_job_per_compute_capability_of_the_site() -> None:
    prod = load_stack_config("prod")  # private: l4 (8.9) + a100 (8.0); public: l4 + a10g (8.6)
    private = plan_build_jobs(
        prod,
        "private",
        profile=PROFILE,
        repo_url="gs://b/repo/h",
        namespace="triton",
        service_account="sa",
    )
    assert [job["metadata"]["name"] for job in private] == [
        "tensorrt-plan-private-sm80",
        "tensorrt-plan-private-sm89",
    ]
    dev = load_stack_config("dev")
    (public,) = plan_build_jobs(
        dev, "public", profile=PROFILE, repo_url=REPO, namespace="triton", service_account="sa"
    )
    assert public["spec"]["template"]["spec"]["nodeSelector"] == {COMPUTE_CAPABILITY_LABEL: "7.5"}


@pytest.mark.parametrize("url", [REPO, "gs://acme-models/repo/0123abcd"])
def test_the_job_fetches_builds_on_the_gpu_and_uploads_next_to_the_onnx(url: str) -> None:
    (job,) = plan_build_jobs(
        load_stack_config("dev"),
        "public",
        profile=PROFILE,
        repo_url=url + "/",
        namespace="triton",
        service_account="plan-builder",
    )
    pod = job["spec"]["template"]["spec"]
    fetch, build = pod["initContainers"]
    (upload,) = pod["containers"]
    assert f"{url}/minilm_encoder/1/model.onnx" in fetch["command"]
    assert (
        build["image"] == tensorrt_image(load_stack_config("dev").serving.triton_image_tag)
        and build["command"][0] == "trtexec"
    )
    assert "--saveEngine=/work/model_sm75.plan" in build["command"]
    assert build["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert upload["command"][-2:] == [
        "/work/model_sm75.plan",
        f"{url}/minilm_encoder/1/model_sm75.plan",
    ]
    cli = "aws" if url.startswith("s3://") else "gcloud"
    assert fetch["command"][0] == upload["command"][0] == cli
    if cli == "aws":  # S3 keeps the plan's SHA-256, so fetch-plans can verify it
        flag = upload["command"].index("--checksum-algorithm")
        assert upload["command"][flag + 1] == "SHA256"
        assert "--checksum-algorithm" not in fetch["command"]
    assert pod["serviceAccountName"] == "plan-builder" and pod["restartPolicy"] == "Never"
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
            "effect": "NoSchedule"} in pod["tolerations"]  # fmt: skip
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in (fetch, build, upload):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] and context["capabilities"] == {"drop": ["ALL"]}
        assert not context["allowPrivilegeEscalation"]


def test_the_job_is_a_valid_kubernetes_object() -> None:
    config = load_stack_config("prod")
    for site, url in (("public", REPO), ("private", "gs://b/repo/h")):
        for job in plan_build_jobs(
            config, site, profile=PROFILE, repo_url=url, namespace="triton", service_account="sa"
        ):
            kubernetes_validate.validate(job, config.public.kubernetes_version, strict=True)


def test_a_repository_outside_s3_or_gcs_is_refused() -> None:
    with pytest.raises(ValueError, match="s3:// or gs://"):
        plan_build_jobs(
            load_stack_config("dev"),
            "public",
            profile=PROFILE,
            repo_url="https://x/y",
            namespace="t",
            service_account="s",
        )


def _missing_for_tensorrt() -> str | None:
    """Why the real engine build cannot run here (None when it can)."""
    smi = shutil.which("nvidia-smi")
    if smi is None or subprocess.run([smi], capture_output=True, check=False).returncode:
        return "needs an NVIDIA GPU (nvidia-smi); this machine has none"
    if shutil.which("trtexec") is None:
        return "needs TensorRT's trtexec on PATH"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_missing_for_tensorrt() is not None, reason=str(_missing_for_tensorrt()))
def test_trtexec_builds_a_plan_that_matches_onnxruntime(built, tmp_path: Path) -> None:
    onnx = built.artifacts[MINILM].path(ENCODER_ONNX)
    plan = tmp_path / "model.plan"
    subprocess.run(trtexec_command(str(onnx), str(plan), encoder_profile(MODEL_REPO)), check=True)
    assert plan.stat().st_size > 1_000_000
    tensorrt = pytest.importorskip("tensorrt", reason="needs the TensorRT Python API to run it")
    import onnxruntime as ort
    import torch

    from modelkit.minilm import example_inputs

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA build of torch to feed the engine")
    ids, mask = example_inputs(4, 32)
    engine = tensorrt.Runtime(tensorrt.Logger()).deserialize_cuda_engine(plan.read_bytes())
    context = engine.create_execution_context()
    inputs = {"input_ids": ids.cuda(), "attention_mask": mask.cuda()}
    for name, tensor in inputs.items():
        context.set_input_shape(name, tuple(tensor.shape))
        context.set_tensor_address(name, tensor.data_ptr())
    output = torch.empty((4, 384), device="cuda")
    context.set_tensor_address("sentence_embedding", output.data_ptr())
    assert context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    assert np.sum(output.cpu().numpy() * expected, axis=1).min() >= 0.999  # FP16 engine
