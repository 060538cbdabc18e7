"""Run the policies in-process, the way the Pulumi engine runs a policy pack.

Never construct a ``PolicyPack`` for this: its constructor starts a gRPC server and serves
forever. Instead each policy's ``validate`` is called directly with arguments built the way
the analyzer builds them: properties sent through a protobuf ``Struct`` (so every number
becomes a float and secrets arrive wrapped), unwrapped by the SDK's deserializer and
wrapped in its unknown-checking proxy; resource policies see inputs, stack policies see
outputs; policy config is the schema defaults plus what the stack supplies; a policy that
touches a value unknown during preview becomes an advisory "can't run" note.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties, serialize_properties
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra.offline import UNKNOWN, MockedResource
from policy.props import resource_label

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Violation:
    policy: str
    enforcement: str
    """``mandatory`` or ``advisory``, after any per-stack override."""
    severity: str
    urn: str | None
    """The resource at fault; None when the stack as a whole is."""
    message: str

    @property
    def resource(self) -> str:
        return resource_label(self.urn) if self.urn else "(stack)"

    @property
    def mandatory(self) -> bool:
        return self.enforcement == EnforcementLevel.MANDATORY.value


def engine_props(values: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> Any:
    """``values`` as a policy receives them: through the wire format, then the SDK's proxy."""
    struct = wire_struct(values, secret_keys)
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(struct)))


def wire_struct(values: Mapping[str, Any], secret_keys: frozenset[str] = frozenset()) -> Any:
    """``values`` as the engine sends them to an analyzer: a protobuf ``Struct``."""
    struct = struct_pb2.Struct()
    struct.update(
        serialize_properties({key: _wire(v, key in secret_keys) for key, v in values.items()})
    )
    return struct


def _wire(value: Any, secret: bool = False) -> Any:
    """Harness values in the SDK's vocabulary; ``serialize_properties`` then signs secrets
    and assets the way the engine does."""
    if secret:
        return Secret(_wire(value))
    if value is UNKNOWN:
        return UNKNOWN_STRING_VALUE  # the engine marshals every unknown as this sentinel
    if isinstance(value, Mapping):
        return {str(k): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    return value


def policy_config(policy: Policy, supplied: Mapping[str, Any] | None) -> dict[str, Any]:
    """Schema defaults overlaid with the supplied settings, as the CLI reconciles them."""
    schema = policy.config_schema.properties if policy.config_schema else {}
    config = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    config.update({k: v for k, v in (supplied or {}).items() if k != "enforcementLevel"})
    return config


def enforcement_of(policy: Policy, supplied: Mapping[str, Any] | None) -> EnforcementLevel:
    override = (supplied or {}).get("enforcementLevel")
    level = (
        EnforcementLevel(override)
        if override
        else policy.enforcement_level or EnforcementLevel.ADVISORY
    )
    # Stack policies cannot remediate; a remediation that still fails counts as mandatory.
    return EnforcementLevel.MANDATORY if level is EnforcementLevel.REMEDIATE else level


def evaluate(
    resources: Sequence[MockedResource],
    policies: Sequence[Policy],
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Violation]:
    """Every violation the policies report for ``resources``, in policy then resource order."""
    config = config or {}
    graph = stack_view(resources)
    # What each resource policy sees of a resource; read-only, so built once for all of them.
    analyzed = [
        (resource, engine_props(resource.inputs, resource.secret_inputs))
        for resource in resources
        if resource.custom and not resource.type.startswith("pulumi:providers:")
    ]
    violations: list[Violation] = []
    for policy in policies:
        level = enforcement_of(policy, config.get(policy.name))
        if level is EnforcementLevel.DISABLED:
            continue
        settings = policy_config(policy, config.get(policy.name))
        report = _Reporter(policy, level, violations)
        if isinstance(policy, ResourceValidationPolicy):
            for resource, props in analyzed:
                args = ResourceValidationArgs(
                    resource.type,
                    props,
                    resource.urn,
                    resource.name,
                    _options(resource),
                    _provider(resource, graph),
                    settings,
                )
                report.run(resource.urn, policy.validate, args, report.at(resource.urn))
        elif isinstance(policy, StackValidationPolicy):
            stack_args = StackValidationArgs(list(graph.values()), settings)
            report.run(None, policy.validate, stack_args, report.at(None))
    return violations


class _Reporter:
    """Collects one policy's violations, mapping engine-side failures to engine-side notes."""

    def __init__(self, policy: Policy, level: EnforcementLevel, sink: list[Violation]) -> None:
        self.policy = policy
        self.level = level
        self.sink = sink

    def at(self, default_urn: str | None) -> Any:
        def report_violation(message: str, urn: str | None = None) -> None:
            self.add(self.level, urn or default_urn, message)

        return report_violation

    def add(self, level: EnforcementLevel, urn: str | None, message: str) -> None:
        severity = self.policy.severity.value if self.policy.severity else "unspecified"
        self.sink.append(Violation(self.policy.name, level.value, severity, urn, message))

    def run(self, urn: str | None, validate: Callable[..., Any], *args: Any) -> None:
        try:
            validate(*args)
        except UnknownValueError as error:
            self.add(
                EnforcementLevel.ADVISORY,
                urn,
                f"can't run policy '{self.policy.name}' during preview: {error.message}",
            )
        except _NotApplicableError:
            pass


def _options(resource: MockedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent,
    )


def _provider(
    resource: MockedResource, graph: Mapping[str, PolicyResource]
) -> PolicyProviderResource | None:
    if resource.provider is None:
        return None
    provider = graph.get(resource.provider)
    type_ = resource.provider.split("::")[2].rsplit("$", 1)[-1]
    name = resource.provider.rsplit("::", 1)[-1]
    props = provider.props if provider is not None else engine_props({})
    return PolicyProviderResource(type_, props, resource.provider, name)


def stack_view(resources: Sequence[MockedResource]) -> dict[str, PolicyResource]:
    """What stack policies see, by URN: outputs (inputs included, as in a preview), linked."""
    graph: dict[str, PolicyResource] = {}
    for resource in resources:
        if resource.type == STACK_TYPE:
            continue
        props = engine_props({**resource.inputs, **resource.outputs}, resource.secret_inputs)
        graph[resource.urn] = PolicyResource(
            resource.type,
            props,
            resource.urn,
            resource.name,
            _options(resource),
            None,
            None,
            [],
            {},
        )
    for resource in resources:
        node = graph.get(resource.urn)
        if node is not None:
            node.parent = graph.get(resource.parent or "")
            node.provider = _provider(resource, graph)
    return graph
