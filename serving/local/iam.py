"""The public site's principals on moto's IAM, each holding the identity policy the stack renders.

moto's server starts enforcing IAM once it has served ``INITIAL_NO_AUTH_ACTION_COUNT``
requests. The local mode spends them (`BOOTSTRAP_ACTIONS`) on an admin, the stand-in for
whoever runs ``pulumi up``. The admin then creates the buckets and the other principals.

What moto 5.2.5 checks. This was read in ``moto/core/authorization.py``,
``moto/iam/access_control.py`` and ``moto/s3/responses.py``, then tried against the server.

Enforced:
- Every request must be SigV4-signed with the key of an IAM user (or of an assumed role), and
  the signature must match. An unknown key gets ``InvalidAccessKeyId``.
- The caller's identity policies: its inline and attached policies, and its groups' policies.
  ``Action``/``NotAction`` and ``Resource`` are matched, ``*`` wildcards included. An explicit
  Deny wins; otherwise an Allow is needed. S3 checks the bucket ARN for bucket requests and
  the object ARN for object requests.

Ignored, or not as AWS does it:
- ``Condition`` blocks in identity policies are not evaluated; they count as satisfied. So
  ``s3:prefix`` and ``kms:ViaService`` limit nothing here, and a conditional Deny refuses
  every request it names.
- HeadBucket is authorised as ``s3:HeadBucket``, an action AWS does not have. AWS checks
  ``s3:ListBucket`` with no ``s3:prefix``. `moto_aliases` restates the grants in moto's
  spelling. A bucket request with an unknown subresource (``?encryption``, ...) is authorised
  as ``s3:ListBucket``.
- Bucket policies apply to object requests only (GET, PUT, HEAD, POST, DELETE of a key). They
  never apply to HeadBucket or to listings. Their Allow grants nothing; only their Deny counts.
  Their ``Principal`` is not matched: a statement applies to everyone, except one whose
  Principal is a plain string other than ``*``, which is skipped. Their ``Condition`` counts
  as satisfied, so a conditional Deny refuses every object request it names.
- KMS. S3 never calls KMS for the caller, so ``kms:Decrypt`` and ``kms:GenerateDataKey`` are
  never checked for SSE-KMS objects. Direct KMS calls are authorised against resource ``*``
  only, so a grant scoped to a key never matches. Key policies are never evaluated.
- ``NotResource``, permission boundaries, SCPs, session policies and ACLs are not evaluated.
  Block Public Access is stored but not applied.

The project's policy evaluator checks what moto ignores, on the same documents.
"""

import fnmatch
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from hybrid.bucket_access import Document
from serving.errors import LocalStackError

REGION = "us-east-1"
ADMIN = "hybrid-local-admin"
BOOTSTRAP_ACTIONS = 3
"""CreateUser, PutUserPolicy and CreateAccessKey for the admin; every later request is checked."""
STACK_POLICY = "rendered-by-the-stack"
"""The inline policy that holds the stack's document, verbatim."""
MOTO_SPELLING = "moto-spelling"
"""The inline policy that grants the same rights under moto's own action names."""
HEAD_BUCKET = "s3:HeadBucket"

_ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "Deployer", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class Principal:
    """An IAM user on moto and its access key (moto's, so not a secret)."""

    arn: str
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        """What an AWS SDK reads from the environment (Triton's S3 filesystem does)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, endpoint: str, service: str = "s3") -> Any:
        return _client(endpoint, service, self.access_key_id, self.secret_access_key)

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, str]) -> "Principal":
        return cls(**raw)


def bootstrap_admin(endpoint: str) -> Principal:
    """Create the admin with moto's unauthenticated requests, then check that IAM is on."""
    # One attempt each: a retried request would use up one more of the free ones.
    anonymous = _client(endpoint, "iam", "bootstrap", "bootstrap", attempts=1)
    arn = anonymous.create_user(UserName=ADMIN)["User"]["Arn"]
    anonymous.put_user_policy(
        UserName=ADMIN, PolicyName=ADMIN, PolicyDocument=json.dumps(_ADMIN_POLICY)
    )
    key = anonymous.create_access_key(UserName=ADMIN)["AccessKey"]
    try:
        anonymous.get_user(UserName=ADMIN)
    except ClientError:
        return Principal(arn, key["AccessKeyId"], key["SecretAccessKey"])
    raise LocalStackError(
        f"moto at {endpoint} still took a request with an unknown key after its "
        f"{BOOTSTRAP_ACTIONS} free ones: its IAM enforcement (INITIAL_NO_AUTH_ACTION_COUNT) is "
        "off, so the stack's policies would not be checked"
    )


