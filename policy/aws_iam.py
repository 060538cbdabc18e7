"""AWS's policy evaluation logic, exactly, for one request and the policies that apply to it.

The documented logic (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
an explicit Deny in any applicable policy wins; otherwise an Allow is needed. Within one
account the identity policies OR the resource policy may allow; across accounts both must.
A KMS key policy and a role trust policy are stricter: they must allow, either directly or
by naming the account (its root principal), which delegates to the account's identity
policies, which must then allow too. Services and web identities have no identity policies:
only the resource policy can let them in.

No maintained Python library evaluates IAM policies with their conditions (PyPI has linters
and summarisers - parliament, policyuniverse, iam-ape - and principalmapper's simulator, not
released since 2022), so this stays small and exact: what the stack's documents use, and
``UnsupportedPolicy`` for anything else (NotPrincipal, policy variables, numeric and date
operators, other principal types), never a guess.
"""

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from policy.decision import Decision, UnsupportedPolicy

ContextValue = str | bool | Sequence[str]
"""A condition key's value in the request; a sequence for a multivalued key."""
ResourceKind = Literal["bucket", "key", "trust"]
"""``bucket``: the resource policy may allow on its own within the account (S3 and most
services); ``key`` (KMS) and ``trust`` (a role's trust policy): the resource policy must allow."""

