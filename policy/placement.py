"""Placement: nothing on the public site mentions a model that must stay private.

A resource is on the public site when it is an AWS resource, or when it (or the provider
that deploys it) sits under the ``PublicCluster`` component, as the Kubernetes objects on
EKS do. Any known string in its properties (object keys, Triton ``--load-model`` flags,
ConfigMap data, names) that names a private-only model is a leak. Which models are private-
only comes from the stack config, handed to the policy as its ``privateOnlyModels`` setting
(see ``policy.pack_config``).
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyConfigSchema, PolicyResource, Severity

from policy.props import known_strings
from policy.rules import StackPolicy, StackRule

MODELS_KEY = "privateOnlyModels"
PUBLIC_TYPE_PREFIXES = ("aws:", "pulumi:providers:aws")
PUBLIC_COMPONENT_SUFFIX = ":PublicCluster"


def type_chain(urn: str) -> list[str]:
    """The types in a URN: every ancestor component's, then the resource's own."""
    parts = urn.split("::")
    return parts[2].split("$") if len(parts) >= 4 else []


def is_public_site(resource: PolicyResource) -> bool:
    chain = type_chain(resource.urn)
    if resource.provider is not None:
        chain += type_chain(resource.provider.urn)
    return any(
        t.startswith(PUBLIC_TYPE_PREFIXES) or t.endswith(PUBLIC_COMPONENT_SUFFIX) for t in chain
    )


def model_pattern(model: str) -> re.Pattern[str]:
    """The name as a whole word, also in its Kubernetes spelling (``ctr_ranker``/``ctr-ranker``)."""
    spelled = re.escape(model).replace("_", "[_-]").replace(r"\-", "[_-]")
    return re.compile(rf"(?<![A-Za-z0-9]){spelled}(?![A-Za-z0-9])")


def _leaks(
    resources: Sequence[PolicyResource], config: Mapping[str, Any]
) -> Iterator[tuple[str, str | None]]:
    models = config.get(MODELS_KEY)
    if models is None:
        yield (
            f"the pack was not told which models are private-only (policy config "
            f"'{MODELS_KEY}'); run it through `pulumi preview --policy-pack policy`, which "
            "reads them from the stack config, or pass --policy-pack-config",
            None,
        )
        return
    patterns = {model: model_pattern(model) for model in models}
    for resource in resources:
        if not is_public_site(resource):
            continue
        texts = known_strings(resource.props)
        for model, pattern in patterns.items():
            hit = next((text for text in texts if pattern.search(text)), None)
            if hit is not None:
                shown = hit if len(hit) <= 80 else hit[:77] + "..."
                yield (
                    f"{resource.resource_type} '{resource.name}' on the public site "
                    f"references private-only model '{model}' ({shown!r})",
                    resource.urn,
                )


PRIVATE_MODELS_STAY_PRIVATE = StackPolicy(
    "private-models-stay-private",
    "No object of the public site references a model placed only on the private site.",
    Severity.CRITICAL,
    [StackRule("cross-cloud", "public-site objects never name a private-only model", _leaks)],
    config_schema=PolicyConfigSchema({MODELS_KEY: {"type": "array", "items": {"type": "string"}}}),
)
