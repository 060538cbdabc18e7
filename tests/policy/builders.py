"""Small resource fixtures for policy tests, recorded the way the mocks harness records them.

Every fixture goes through ``policy.engine.evaluate``, so the policies see the props the
way the engine hands them over (wire format, SDK proxy), never raw Python dicts.
"""

import copy
from collections.abc import Mapping
from typing import Any

from infra.offline import MockedResource
from policy.engine import Violation, evaluate
from policy.rules import ResourcePolicy, StackPolicy

URN_PREFIX = "urn:pulumi:test::hybrid::"
PUBLIC_K8S_PROVIDER = (
    f"{URN_PREFIX}hybrid:public_cluster:PublicCluster$pulumi:providers:kubernetes::public-k8s"
)
PRIVATE_K8S_PROVIDER = (
    f"{URN_PREFIX}hybrid:private_cluster:PrivateCluster$pulumi:providers:kubernetes::private-k8s"
)
REMOVE = object()


def resource(
    type_: str,
    name: str,
    inputs: Mapping[str, Any] | None = None,
    *,
    outputs: Mapping[str, Any] | None = None,
    provider: str | None = None,
    parents: tuple[str, ...] = (),
    secret_inputs: frozenset[str] = frozenset(),
) -> MockedResource:
    qualified = "$".join([*parents, type_])
    return MockedResource(
        urn=f"{URN_PREFIX}{qualified}::{name}",
        type=type_,
        name=name,
        inputs=dict(inputs or {}),
        outputs=dict(outputs or {}),
        parent=None,
        provider=provider,
        custom=True,
        secret_inputs=secret_inputs,
    )


def changed(props: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``props`` with the dotted ``path`` set to ``value`` (or removed)."""
    result = copy.deepcopy(dict(props))
    *parents, last = path.split(".")
    node: Any = result
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is REMOVE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return result


def violations(
    policy: ResourcePolicy | StackPolicy,
    *resources: MockedResource,
    config: Mapping[str, Any] | None = None,
) -> list[Violation]:
    return evaluate(list(resources), [policy], {policy.name: config} if config else None)


def messages(
    policy: ResourcePolicy | StackPolicy,
    *resources: MockedResource,
    config: Mapping[str, Any] | None = None,
) -> list[str]:
    return [v.message for v in violations(policy, *resources, config=config)]
