"""The mocks harness: the stack program, or one component, run under Pulumi mocks.

``api`` evaluates; ``records`` is what an evaluation returns; ``engine`` is the runtime
plumbing; ``registry`` holds the fabricators that ``aws``, ``gcp`` and ``providers``
register, one per resource type; ``invokes`` answers the data sources.
"""

from infra.offline import aws, gcp, invokes, providers  # noqa: F401  (they register)
from infra.offline.api import evaluate_component, evaluate_stack
from infra.offline.records import UNKNOWN, MockedResource, StackEvaluation
from infra.offline.registry import fabricated_types

__all__ = [
    "UNKNOWN",
    "MockedResource",
    "StackEvaluation",
    "evaluate_component",
    "evaluate_stack",
    "fabricated_types",
]
