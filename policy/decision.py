"""What an access evaluator decided about one request, and which statement or binding decided it.

Both evaluators (``policy.aws_iam``, ``policy.gcp_iam``) answer with a ``Decision`` so that
a failure names the deciding rule, not just "denied".
"""

from dataclasses import dataclass


class UnsupportedPolicy(ValueError):
    """A policy uses an element, operator, principal or role the evaluators do not implement,
    or a client command sends something the catalog does not model.

    Raised instead of guessing: a silent allow or deny would make the check worthless.
    """


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """The deciding statement or binding (or why nothing allowed)."""

    def __str__(self) -> str:
        return f"{'ALLOW' if self.allowed else 'DENY'} ({self.reason})"