_ELEMENTS = frozenset(
    ("Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "NotResource", "Condition")
)
_ACCOUNT = re.compile(r"arn:[a-z-]+:iam::(\d{12}):root|(\d{12})")
"""An account principal: its root user's ARN or its bare ID."""


@functools.cache
def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` exactly one; everything else literal."""
    if "${" in pattern:
        raise UnsupportedPolicy(f"policy variables are not implemented: {pattern!r}")
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@dataclass(frozen=True)
class Principal:
    """Who sends the request."""

    type: Literal["AWS", "Service", "Federated"]
    id: str
    """An IAM role or user ARN (``AWS``), a service (``logging.s3.amazonaws.com``), or the
    ARN of an OIDC provider (``Federated``, a web identity before it assumes a role)."""

    @property
    def account(self) -> str | None:
        """The account of an IAM principal; services and web identities belong to none."""
        return self.id.split(":")[4] if self.type == "AWS" else None


@dataclass(frozen=True)
class Request:
    principal: Principal
    action: str
    resource: str
    """The ARN acted on (for a trust policy: the role's ARN)."""
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    """Condition keys (any case: IAM key names are case-insensitive) and their values."""


@dataclass(frozen=True)
class Policy:
    name: str
    """Where the document comes from, for the reasons: ``bucket policy public-models-policy``."""
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Target:
    """The resource's side of the evaluation: its owner and the policy attached to it."""

    account: str
    policy: Policy | None = None
    kind: ResourceKind = "bucket"


def evaluate(request: Request, identity_policies: Sequence[Policy], target: Target) -> Decision:
    """Allow or deny ``request`` as AWS would, naming the statement(s) that decided."""
    principal = request.principal
    if principal.account is None and identity_policies:
        raise UnsupportedPolicy(f"a {principal.type} principal has no identity policies")
    if target.policy is None and target.kind != "bucket":
        raise UnsupportedPolicy(f"a {target.kind} policy always exists; pass it")
    context = {key.lower(): value for key, value in request.context.items()}
    matched: list[tuple[str, str, str]] = []  # (statement, effect, how it applies)
    for policy in identity_policies:
        for label, statement in _statements(policy):
            if _applies(statement, request, context, None, target.kind):
                matched.append((label, statement["Effect"], "identity"))
    if target.policy is not None:
        for label, statement in _statements(target.policy):
            how = _applies(statement, request, context, principal, target.kind)
            if how:
                matched.append((label, statement["Effect"], how))
    for label, effect, _ in matched:
        if effect == "Deny":
            return Decision(False, f"explicit deny by {label}")

    def first(how: str) -> str | None:
        return next((label for label, _, h in matched if h == how), None)

    identity, direct, delegated = first("identity"), first("direct"), first("account")
    same_account = principal.account == target.account
    if principal.account is None:
        by = [direct]
    elif target.kind == "bucket" and same_account:
        by = [identity or direct]
    elif target.kind == "bucket":
        by = [identity, direct or delegated]
    elif direct and (same_account or identity):
        by = [direct] if same_account else [identity, direct]
    else:
        by = [identity, delegated]
    if all(by):
        return Decision(True, "allowed by " + " and ".join(str(label) for label in by))
    scope = "" if same_account else " (cross-account)"
    grant = direct or (f"{delegated}, delegating to the account" if delegated else None)
    return Decision(
        False,
        f"implicit deny of {request.action} on {request.resource}{scope}: "
        f"identity policies: {identity or 'no statement allows it'}; "
        f"{target.kind} policy: {grant or 'no statement allows it'}",
    )


# --- statements ---------------------------------------------------------------------


def _statements(policy: Policy) -> Iterator[tuple[str, Mapping[str, Any]]]:
    document = policy.document
    if set(document) - {"Version", "Id", "Statement"}:
        raise UnsupportedPolicy(f"{policy.name}: unknown policy elements {sorted(document)}")
    if document.get("Version", "2008-10-17") not in ("2012-10-17", "2008-10-17"):
        raise UnsupportedPolicy(f"{policy.name}: unknown Version {document['Version']!r}")
    statements = document["Statement"]
    for index, statement in enumerate(
        [statements] if isinstance(statements, Mapping) else statements
    ):
        label = f"{policy.name} statement {statement.get('Sid') or f'#{index}'}"
        if "NotPrincipal" in statement:
            raise UnsupportedPolicy(f"{label}: NotPrincipal is not implemented")
        if unknown := set(statement) - _ELEMENTS:
            raise UnsupportedPolicy(f"{label}: unknown elements {sorted(unknown)}")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"{label}: Effect must be Allow or Deny")
        yield label, statement


def _applies(
    statement: Mapping[str, Any],
    request: Request,
    context: Mapping[str, ContextValue],
    principal: Principal | None,
    kind: ResourceKind,
) -> str | None:
    """How ``statement`` applies: ``identity``/``direct``/``account`` (a resource policy naming
    the principal's account), or None. ``principal`` is None for an identity policy."""
    if principal is None:
        if "Principal" in statement:
            raise UnsupportedPolicy("an identity policy statement cannot name a Principal")
        how = "identity"
    else:
        if "Principal" not in statement:
            raise UnsupportedPolicy("a resource policy statement must name a Principal")
        how = _principal_match(statement["Principal"], principal) or ""
    if not how or not _action_matches(statement, request.action):
        return None
    if not _resource_matches(statement, request.resource, kind):
        return None
    return how if _conditions_hold(statement.get("Condition", {}), context) else None


def _principal_match(element: Any, principal: Principal) -> str | None:
    """``direct`` (named, or ``*``), ``account`` (the principal's account), or None."""
    if element == "*":
        return "direct"
    if not isinstance(element, Mapping):
        raise UnsupportedPolicy(f"Principal {element!r} is neither '*' nor a mapping")
    found: str | None = None
    for type_, values in element.items():
        if type_ not in ("AWS", "Service", "Federated"):
            raise UnsupportedPolicy(f"principal type {type_!r} is not implemented")
        for value in _strings(values):
            account = _ACCOUNT.fullmatch(value)
            if value != "*" and ("*" in value or "?" in value):
                raise UnsupportedPolicy(f"wildcards in principal {value!r}")
            if type_ != principal.type:
                continue
            if value == "*" or value == principal.id:
                return "direct"
            if type_ == "AWS" and account and principal.account in account.groups():
                found = "account"
    return found


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if ("Action" in statement) == ("NotAction" in statement):
        raise UnsupportedPolicy("a statement needs exactly one of Action and NotAction")
    patterns = _strings(statement.get("Action", statement.get("NotAction")))
    hit = any(_wildcard(p, ignore_case=True).fullmatch(action) for p in patterns)
    return hit == ("Action" in statement)


def _resource_matches(statement: Mapping[str, Any], resource: str, kind: ResourceKind) -> bool:
    if "Resource" in statement and "NotResource" in statement:
        raise UnsupportedPolicy("a statement has both Resource and NotResource")
    if "Resource" not in statement and "NotResource" not in statement:
        if kind != "trust":  # a trust policy's statements apply to its own role
            raise UnsupportedPolicy("a statement needs Resource or NotResource")
        return True
    patterns = _strings(statement.get("Resource", statement.get("NotResource")))
    hit = any(_wildcard(p, ignore_case=False).fullmatch(resource) for p in patterns)
    return hit == ("Resource" in statement)


# --- conditions ---------------------------------------------------------------------


def _conditions_hold(block: Mapping[str, Any], context: Mapping[str, ContextValue]) -> bool:
    """Every operator and every key must hold (AND); the values of one key are OR'd."""
    return all(
        _condition_holds(operator, key, values, context)
        for operator, keys in block.items()
        for key, values in keys.items()
    )


def _condition_holds(
    operator: str, key: str, policy_values: Any, context: Mapping[str, ContextValue]
) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedPolicy(f"condition operator {operator!r}: unknown set operator")
    values = _policy_values(policy_values)
    present = key.lower() in context and context[key.lower()] not in ([], ())
    if base == "Null":
        if qualifier or if_exists:
            raise UnsupportedPolicy(f"condition operator {operator!r} is not valid")
        if any(v not in ("true", "false") for v in values):
            raise UnsupportedPolicy(f"Null {key}: values must be 'true' or 'false'")
        return any((v == "true") != present for v in values)
    if base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator!r} is not implemented")
    match, negated = _OPERATORS[base]
    if not present:
        # IfExists: true without the key. Set operators: ForAllValues true, ForAnyValue false.
        # Otherwise a positive operator is false and a negated one true.
        return if_exists or qualifier == "ForAllValues" or (not qualifier and negated)
    raw = context[key.lower()]
    if not qualifier and not isinstance(raw, str | bool):
        raise UnsupportedPolicy(f"{operator} on the multivalued key {key} needs a set operator")
    requested = [raw] if isinstance(raw, str | bool) else list(raw)

    def holds(value: str | bool) -> bool:
        hit = any(match(_text(value), pattern) for pattern in values)
        return hit != negated

    if qualifier == "ForAllValues":
        return all(holds(v) for v in requested)
    return any(holds(v) for v in requested)


def _arn_like(value: str, pattern: str) -> bool:
    """Each of the six colon-separated parts is matched on its own, wildcards allowed."""
    parts, wanted = value.split(":", 5), pattern.split(":", 5)
    if len(wanted) != 6:
        raise UnsupportedPolicy(f"ARN pattern {pattern!r} does not have six parts")
    if len(parts) != 6:
        return False
    return all(
        _wildcard(w, ignore_case=False).fullmatch(p) for p, w in zip(parts, wanted, strict=True)
    )


_OPERATORS = {
    "StringEquals": (lambda v, p: v == p, False),
    "StringNotEquals": (lambda v, p: v == p, True),
    "StringEqualsIgnoreCase": (lambda v, p: v.lower() == p.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda v, p: v.lower() == p.lower(), True),
    "StringLike": (lambda v, p: bool(_wildcard(p, ignore_case=False).fullmatch(v)), False),
    "StringNotLike": (lambda v, p: bool(_wildcard(p, ignore_case=False).fullmatch(v)), True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda v, p: v.lower() == p.lower(), False),
}
"""Base operator -> (does one request value match one policy value, is it negated)."""


# --- values ---------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    listed = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in listed):
        raise UnsupportedPolicy(f"expected strings, got {value!r}")
    return listed


def _policy_values(value: Any) -> list[str]:
    listed = value if isinstance(value, list) else [value]
    texts = [_text(v) for v in listed]
    if any("${" in t for t in texts):
        raise UnsupportedPolicy(f"policy variables are not implemented: {value!r}")
    return texts


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    raise UnsupportedPolicy(f"condition value {value!r} is neither a string nor a boolean")
