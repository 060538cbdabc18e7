"""The AWS evaluator on AWS's own documented examples, before it judges the project.

Each row cites the page whose example or rule it encodes; the expected decisions are AWS's.
"""

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from policy.aws_iam import Policy, Principal, Request, Target, evaluate
from policy.decision import UnsupportedPolicy

IAM = "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
EVALUATION = IAM + "reference_policies_evaluation-logic.html"
SINGLE_ACCOUNT = IAM + "reference_policies_evaluation-logic_policy-eval-basics.html"
CROSS_ACCOUNT = IAM + "reference_policies_evaluation-logic-cross-account.html"
OPERATORS = IAM + "reference_policies_elements_condition_operators.html"
MULTIVALUED = IAM + "reference_policies_condition-single-vs-multi-valued-context-keys.html"
CONDITION_LOGIC = IAM + "reference_policies_condition-logic-multiple-context-keys-or-values.html"
NOT_ACTION = IAM + "reference_policies_elements_notaction.html"
ACTION = IAM + "reference_policies_elements_action.html"
PRINCIPAL = IAM + "reference_policies_elements_principal.html"
KMS_DEFAULT_POLICY = "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html"
IRSA = "https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html"

ACCOUNT, OTHER = "111122223333", "444455556666"
ROLE = Principal("AWS", f"arn:aws:iam::{ACCOUNT}:role/reader")
OUTSIDER = Principal("AWS", f"arn:aws:iam::{OTHER}:role/reader")
BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"
OBJECT = f"{BUCKET}/home/carlos/report.txt"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
PROVIDER = Principal("Federated", f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}")
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/my-role"


