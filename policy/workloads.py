"""Kubernetes objects that run Triton, and the Services in front of them.

A container runs Triton when its image is a ``tritonserver`` image or its command starts
``tritonserver``. Such containers get pinned images, resource limits, a locked-down
security context and all three probes (Triton loads models for a while before it is
ready, so the startup probe is what keeps the liveness probe from killing it early).
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import Severity

from policy.props import as_number, get, items
from policy.rules import ResourcePolicy, ResourceRule

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
SERVICE = "kubernetes:core/v1:Service"
METRICS_PORT = 8002
METRICS_PORT_NAME = "metrics"
REQUIRED_LIMITS = ("cpu", "memory")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

ContainerCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], Iterator[str]]
"""(container, pod spec) -> what is wrong with that Triton container."""


def is_triton(container: Mapping[str, Any]) -> bool:
    repository = image_parts(str(get(container, "image", default="")))[0]
    command = [str(c) for c in items(get(container, "command"))[:1]]
    return repository.rsplit("/", 1)[-1].startswith("tritonserver") or any(
        c.rsplit("/", 1)[-1] == "tritonserver" for c in command
    )


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """``registry/repo:tag@sha256:...`` -> (repository, tag, digest)."""
    name, _, digest = image.partition("@")
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


def _triton_rule(summary: str, check: ContainerCheck) -> ResourceRule:
    """Run ``check`` on every Triton container of every workload kind."""

    def for_workload(path: tuple[str, ...]) -> Callable[[Mapping[str, Any], str], Iterator[str]]:
        def run(props: Mapping[str, Any], name: str) -> Iterator[str]:
            pod = get(props, *path, default={})
            for container in items(get(pod, "containers")):
                if is_triton(container):
                    label = f"Triton container '{get(container, 'name')}' of '{name}'"
                    for problem in check(container, pod):
                        yield f"{label}: {problem}"

        return run

    checks = {kind: for_workload(path) for kind, path in POD_SPEC_PATHS.items()}
    return ResourceRule("kubernetes", summary, checks)


def _pinned_image(container: Mapping[str, Any], _pod: Mapping[str, Any]) -> Iterator[str]:
    image = str(get(container, "image", default=""))
    _, tag, digest = image_parts(image)
    if digest is None and tag is None:
        yield f"image '{image}' has no tag; pin a version tag or a digest"
    elif digest is None and tag == "latest":
        yield f"image '{image}' uses ':latest'; pin a version tag or a digest"


def _limits(container: Mapping[str, Any], _pod: Mapping[str, Any]) -> Iterator[str]:
    limits = get(container, "resources", "limits", default={})
    missing = [kind for kind in REQUIRED_LIMITS if not get(limits, kind)]
    if missing:
        yield f"resources.limits must set {' and '.join(missing)}"


def _runs_as_non_root(container: Mapping[str, Any], pod: Mapping[str, Any]) -> Iterator[str]:
    pod_level = get(pod, "securityContext", "runAsNonRoot")
    if get(container, "securityContext", "runAsNonRoot", default=pod_level) is not True:
        yield "securityContext.runAsNonRoot must be true (on the container or the pod)"


def _not_privileged(container: Mapping[str, Any], _pod: Mapping[str, Any]) -> Iterator[str]:
    if get(container, "securityContext", "privileged") is True:
        yield "securityContext.privileged must not be true"


def _read_only_root(container: Mapping[str, Any], _pod: Mapping[str, Any]) -> Iterator[str]:
    if get(container, "securityContext", "readOnlyRootFilesystem") is not True:
        yield "securityContext.readOnlyRootFilesystem must be true"


def _capabilities_dropped(container: Mapping[str, Any], _pod: Mapping[str, Any]) -> Iterator[str]:
    dropped = [str(c) for c in items(get(container, "securityContext", "capabilities", "drop"))]
    if "ALL" not in dropped:
        yield "securityContext.capabilities.drop must include 'ALL'"


def _probe(kind: str) -> ContainerCheck:
    def check(container: Mapping[str, Any], _pod: Mapping[str, Any]) -> Iterator[str]:
        if not get(container, kind):
            yield f"has no {kind}"

    return check


def _metrics_on_load_balancer(props: Mapping[str, Any], name: str) -> Iterator[str]:
    if get(props, "spec", "type") != "LoadBalancer":
        return
    for port in items(get(props, "spec", "ports")):
        target = get(port, "targetPort")
        exposes_metrics = (
            as_number(get(port, "port")) == METRICS_PORT
            or as_number(target) == METRICS_PORT
            or METRICS_PORT_NAME in (get(port, "name"), target)
        )
        if exposes_metrics:
            number = as_number(get(port, "port"))
            # Ports cross the wire as floats; a named targetPort stays a string.
            shown = f"{target:g}" if isinstance(target, float) else target
            yield (
                f"Service '{name}' is a LoadBalancer exposing port {number:g} (metrics, "
                f"targetPort {shown}); serve metrics on a ClusterIP Service for Prometheus"
            )


TRITON_IMAGE_PINNED = ResourcePolicy(
    "triton-image-pinned",
    "Triton containers run a pinned image: a version tag or a digest, never ':latest' or no tag.",
    Severity.HIGH,
    [_triton_rule("pinned Triton image", _pinned_image)],
)

TRITON_RESOURCE_LIMITS = ResourcePolicy(
    "triton-resource-limits",
    "Triton containers set CPU and memory limits.",
    Severity.MEDIUM,
    [_triton_rule("CPU and memory limits", _limits)],
)

TRITON_SECURITY_CONTEXT = ResourcePolicy(
    "triton-security-context",
    "Triton containers run as non-root, unprivileged, with a read-only root filesystem "
    "and every capability dropped.",
    Severity.HIGH,
    [
        _triton_rule("runAsNonRoot", _runs_as_non_root),
        _triton_rule("not privileged", _not_privileged),
        _triton_rule("read-only root filesystem", _read_only_root),
        _triton_rule("all capabilities dropped", _capabilities_dropped),
    ],
)

TRITON_PROBES = ResourcePolicy(
    "triton-probes",
    "Triton containers have startup, readiness and liveness probes.",
    Severity.MEDIUM,
    [_triton_rule(f"{probe} set", _probe(probe)) for probe in PROBES],
)

METRICS_NOT_PUBLIC = ResourcePolicy(
    "metrics-not-on-load-balancer",
    "No LoadBalancer Service exposes Triton's metrics port 8002.",
    Severity.HIGH,
    [
        ResourceRule(
            "kubernetes", "no LoadBalancer on port 8002", {SERVICE: _metrics_on_load_balancer}
        )
    ],
)
