"""Shared by the Triton-on-clusters tests: the rendered repositories, the mocked runs of the
whole program (shared with every other test through ``tests.conftest.evaluated``), and
views of what the program registered per site.
"""

import functools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hybrid.config import load_stack_config
from hybrid.manifest import Manifest, load_verified
from hybrid.paths import REPOS_DIR
from hybrid.sites import SITES
from infra.offline import MockedResource, StackEvaluation
from modelkit.placement import site_models
from tests.conftest import evaluated

STACKS = ("dev", "prod")
"""The smallest and the largest stack: one GPU type per site, and several."""


def evaluation(stack: str) -> StackEvaluation:
    return evaluated(stack)


def rendered_repos() -> Path:
    """``build/repos``, rendered once per session by the ``rendered_repositories`` fixture."""
    return REPOS_DIR


@functools.cache
def site_manifest(stack: str, site: str) -> Manifest:
    """What the stack must upload for ``site``: the placed models of the rendered target."""
    config = load_stack_config(stack)
    return load_verified(REPOS_DIR / site).for_models(site_models(config, site))


def repository_override(root: Path) -> dict[str, str]:
    """Point a stack at other rendered repositories (an absolute path overrides the root)."""
    return {"hybrid:modelRepositoryDir": str(root)}


def copy_repos(destination: Path) -> Path:
    """A private copy of the rendered repositories, to tamper with."""
    shutil.copytree(REPOS_DIR, destination, ignore=shutil.ignore_patterns(".*"))
    return destination


def site_of(resource: MockedResource) -> str:
    """Every resource of the program is named after its site (``public-…``, ``private-…``)."""
    prefix = resource.name.split("-", 1)[0]
    return prefix if prefix in SITES else "shared"


def on_site(evaluation: StackEvaluation, site: str) -> Iterator[MockedResource]:
    return (r for r in evaluation.resources if site_of(r) == site)


def kubernetes_objects(evaluation: StackEvaluation, site: str) -> list[dict[str, Any]]:
    """The Kubernetes manifests of a site, as the provider would send them to the API server."""
    return [
        r.inputs
        for r in on_site(evaluation, site)
        if r.type.startswith("kubernetes:") and r.custom and "apiVersion" in r.inputs
    ]


def k8s_object(evaluation: StackEvaluation, site: str, kind: str, name: str) -> dict[str, Any]:
    matches = [
        o
        for o in kubernetes_objects(evaluation, site)
        if o["kind"] == kind and o["metadata"]["name"] == name
    ]
    assert len(matches) == 1, f"expected one {kind} {name!r} on the {site} site, got {len(matches)}"
    return matches[0]


def container(evaluation: StackEvaluation, site: str) -> dict[str, Any]:
    deployment = k8s_object(evaluation, site, "Deployment", "triton")
    (triton,) = deployment["spec"]["template"]["spec"]["containers"]
    return triton


def flag_values(args: list[str], flag: str) -> list[str]:
    """Values of every ``--flag=value`` in a container's args, in order."""
    return [arg.split("=", 1)[1] for arg in args if arg.startswith(f"--{flag}=")]


def as_text(resource: MockedResource) -> str:
    """Inputs and outputs as one JSON string, to search for a name anywhere in a resource."""
    return json.dumps([resource.name, resource.inputs, resource.outputs], default=str)
