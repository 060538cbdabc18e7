"""Every Kubernetes object the program renders, validated like the API server would: built-in
kinds against the Kubernetes OpenAPI schema of the configured version (strict: unknown
fields fail), Prometheus Operator kinds against pinned schemas of their CRDs."""

import json
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from hybrid.config import load_stack_config
from hybrid.sites import SITES
from tests.components.serving_support import STACKS, evaluation, kubernetes_objects

pytestmark = pytest.mark.usefixtures("rendered_repositories")

SCHEMAS = Path(__file__).parent / "schemas"
CUSTOM_GROUPS = ("monitoring.coreos.com/",)


@cache
def crd_schema(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group, version = api_version.split("/")
    path = SCHEMAS / f"{group}_{version}_{kind.lower()}.json"
    assert path.is_file(), f"no pinned schema for {api_version} {kind}; add {path.name}"
    schema = json.loads(path.read_text())
    return jsonschema.Draft202012Validator(schema)


def validate(manifest: dict, kubernetes_version: str) -> list[str]:
    """Every problem with ``manifest``, as readable lines (empty when it is valid)."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    if api_version.startswith(CUSTOM_GROUPS):
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_schema(api_version, kind).iter_errors(manifest)
        ]
    try:
        kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    return []


CASES = [(stack, site) for stack in STACKS for site in SITES]


@pytest.mark.parametrize("stack, site", CASES)
def test_every_rendered_object_is_valid_for_the_configured_kubernetes(stack, site):
    version = load_stack_config(stack).public.kubernetes_version
    objects = kubernetes_objects(evaluation(stack), site)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PrometheusRule"} <= kinds
    problems = {f"{o['kind']}/{o['metadata']['name']}": validate(o, version) for o in objects}
    assert not {name: p for name, p in problems.items() if p}


@pytest.mark.parametrize(
    "manifest",
    [
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "x"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "x"},
                "maxReplicas": 2,
                "minReplica": 1,
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "x"},
            "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expression": "up"}]}]},
        },
    ],
    ids=["typo-in-builtin", "typo-in-custom-resource"],
)
def test_the_validation_rejects_a_misspelled_field(manifest):
    assert validate(manifest, load_stack_config("dev").public.kubernetes_version)
