"""Policies built from small rules, each tied to one cloud.

A CrossGuard policy reports violations; a rule is one check inside it. Keeping the rules
as data lets the pack say how many checks it runs per cloud and lets the docs list them,
while each policy stays a plain ``pulumi_policy`` object the engine understands.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

CLOUDS = ("aws", "gcp", "kubernetes", "cross-cloud")

ResourceCheck = Callable[[Mapping[str, Any], str], Iterable[str]]
"""(props, resource name) -> one message per problem."""

StackCheck = Callable[
    [Sequence[PolicyResource], Mapping[str, Any]], Iterable[tuple[str, str | None]]
]
"""(every resource, policy config) -> (message, urn at fault, None for the whole stack)."""


@dataclass(frozen=True)
class ResourceRule:
    cloud: str
    summary: str
    checks: Mapping[str, ResourceCheck]
    """Resource type token -> the check for that shape of the same rule."""


@dataclass(frozen=True)
class StackRule:
    cloud: str
    summary: str
    check: StackCheck


class ResourcePolicy(ResourceValidationPolicy):
    """A resource policy that runs each rule on the resource types it names."""

    def __init__(
        self,
        name: str,
        description: str,
        severity: Severity,
        rules: Sequence[ResourceRule],
        enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    ) -> None:
        super().__init__(name, description, enforcement_level=enforcement_level, severity=severity)
        self.rules = tuple(rules)

    def validate(self, args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for rule in self.rules:
            check = rule.checks.get(args.resource_type)
            if check is not None:
                for message in check(args.props, args.name):
                    report_violation(message, None)


class StackPolicy(StackValidationPolicy):
    """A stack policy: for rules that need several resources, or the stack's own settings."""

    def __init__(
        self,
        name: str,
        description: str,
        severity: Severity,
        rules: Sequence[StackRule],
        enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
        config_schema: PolicyConfigSchema | None = None,
    ) -> None:
        super().__init__(
            name,
            description,
            enforcement_level=enforcement_level,
            severity=severity,
            config_schema=config_schema,
        )
        self.rules = tuple(rules)

    def validate(self, args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config()
        for rule in self.rules:
            for message, urn in rule.check(args.resources, config):
                report_violation(message, urn)


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]
