"""TensorRT plan builds under the real program: one Job per GPU architecture of a site's
pools, on that pool, writing next to the ONNX under the served prefix, with an identity that
can create plans there and nothing else; none when plans are disabled or already served."""

import json

import pytest

from components.triton_server import GPU_NODE_FROM_ZERO_MINUTES, NGC_IMAGE_PULL_MINUTES
from hybrid.config import load_stack_config
from hybrid.gpu_scheduling import COMPUTE_CAPABILITY_LABEL
from hybrid.manifest import Manifest
from hybrid.sites import SITES
from hybrid.triton import PLAN_BUILDER
from infra.offline import evaluate_stack
from modelkit.tensorrt_job import DEADLINE_SECONDS
from tests.components.serving_support import (
    container,
    copy_repos,
    evaluation,
    flag_values,
    k8s_object,
    kubernetes_objects,
    repository_override,
    site_manifest,
)

pytestmark = pytest.mark.usefixtures("rendered_repositories")

STACK = "prod"
"""Plans are enabled there, and each site has two GPU architectures."""


def jobs(evaluation, site: str) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o for o in kubernetes_objects(evaluation, site) if o["kind"] == "Job"
    }


def test_plans_are_off_by_default_and_on_in_prod():
    assert not load_stack_config("dev").serving.tensorrt
    assert load_stack_config(STACK).serving.tensorrt
    ev = evaluation("dev")
    for site in SITES:
        assert not jobs(ev, site)
    assert not [r for r in ev.resources if "tensorrt" in r.name]


@pytest.mark.parametrize("site", SITES)
def test_one_job_per_gpu_architecture_runs_on_that_pool_and_writes_next_to_the_onnx(site):
    ev = evaluation(STACK)
    config = load_stack_config(STACK)
    capabilities = {gpu.compute_capability for gpu in config.gpu_types_on(site)}
    built = jobs(ev, site)
    assert len(built) == len(capabilities) == 2
    (repository,) = flag_values(container(ev, site)["args"], "model-repository")
    for job in built.values():
        pod = job["spec"]["template"]["spec"]
        capability = pod["nodeSelector"][COMPUTE_CAPABILITY_LABEL]
        capabilities.discard(capability)
        assert pod["serviceAccountName"] == PLAN_BUILDER
        sm = capability.replace(".", "")
        (upload,) = pod["containers"]
        assert upload["command"][-1] == f"{repository}/minilm_encoder/1/model_sm{sm}.plan"
        fetch = pod["initContainers"][0]
        assert f"{repository}/minilm_encoder/1/model.onnx" in fetch["command"]
        (build,) = [c for c in pod["initContainers"] if c["command"][0] == "trtexec"]
        assert build["image"] == f"nvcr.io/nvidia/tensorrt:{config.serving.triton_image_tag}-py3"
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    assert not capabilities, f"no Job for {capabilities}"


@pytest.mark.parametrize("site", SITES)
def test_pulumi_waits_for_a_build_on_a_pool_from_zero_and_lets_kubernetes_fail_it(site):
    ev = evaluation(STACK)
    for name, job in jobs(ev, site).items():
        spec = job["spec"]
        assert spec["activeDeadlineSeconds"] == DEADLINE_SECONDS
        resource = next(r for r in ev.of_type("kubernetes:batch/v1:Job") if r.inputs is job)
        create = int(resource.timeouts["create"].removesuffix("m"))
        # Longer than the Job's own deadline, so Kubernetes reports why it failed.
        assert DEADLINE_SECONDS / 60 < create <= DEADLINE_SECONDS / 60 + 10, name
        # The deadline covers a GPU node from zero and the image, and three tries of a build.
        assert DEADLINE_SECONDS / 60 >= GPU_NODE_FROM_ZERO_MINUTES + NGC_IMAGE_PULL_MINUTES + 15
        # Pulumi owns the Job: nothing deletes it behind its back.
        assert "ttlSecondsAfterFinished" not in spec
        # The cloud identity comes from its own projected token or the metadata server.
        assert spec["template"]["spec"]["automountServiceAccountToken"] is False


def test_the_public_builder_may_create_plans_under_the_served_prefix_only():
    ev = evaluation(STACK)
    (role,) = [
        r for r in ev.of_type("aws:iam/role:Role") if r.name == "public-tensorrt-identity-role"
    ]
    (policy,) = [
        json.loads(p.inputs["policy"])
        for p in ev.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name == "public-tensorrt-identity-policy"
    ]
    prefix = site_manifest(STACK, "public").prefix
    writes = [s for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
    (write,) = writes
    assert len(write["Resource"]) == 1 and write["Resource"][0].endswith(f"/{prefix}*.plan")
    reads = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    assert all(r.endswith(f"/{prefix}*") for s in reads for r in s["Resource"])
    trust = json.loads(role.inputs["assumeRolePolicy"])
    subjects = trust["Statement"][0]["Condition"]["StringEquals"].values()
    assert f"system:serviceaccount:triton:{PLAN_BUILDER}" in subjects
    account = k8s_object(ev, "public", "ServiceAccount", PLAN_BUILDER)
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}


def test_the_private_builder_may_create_plans_under_the_served_prefix_only():
    ev = evaluation(STACK)
    (writer,) = [
        r
        for r in ev.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
        if r.name == "private-tensorrt-identity-plan-writer"
    ]
    assert writer.inputs["role"] == "roles/storage.objectCreator"
    prefix = site_manifest(STACK, "private").prefix
    expression = writer.inputs["condition"]["expression"]
    assert f'/objects/{prefix}")' in expression and 'endsWith(".plan")' in expression


def test_no_job_once_the_served_repository_holds_every_plan(tmp_path):
    root = copy_repos(tmp_path / "repos")
    folder = root / "public" / "minilm_encoder" / "1"
    for gpu in load_stack_config(STACK).gpu_types_on("public"):
        (folder / f"model_sm{gpu.sm}.plan").write_bytes(b"engine")
    Manifest.of_directory(root / "public", target="public", stack=STACK).write(root / "public")
    ev = evaluate_stack(STACK, config_overrides=repository_override(root))
    assert not jobs(ev, "public")
    assert len(jobs(ev, "private")) == 2
