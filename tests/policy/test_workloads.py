"""Triton workloads (image, limits, security context, probes) and metrics Services."""

import pytest

from infra.offline import MockedResource
from policy.rules import ResourcePolicy
from policy.workloads import (
    METRICS_NOT_PUBLIC,
    TRITON_IMAGE_PINNED,
    TRITON_PROBES,
    TRITON_RESOURCE_LIMITS,
    TRITON_SECURITY_CONTEXT,
    image_parts,
)
from tests.policy.builders import PUBLIC_K8S_PROVIDER, REMOVE, changed, messages, resource

PROBE = {"httpGet": {"path": "/v2/health/ready", "port": 8000}}
TRITON = {
    "name": "triton",
    "image": "nvcr.io/nvidia/tritonserver:24.10-py3",
    "args": ["--model-control-mode=explicit", "--load-model=text_embedding"],
    "resources": {
        "requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
    },
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "startupProbe": {**PROBE, "failureThreshold": 60},
    "readinessProbe": PROBE,
    "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": 8000}},
}
SIDECAR = {"name": "config-reloader", "image": "busybox"}  # not Triton: out of scope
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "triton", "namespace": "serving"},
    "spec": {
        "selector": {"matchLabels": {"app": "triton"}},
        "template": {
            "metadata": {"labels": {"app": "triton"}},
            "spec": {"containers": [TRITON, SIDECAR]},
        },
    },
}
ALL = (TRITON_IMAGE_PINNED, TRITON_RESOURCE_LIMITS, TRITON_SECURITY_CONTEXT, TRITON_PROBES)


def triton_messages(policy: ResourcePolicy, container: dict, kind: str = "Deployment") -> list[str]:
    props = changed(DEPLOYMENT, "spec.template.spec.containers.0", container)
    token = {
        "Deployment": "kubernetes:apps/v1:Deployment",
        "StatefulSet": "kubernetes:apps/v1:StatefulSet",
    }[kind]
    return messages(policy, resource(token, "public-triton", props, provider=PUBLIC_K8S_PROVIDER))


@pytest.mark.parametrize("policy", ALL, ids=lambda p: p.name)
def test_a_hardened_triton_deployment_passes(policy: ResourcePolicy) -> None:
    assert triton_messages(policy, TRITON) == []
    assert triton_messages(policy, TRITON, kind="StatefulSet") == []


def test_image_parts() -> None:
    assert image_parts("nvcr.io/nvidia/tritonserver:24.10-py3") == (
        "nvcr.io/nvidia/tritonserver",
        "24.10-py3",
        None,
    )
    assert image_parts("localhost:5000/tritonserver") == ("localhost:5000/tritonserver", None, None)
    assert image_parts("tritonserver@sha256:abc") == ("tritonserver", None, "sha256:abc")


def test_images_must_be_pinned() -> None:
    label = "Triton container 'triton' of 'public-triton'"
    digest = "nvcr.io/nvidia/tritonserver@sha256:" + "a" * 64
    assert triton_messages(TRITON_IMAGE_PINNED, changed(TRITON, "image", digest)) == []
    assert triton_messages(
        TRITON_IMAGE_PINNED, changed(TRITON, "image", "nvcr.io/nvidia/tritonserver:latest")
    ) == [
        f"{label}: image 'nvcr.io/nvidia/tritonserver:latest' uses ':latest'; "
        "pin a version tag or a digest"
    ]
    assert triton_messages(
        TRITON_IMAGE_PINNED, changed(TRITON, "image", "registry:5000/tritonserver")
    ) == [f"{label}: image 'registry:5000/tritonserver' has no tag; pin a version tag or a digest"]


def test_triton_is_recognised_by_its_command_too() -> None:
    custom = changed(TRITON, "image", "ghcr.io/acme/inference")
    custom = changed(custom, "command", ["/opt/tritonserver/bin/tritonserver"])
    assert triton_messages(TRITON_PROBES, changed(custom, "livenessProbe", REMOVE)) == [
        "Triton container 'triton' of 'public-triton': has no livenessProbe"
    ]


def test_limits_are_required() -> None:
    no_cpu = changed(TRITON, "resources.limits", {"memory": "16Gi"})
    assert triton_messages(TRITON_RESOURCE_LIMITS, no_cpu) == [
        "Triton container 'triton' of 'public-triton': resources.limits must set cpu"
    ]
    assert triton_messages(TRITON_RESOURCE_LIMITS, changed(TRITON, "resources", REMOVE)) == [
        "Triton container 'triton' of 'public-triton': resources.limits must set cpu and memory"
    ]


def test_the_security_context_is_locked_down() -> None:
    label = "Triton container 'triton' of 'public-triton'"
    loose = changed(
        TRITON, "securityContext", {"privileged": True, "capabilities": {"drop": ["NET_RAW"]}}
    )
    assert triton_messages(TRITON_SECURITY_CONTEXT, loose) == [
        f"{label}: securityContext.runAsNonRoot must be true (on the container or the pod)",
        f"{label}: securityContext.privileged must not be true",
        f"{label}: securityContext.readOnlyRootFilesystem must be true",
        f"{label}: securityContext.capabilities.drop must include 'ALL'",
    ]


def test_run_as_non_root_may_come_from_the_pod() -> None:
    container = changed(TRITON, "securityContext.runAsNonRoot", REMOVE)
    props = changed(DEPLOYMENT, "spec.template.spec.containers.0", container)
    deployment = resource("kubernetes:apps/v1:Deployment", "d", props)
    assert messages(TRITON_SECURITY_CONTEXT, deployment) == [
        "Triton container 'triton' of 'd': securityContext.runAsNonRoot must be true "
        "(on the container or the pod)"
    ]
    pod_level = changed(props, "spec.template.spec.securityContext", {"runAsNonRoot": True})
    assert (
        messages(TRITON_SECURITY_CONTEXT, resource("kubernetes:apps/v1:Deployment", "d", pod_level))
        == []
    )


def test_all_three_probes_are_required() -> None:
    bare = changed(changed(TRITON, "startupProbe", REMOVE), "readinessProbe", REMOVE)
    assert triton_messages(TRITON_PROBES, bare) == [
        "Triton container 'triton' of 'public-triton': has no startupProbe",
        "Triton container 'triton' of 'public-triton': has no readinessProbe",
    ]


def service(kind: str, ports: list[dict]) -> MockedResource:
    return resource(
        "kubernetes:core/v1:Service", "triton", {"spec": {"type": kind, "ports": ports}}
    )


def test_metrics_stay_off_load_balancers() -> None:
    grpc = {"name": "grpc", "port": 443, "targetPort": 8001}
    metrics = {"name": "metrics", "port": 8002, "targetPort": 8002}
    assert (
        messages(
            METRICS_NOT_PUBLIC,
            service("LoadBalancer", [grpc]),
            service("ClusterIP", [grpc, metrics]),
        )
        == []
    )
    assert messages(
        METRICS_NOT_PUBLIC,
        service("LoadBalancer", [grpc, metrics]),
        service("LoadBalancer", [{"name": "prom", "port": 9090, "targetPort": "metrics"}]),
    ) == [
        "Service 'triton' is a LoadBalancer exposing port 8002 (metrics, targetPort 8002); "
        "serve metrics on a ClusterIP Service for Prometheus",
        "Service 'triton' is a LoadBalancer exposing port 9090 (metrics, targetPort metrics); "
        "serve metrics on a ClusterIP Service for Prometheus",
    ]
