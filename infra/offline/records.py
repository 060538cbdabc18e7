"""What one mocked run returns: every registered resource, as the engine saw it."""

from dataclasses import dataclass, field
from typing import Any

from hybrid.config import StackConfig


class _UnknownValue:
    """A value the engine does not know yet (preview before the resource exists)."""

    _instance: "_UnknownValue | None" = None

    def __new__(cls) -> "_UnknownValue":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _UnknownValue()


@dataclass(frozen=True)
class MockedResource:
    """One registered resource as the engine saw it."""

    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    """Inputs with camelCase keys; secrets unwrapped (see ``secret_inputs``), unknowns UNKNOWN."""
    outputs: dict[str, Any]
    """What the mocks returned: the inputs plus fabricated computed properties."""
    parent: str | None
    """URN of the parent (the stack for top-level resources)."""
    provider: str | None
    """URN of the explicit provider, or None where the engine would use a default provider."""
    custom: bool
    """False for component resources."""
    secret_inputs: frozenset[str] = frozenset()
    """Top-level input keys whose value is (or contains) a secret."""
    id: str = ""
    """The physical ID the mocks gave it ("" for components and in preview)."""
    dependencies: tuple[str, ...] = ()
    """URNs it depends on: explicit ``depends_on`` plus the resources its inputs came from."""
    timeouts: dict[str, str] = field(default_factory=dict)
    """Its ``custom_timeouts`` (``create``, ``update``, ``delete``), where set."""


@dataclass
class StackEvaluation:
    """Everything one mocked run of the program produced."""

    stack: str
    preview: bool
    config: StackConfig
    resources: list[MockedResource]
    """In the order the engine received them (RPCs complete concurrently, so this is close
    to, not exactly, the program's construction order)."""
    outputs: dict[str, Any]
    secret_outputs: set[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    """Warnings the program logged (deprecated inputs, for instance)."""

    def of_type(self, type_: str) -> list[MockedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> MockedResource:
        matches = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(matches) != 1:
            raise LookupError(f"expected one {type_} named {name!r}, found {len(matches)}")
        return matches[0]

    def by_urn(self, urn: str) -> MockedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise LookupError(f"no resource with URN {urn}")

    def children_of(self, parent: MockedResource) -> list[MockedResource]:
        return [r for r in self.resources if r.parent == parent.urn]

    def counts_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return dict(sorted(counts.items()))