def statement(effect: str, action: Any, resource: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Effect": effect, "Action": action, **extra}
    if resource is not None:
        body["Resource"] = resource
    return body


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def identity(*statements: dict[str, Any]) -> list[Policy]:
    return [Policy("identity policy", document(*statements))]


def on(*statements: dict[str, Any], kind: Any = "bucket") -> Target:
    return Target(ACCOUNT, Policy(f"{kind} policy", document(*statements)), kind)


def get(principal: Principal = ROLE, **context: Any) -> Request:
    return Request(principal, "s3:GetObject", OBJECT, context)


READ = statement("Allow", "s3:GetObject", f"{BUCKET}/*")
EVERYONE_READS = statement("Allow", "s3:GetObject", f"{BUCKET}/*", Principal="*")
NO_POLICY = Target(ACCOUNT)


@dataclass(frozen=True)
class Row:
    doc: str
    request: Request
    allowed: bool
    because: str
    """A part of the reason the evaluator must give (the deciding statement)."""
    identity: list[Policy] = field(default_factory=list)
    target: Target = NO_POLICY


ROWS: dict[str, Row] = {
    # Explicit deny in any policy beats every allow.
    "explicit deny in the bucket policy beats the identity allow": Row(
        SINGLE_ACCOUNT,
        get(),
        False,
        "explicit deny by bucket policy statement #0",
        identity(READ),
        on(statement("Deny", "s3:*", f"{BUCKET}/*", Principal="*")),
    ),
    "explicit deny in the identity policy beats the bucket allow": Row(
        EVALUATION,
        get(),
        False,
        "explicit deny by identity policy statement #1",
        identity(READ, statement("Deny", "s3:GetObject", "*")),
        on(EVERYONE_READS),
    ),
    "nothing allows: implicit deny": Row(
        EVALUATION, get(), False, "implicit deny", identity(statement("Allow", "s3:Put*", "*"))
    ),
    # Same account: identity OR resource policy.
    "same account, identity policy alone allows": Row(
        SINGLE_ACCOUNT, get(), True, "allowed by identity policy statement #0", identity(READ)
    ),
    "same account, bucket policy alone allows (names the role)": Row(
        SINGLE_ACCOUNT,
        get(),
        True,
        "allowed by bucket policy statement #0",
        target=on(statement("Allow", "s3:GetObject", OBJECT, Principal={"AWS": ROLE.id})),
    ),
    "same account, a bucket policy naming the account delegates to IAM": Row(
        PRINCIPAL,
        get(),
        False,
        "delegating to the account",
        target=on(statement("Allow", "s3:GetObject", OBJECT, Principal={"AWS": ACCOUNT})),
    ),
    # Cross-account: both.
    "cross-account, bucket policy alone is not enough": Row(
        CROSS_ACCOUNT, get(OUTSIDER), False, "(cross-account)", target=on(EVERYONE_READS)
    ),
    "cross-account, identity policy alone is not enough": Row(
        CROSS_ACCOUNT,
        get(OUTSIDER),
        False,
        "bucket policy: no statement allows it",
        identity(statement("Allow", "s3:*", "*")),
    ),
    "cross-account, both allow": Row(
        CROSS_ACCOUNT,
        get(OUTSIDER),
        True,
        "allowed by identity policy statement #0 and bucket policy statement #0",
        identity(READ),
        on(statement("Allow", "s3:GetObject", f"{BUCKET}/*", Principal={"AWS": OTHER})),
    ),
    # KMS: the key policy must allow, directly or by delegating to the account.
    "key policy delegating to the account, identity allows": Row(
        KMS_DEFAULT_POLICY,
        Request(ROLE, "kms:Decrypt", KEY),
        True,
        "identity policy statement #0 and key policy statement Root",
        identity(statement("Allow", "kms:Decrypt", KEY)),
        on(
            statement(
                "Allow", "kms:*", "*", Sid="Root", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
            ),
            kind="key",
        ),
    ),
    "key policy delegating to the account, identity silent": Row(
        KMS_DEFAULT_POLICY,
        Request(ROLE, "kms:Decrypt", KEY),
        False,
        "key policy: key policy statement Root, delegating to the account",
        target=on(
            statement(
                "Allow", "kms:*", "*", Sid="Root", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
            ),
            kind="key",
        ),
    ),
    "key policy naming the role allows on its own": Row(
        KMS_DEFAULT_POLICY,
        Request(ROLE, "kms:Decrypt", KEY),
        True,
        "allowed by key policy statement #0",
        target=on(statement("Allow", "kms:Decrypt", "*", Principal={"AWS": ROLE.id}), kind="key"),
    ),
    "identity policy alone cannot use a key": Row(
        KMS_DEFAULT_POLICY,
        Request(ROLE, "kms:Decrypt", KEY),
        False,
        "key policy: no statement allows it",
        identity(statement("Allow", "kms:*", "*")),
        on(statement("Allow", "kms:*", "*", Principal={"AWS": OTHER}), kind="key"),
    ),
    # A role trust policy for a web identity (IRSA).
    "trust policy admits the named service account": Row(
        IRSA,
        Request(
            PROVIDER,
            "sts:AssumeRoleWithWebIdentity",
            ROLE_ARN,
            {
                f"{ISSUER}:sub": "system:serviceaccount:default:my-sa",
                f"{ISSUER}:aud": "sts.amazonaws.com",
            },
        ),
        True,
        "allowed by trust policy statement #0",
        target=on(
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER.id},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{ISSUER}:sub": "system:serviceaccount:default:my-sa",
                        f"{ISSUER}:aud": "sts.amazonaws.com",
                    }
                },
            },
            kind="trust",
        ),
    ),
    # Services have no identity policies: only the resource policy can allow them.
    "a service principal needs the resource policy": Row(
        PRINCIPAL,
        get(Principal("Service", "logging.s3.amazonaws.com")),
        False,
        "bucket policy: no statement allows it",
        target=on(
            statement("Allow", "s3:GetObject", "*", Principal={"Service": "other.amazonaws.com"})
        ),
    ),
    # Actions: case-insensitive, wildcards; NotAction.
    "action names are case-insensitive": Row(
        ACTION,
        get(),
        True,
        "identity policy",
        identity(statement("Allow", "S3:getobj*", f"{BUCKET}/*")),
    ),
    "NotAction allows everything else": Row(
        NOT_ACTION,
        get(),
        True,
        "identity policy",
        identity({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    ),
    "NotAction does not allow what it names": Row(
        NOT_ACTION,
        Request(ROLE, "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x"),
        False,
        "implicit deny",
        identity({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    ),
    "NotResource does not allow what it names": Row(
        IAM + "reference_policies_elements_notresource.html",
        get(),
        False,
        "implicit deny",
        identity({"Effect": "Allow", "Action": "s3:*", "NotResource": f"{BUCKET}/home/*"}),
    ),
    "several keys are AND'd": Row(
        CONDITION_LOGIC,
        get(Principal("Service", "logging.s3.amazonaws.com"), **{"aws:SourceAccount": ACCOUNT}),
        False,
        "implicit deny",
        target=on(
            statement(
                "Allow",
                "s3:GetObject",
                f"{BUCKET}/*",
                Principal="*",
                Condition={
                    "StringEquals": {"aws:SourceAccount": ACCOUNT},
                    "ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"},
                },
            )
        ),
    ),
}


class Case(NamedTuple):
    """A condition ``{operator: {key: value}}`` and whether it holds for ``context``."""

    operator: str
    key: str
    value: Any
    context: dict[str, Any]
    holds: bool


TOKEN_TIME = {"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}
SSE = "s3:x-amz-server-side-encryption"
SNS_TOPIC = "arn:aws:sns:us-east-1:111122223333:topic"
TAGS = ["environment", "cost-center"]

CONDITIONS: dict[str, Case] = {
    "IfExists holds when the key is absent": Case(
        "StringLikeIfExists", "ec2:InstanceType", "t1.*", {}, True
    ),
    "IfExists tests the value when the key is present": Case(
        "StringLikeIfExists", "ec2:InstanceType", "t1.*", {"ec2:InstanceType": "m5.large"}, False
    ),
    "a positive operator fails when the key is absent": Case(
        "StringEquals", "aws:SourceAccount", ACCOUNT, {}, False
    ),
    "a negated operator holds when the key is absent": Case(
        "StringNotEquals", SSE, "aws:kms", {}, True
    ),
    "Null true holds when the key is absent": Case("Null", "aws:TokenIssueTime", "true", {}, True),
    "Null true fails when the key is present": Case(
        "Null", "aws:TokenIssueTime", "true", TOKEN_TIME, False
    ),
    "Null false holds when the key is present": Case(
        "Null", "aws:TokenIssueTime", "false", TOKEN_TIME, True
    ),
    "Null false fails when the key is absent": Case(
        "Null", "aws:TokenIssueTime", "false", {}, False
    ),
    "StringLike: * matches any run": Case(
        "StringLike", "s3:prefix", "home/*", {"s3:prefix": "home/c/"}, True
    ),
    "StringLike: ? matches exactly one character": Case(
        "StringLike", "s3:prefix", "home/?/", {"s3:prefix": "home/ab/"}, False
    ),
    "StringLike is case-sensitive": Case(
        "StringLike", "s3:prefix", "home/*", {"s3:prefix": "Home/x"}, False
    ),
    "StringEquals takes * literally": Case(
        "StringEquals", "s3:prefix", "home/*", {"s3:prefix": "home/c"}, False
    ),
    "StringEqualsIgnoreCase ignores case": Case(
        "StringEqualsIgnoreCase", "aws:username", "Carlos", {"aws:username": "carlos"}, True
    ),
    "condition key names are case-insensitive": Case(
        "StringEquals", "AWS:SourceAccount", ACCOUNT, {"aws:sourceaccount": ACCOUNT}, True
    ),
    "several values of one key are OR'd": Case(
        "StringEquals", "aws:SourceAccount", [OTHER, ACCOUNT], {"aws:SourceAccount": ACCOUNT}, True
    ),
    "a negated operator with several values holds only if none matches": Case(
        "StringNotEquals",
        "aws:SourceAccount",
        [OTHER, ACCOUNT],
        {"aws:SourceAccount": ACCOUNT},
        False,
    ),
    "Bool compares true/false": Case(
        "Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": False}, True
    ),
    "ArnEquals matches the exact ARN": Case(
        "ArnEquals", "aws:SourceArn", SNS_TOPIC, {"aws:SourceArn": SNS_TOPIC}, True
    ),
    "ArnLike wildcards within a part": Case(
        "ArnLike", "aws:SourceArn", "arn:aws:s3:::amzn-*", {"aws:SourceArn": BUCKET}, True
    ),
    "ArnLike compares part by part: a wildcard stays in its part": Case(
        "ArnLike",
        "aws:SourceArn",
        "arn:aws:sns:*:*:topic",
        {"aws:SourceArn": SNS_TOPIC + "x:topic"},
        False,
    ),
    "ArnNotEquals holds for another ARN": Case(
        "ArnNotEquals", "aws:SourceArn", "arn:aws:s3:::a", {"aws:SourceArn": "arn:aws:s3:::b"}, True
    ),
    "ForAllValues: every requested value must be allowed": Case(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        TAGS,
        {"aws:TagKeys": ["environment", "owner"]},
        False,
    ),
    "ForAllValues: a subset is allowed": Case(
        "ForAllValues:StringEquals", "aws:TagKeys", TAGS, {"aws:TagKeys": ["environment"]}, True
    ),
    "ForAllValues holds when the key is absent": Case(
        "ForAllValues:StringEquals", "aws:TagKeys", TAGS, {}, True
    ),
    "ForAnyValue: one match is enough": Case(
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        TAGS,
        {"aws:TagKeys": ["owner", "environment"]},
        True,
    ),
    "ForAnyValue fails when the key is absent": Case(
        "ForAnyValue:StringEquals", "aws:TagKeys", TAGS, {}, False
    ),
    "ForAnyValue with a negated operator: one value outside is enough": Case(
        "ForAnyValue:StringNotEquals",
        "aws:TagKeys",
        TAGS,
        {"aws:TagKeys": ["environment", "owner"]},
        True,
    ),
}
"""From the condition operator page, and the multivalued-keys page for the set operators."""


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_documented_condition(name: str) -> None:
    """A bucket policy lets a service read when the condition holds; nothing else allows."""
    case = CONDITIONS[name]
    doc = MULTIVALUED if case.operator.startswith("For") else OPERATORS
    condition = {case.operator: {case.key: case.value}}
    allows = statement("Allow", "s3:GetObject", f"{BUCKET}/*", Principal="*", Condition=condition)
    request = get(Principal("Service", "logging.s3.amazonaws.com"), **case.context)
    decision = evaluate(request, [], on(allows))
    assert decision.allowed == case.holds, f"{name} ({doc}): got {decision}"


@pytest.mark.parametrize("name", list(ROWS))
def test_documented_decision(name: str) -> None:
    row = ROWS[name]
    decision = evaluate(row.request, row.identity, row.target)
    assert decision.allowed == row.allowed, f"{name} ({row.doc}): got {decision}"
    assert row.because in decision.reason, f"{name} ({row.doc}): got {decision}"


def refuses(fragment: dict[str, Any]) -> Target:
    return on(statement("Allow", "s3:GetObject", "*", Principal="*", **fragment))


UNSUPPORTED = {
    "an operator not implemented": refuses(
        {"Condition": {"NumericLessThan": {"s3:max-keys": "10"}}}
    ),
    "an unknown operator": refuses({"Condition": {"StringAlmostEquals": {"aws:username": "x"}}}),
    "an unknown set operator": refuses(
        {"Condition": {"ForSomeValues:StringEquals": {"aws:TagKeys": "x"}}}
    ),
    "Null with IfExists": refuses({"Condition": {"NullIfExists": {"aws:username": "true"}}}),
    "a policy variable": refuses(
        {"Condition": {"StringEquals": {"aws:username": "${aws:userid}"}}}
    ),
    "an unknown principal type": on(
        statement("Allow", "s3:*", "*", Principal={"CanonicalUser": "abc"})
    ),
    "a wildcard inside a principal ARN": on(
        statement("Allow", "s3:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"})
    ),
    "NotPrincipal": on(
        {"Effect": "Deny", "NotPrincipal": {"AWS": ROLE.id}, "Action": "s3:*", "Resource": "*"}
    ),
    "an unknown statement element": on(
        statement("Allow", "s3:*", "*", Principal="*", Conditions={})
    ),
    "a statement without Resource": on(statement("Allow", "s3:*", Principal="*")),
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_what_is_not_implemented_raises(name: str) -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate(get(), [], UNSUPPORTED[name])


def test_a_multivalued_key_without_a_set_operator_raises() -> None:
    target = refuses({"Condition": {"StringEquals": {"aws:TagKeys": "environment"}}})
    with pytest.raises(UnsupportedPolicy, match="needs a set operator"):
        evaluate(get(**{"aws:TagKeys": ["environment"]}), [], target)


def test_an_identity_policy_naming_a_principal_raises() -> None:
    with pytest.raises(UnsupportedPolicy, match="cannot name a Principal"):
        evaluate(get(), identity(EVERYONE_READS), NO_POLICY)