def create_principal(endpoint: str, admin: Principal, name: str, policy: Document) -> Principal:
    """An IAM user whose identity policy is `policy` verbatim, plus its moto spelling."""
    iam = admin.client(endpoint, "iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName=STACK_POLICY, PolicyDocument=json.dumps(policy))
    if (aliases := moto_aliases(policy)) is not None:
        iam.put_user_policy(
            UserName=name, PolicyName=MOTO_SPELLING, PolicyDocument=json.dumps(aliases)
        )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Principal(arn, key["AccessKeyId"], key["SecretAccessKey"])


def moto_aliases(policy: Document) -> Document | None:
    """The statements that would let HeadBucket through in AWS, restated as ``s3:HeadBucket``.

    AWS authorises HeadBucket as ``s3:ListBucket``, and the request has no ``s3:prefix``. So
    a statement covers it only if its condition holds without that key. A prefix condition
    written with plain ``StringLike`` does not hold, and there the local mode fails as AWS
    does.
    """
    statements = [
        {**statement, "Sid": f"{statement.get('Sid', '')}AsHeadBucket", "Action": [HEAD_BUCKET]}
        for statement in policy["Statement"]
        if _names("s3:ListBucket", statement) and not _names(HEAD_BUCKET, statement)
        if _holds_without("s3:prefix", statement.get("Condition", {}))
    ]
    return {"Version": "2012-10-17", "Statement": statements} if statements else None


@dataclass(frozen=True)
class Refusal:
    """A request moto answered 403, as AWS would authorise it."""

    action: str
    resource: str
    operation: str

    def __str__(self) -> str:
        return f"{self.action} on {self.resource} ({self.operation})"


# (method, names an object) -> (operation, the IAM action AWS checks for it)
_S3_REQUESTS = {
    ("HEAD", False): ("HeadBucket", "s3:ListBucket"),
    ("GET", False): ("ListObjects", "s3:ListBucket"),
    ("HEAD", True): ("HeadObject", "s3:GetObject"),
    ("GET", True): ("GetObject", "s3:GetObject"),
    ("PUT", True): ("PutObject", "s3:PutObject"),
    ("POST", True): ("multipart upload", "s3:PutObject"),
}
_REQUEST_LINE = re.compile(
    r'"(?P<method>[A-Z]+) /(?P<bucket>[^/?\s]+)(?P<key>/[^?\s]+)?(?:\?(?P<query>\S*))? '
    r'HTTP/[\d.]+" 403 '
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def refusals(moto_log: Path, since: int = 0) -> list[Refusal]:
    """The S3 requests that moto refused after byte `since` of its request log, each once.

    moto's own error names neither the principal nor the action, and Triton reports only
    "Unable to create S3 filesystem client". The request log still shows what was refused.
    """
    if not moto_log.is_file():
        return []
    with moto_log.open(errors="replace") as log:
        log.seek(since)
        text = _ANSI.sub("", log.read())
    found: dict[Refusal, None] = {}
    for match in _REQUEST_LINE.finditer(text):
        method, bucket, key = match["method"], match["bucket"], match["key"]
        if (method, key is not None) not in _S3_REQUESTS:
            continue
        operation, action = _S3_REQUESTS[method, key is not None]
        query = match["query"] or ""
        if "list-type=2" in query:
            operation += "V2"
        if prefix := re.search(r"(?:^|&)prefix=([^&]*)", query):
            operation += f" prefix={prefix[1]}"
        found[Refusal(action, f"arn:aws:s3:::{bucket}{key or ''}", operation)] = None
    return list(found)


def _client(endpoint: str, service: str, key_id: str, secret: str, attempts: int = 3) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}),
    )


def _names(action: str, statement: dict[str, Any]) -> bool:
    listed = statement.get("Action", [])
    patterns = [listed] if isinstance(listed, str) else listed
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)


def _holds_without(key: str, condition: dict[str, dict[str, Any]]) -> bool:
    """Whether `condition` holds for a request that lacks `key`, by AWS's rules.

    The ``...IfExists`` operators, the negated ones and ``ForAllValues`` hold; ``Null`` holds
    when it asks for ``true``; every other operator fails.
    """
    for operator, tests in condition.items():
        if key not in tests:
            continue
        if operator == "Null":
            holds = str(tests[key]).lower() == "true"
        else:
            holds = operator.endswith("IfExists") or "Not" in operator
            holds = holds or operator.startswith("ForAllValues:")
        if not holds:
            return False
    return True
