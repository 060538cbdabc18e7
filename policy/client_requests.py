"""The requests the stack's real clients send to its model buckets, judged on what it renders.

Shape checks ("no ``*``", "scoped to ``repo/*``") cannot tell whether Triton can read its
repository. This reads one mocked evaluation of the stack - principals, identity policies,
bucket, key and trust policies, IAM bindings, exactly as rendered - and sends each site the
requests its clients really make, each with the decision it must get:

- Triton's S3 and GCS filesystems (triton-inference-server/core,
  ``src/filesystem/implementations/s3.h`` and ``gcs.h``) on the prefix its Deployment loads;
- the TensorRT plan Jobs' ``aws s3 cp`` / ``gcloud storage cp``, read from the Jobs' own
  commands, so the headers are exactly the ones the command sends;
- the stack's own uploads (the ``BucketObjectv2`` inputs) and S3 server access-log delivery;
- requests from outside (another account, another Kubernetes service account), which fail.

``access_violations`` lists every request that gets the other decision.
"""

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hybrid.triton import NAMESPACE, SERVICE_ACCOUNT
from infra.offline import MockedResource, StackEvaluation
from policy import aws_iam, gcp_iam
from policy.decision import Decision, UnsupportedPolicy

FILESYSTEMS = "triton-inference-server/core src/filesystem/implementations"
S3_FS = f"{FILESYSTEMS}/s3.h S3FileSystem"
GCS_FS = f"{FILESYSTEMS}/gcs.h GCSFileSystem"
PLAN_JOB = "modelkit/tensorrt_job.py"
UPLOADS = "components/model_repository_upload.py aws.s3.BucketObjectv2"
IRSA = "EKS pod identity webhook: sts:AssumeRoleWithWebIdentity"
WORKLOAD_IDENTITY = "GKE metadata server: generateAccessToken (Workload Identity)"
AWS_CP = ["aws", "s3", "cp"]
GCLOUD_CP = ["gcloud", "storage", "cp"]
SSE = "s3:x-amz-server-side-encryption"
SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"
STORAGE_AGENTS = "gs-project-accounts.iam.gserviceaccount.com"
"""Where each project's Cloud Storage service agent lives: ``service-<number>@...``."""
OUTSIDER_ACCOUNT = "999999999999"
ANOTHER_VERSION = "repo/0000000000000000/"
STRANGER = ("default", "x")
"""A Kubernetes service account that must get nothing: ``default/x``."""
ADMIN = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
"""AdministratorAccess: the deploying principal's, and an intruder's in its own account."""

Decide = Callable[[], Decision]


@dataclass(frozen=True)
class ClientRequest:
    site: str
    name: str
    client: str
    """The code path that sends it: a file and function, a CLI command, a resource."""
    allowed: bool
    """The decision it must get."""
    decide: Decide

    def violation(self, stack: str) -> str | None:
        """A message naming the stack, the request, its client and the deciding rule, or None."""
        decision = self.decide()
        if decision.allowed == self.allowed:
            return None
        must = "ALLOWED" if self.allowed else "DENIED"
        where = f"stack {stack}, {self.site}: {self.name} [{self.client}]"
        return f"{where} must be {must}, got {decision}"


def client_requests(evaluation: StackEvaluation) -> list[ClientRequest]:
    """The catalog for both sites of ``evaluation`` (a full one: a preview knows no ARNs)."""
    if evaluation.preview:
        raise ValueError(f"stack {evaluation.stack}: a preview's IAM documents are unknown")
    return [*_AwsSite.read(evaluation).requests(), *_GcpSite.read(evaluation).requests()]


def access_violations(evaluation: StackEvaluation) -> list[str]:
    """One message per request that gets the wrong decision (or why none could be judged)."""
    try:
        requests = client_requests(evaluation)
    except LookupError as missing:
        return [f"stack {evaluation.stack}: {missing}"]
    return [v for request in requests if (v := request.violation(evaluation.stack))]


# --- AWS: the public site ------------------------------------------------------------------


@dataclass(frozen=True)
class _Identity:
    """An IRSA role as a Kubernetes service account uses it."""

    subject: str
    principal: aws_iam.Principal
    policies: list[aws_iam.Policy]
    trust: aws_iam.Policy


@dataclass(frozen=True)
class _AwsSite:
    evaluation: StackEvaluation
    account: str
    region: str
    bucket: str
    bucket_arn: str
    prefix: str
    """What Triton loads: ``repo/<hash>/``."""
    key_arn: str
    key_policy: aws_iam.Policy
    issuer: str
    """The EKS cluster's OIDC issuer without ``https://``, as IAM condition keys spell it."""
    provider_arn: str

    @classmethod
    def read(cls, evaluation: StackEvaluation) -> "_AwsSite":
        bucket, prefix = _model_repository(evaluation, "s3")
        arn = _one(_where(evaluation, "aws:s3/bucket:Bucket", bucket=bucket)).outputs["arn"]
        encryption = _one(
            _bucket_settings(evaluation, "bucketServerSideEncryptionConfiguration", bucket)
        )
        key_arn = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"][
            "kmsMasterKeyId"
        ]
        key = _one(_where(evaluation, "aws:kms/key:Key", arn=key_arn))
        cluster = _one(evaluation.of_type("aws:eks/cluster:Cluster"))
        issuer = cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
        provider = _one(
            [
                p
                for p in evaluation.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
                if p.inputs["url"] == issuer
            ],
            f"IAM OIDC provider for {issuer}",
        )
        _, _, _, region, account, _ = key_arn.split(":", 5)
        return cls(
            evaluation,
            account,
            region,
            bucket,
            arn,
            prefix,
            key_arn,
            aws_iam.Policy(f"key policy {key.name}", json.loads(key.inputs["policy"])),
            issuer.removeprefix("https://"),
            provider.outputs["arn"],
        )

    @property
    def site(self) -> str:
        return f"public site, s3://{self.bucket}"

    def identity(self, service_account: str) -> _Identity:
        """The IRSA role whose trust policy names ``system:serviceaccount:<ns>:<sa>``."""
        subject = f"system:serviceaccount:{NAMESPACE}:{service_account}"
        for role in self.evaluation.of_type("aws:iam/role:Role"):
            trust = json.loads(role.inputs["assumeRolePolicy"])
            named = {
                value
                for statement in trust["Statement"]
                for value in statement.get("Condition", {}).get("StringEquals", {}).values()
            }
            if subject in named:
                return _Identity(
                    subject,
                    aws_iam.Principal("AWS", role.outputs["arn"]),
                    _role_policies(self.evaluation, role),
                    aws_iam.Policy(f"trust policy of role {role.name}", trust),
                )
        raise LookupError(f"the stack has no IRSA role for {NAMESPACE}/{service_account}")

    # -- requests --

    def s3(
        self,
        principal: aws_iam.Principal,
        policies: list[aws_iam.Policy],
        action: str,
        resource: str,
        **context: Any,
    ) -> Decide:
        """An S3 request, judged on the bucket policy of the bucket it names."""
        if principal.account is not None:  # from a pod or a deployer: over TLS, as SDKs do
            context = {"aws:SecureTransport": True, "aws:PrincipalArn": principal.id, **context}
        request = aws_iam.Request(principal, action, resource, context)
        bucket = resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        target = aws_iam.Target(self.account, _bucket_policy(self.evaluation, bucket))
        return lambda: aws_iam.evaluate(request, policies, target)

    def kms(
        self,
        principal: aws_iam.Principal,
        policies: list[aws_iam.Policy],
        action: str,
        *,
        via_s3: bool = True,
    ) -> Decide:
        """``action`` on the bucket's key, as SSE-KMS calls it for the requester (the
        encryption context of an S3 Bucket Key is the bucket's ARN), or called directly."""
        context: dict[str, Any] = {"kms:CallerAccount": principal.account}
        if via_s3:
            context |= {
                "kms:ViaService": f"s3.{self.region}.amazonaws.com",
                "kms:EncryptionContext:aws:s3:arn": self.bucket_arn,
                "kms:EncryptionContextKeys": ["aws:s3:arn"],
            }
        request = aws_iam.Request(principal, action, self.key_arn, context)
        target = aws_iam.Target(self.account, self.key_policy, "key")
        return lambda: aws_iam.evaluate(request, policies, target)

    def assume(self, identity: _Identity, subject: str) -> Decide:
        """AssumeRoleWithWebIdentity with a token this cluster's issuer signed for ``subject``."""
        request = aws_iam.Request(
            aws_iam.Principal("Federated", self.provider_arn),
            "sts:AssumeRoleWithWebIdentity",
            identity.principal.id,
            {f"{self.issuer}:sub": subject, f"{self.issuer}:aud": "sts.amazonaws.com"},
        )
        target = aws_iam.Target(self.account, identity.trust, "trust")
        return lambda: aws_iam.evaluate(request, [], target)

    def object(self, key: str) -> str:
        return f"{self.bucket_arn}/{key}"

    def uploaded(self) -> list[MockedResource]:
        return _where(self.evaluation, "aws:s3/bucketObjectv2:BucketObjectv2", bucket=self.bucket)

    # -- the catalog --

    def requests(self) -> Iterator[ClientRequest]:
        yield from self.triton()
        yield from self.plan_jobs()
        yield from self.uploads()
        yield from self.log_delivery()

    def triton(self) -> Iterator[ClientRequest]:
        triton = self.identity(SERVICE_ACCOUNT)
        me, mine = triton.principal, triton.policies
        config, weights = _repository_files(
            [o.inputs["key"] for o in self.uploaded()], self.prefix, f"s3://{self.bucket}"
        )
        model = config.removesuffix("config.pbtxt")

        def case(name: str, function: str, allowed: bool, decide: Decide) -> ClientRequest:
            return ClientRequest(
                self.site, f"Triton {name}", f"{S3_FS}::{function}", allowed, decide
            )

        bucket, list_ = self.bucket_arn, "s3:ListBucket"
        yield case("HeadBucket", "CheckClient, IsDirectory", True, self.s3(me, mine, list_, bucket))
        for prefix, function in ((self.prefix, "IsDirectory"), (model, "GetDirectoryContents")):
            listing = self.s3(me, mine, list_, bucket, **{"s3:prefix": prefix})
            yield case(f"ListObjectsV2 prefix={prefix}", function, True, listing)
        yield case(
            f"HeadObject {config}",
            "FileExists",
            True,
            self.s3(me, mine, "s3:GetObject", self.object(config)),
        )
        yield case(
            f"GetObject {weights}",
            "LocalizePath",
            True,
            self.s3(me, mine, "s3:GetObject", self.object(weights)),
        )
        yield case(
            "kms:Decrypt via S3 (SSE-KMS GetObject)",
            "LocalizePath",
            True,
            self.kms(me, mine, "kms:Decrypt"),
        )
        # What Triton must not get.
        elsewhere = self.s3(me, mine, list_, bucket, **{"s3:prefix": "logs/"})
        yield case("ListObjectsV2 prefix=logs/", "GetDirectoryContents", False, elsewhere)
        yield case(
            "GetObject secrets/token",
            "LocalizePath",
            False,
            self.s3(me, mine, "s3:GetObject", self.object("secrets/token")),
        )
        yield case(
            f"PutObject {config}",
            "WriteTextFile",
            False,
            self.s3(me, mine, "s3:PutObject", self.object(config)),
        )
        for name, function, action, resource, context in (
            ("HeadBucket", "CheckClient", list_, bucket, {}),
            ("ListObjectsV2", "IsDirectory", list_, bucket, {"s3:prefix": self.prefix}),
            (f"GetObject {weights}", "LocalizePath", "s3:GetObject", self.object(weights), {}),
        ):
            plain = self.s3(me, mine, action, resource, **context, **{"aws:SecureTransport": False})
            yield case(f"{name} over plain HTTP", function, False, plain)
        yield case(
            "kms:Decrypt called directly, not via S3",
            "-",
            False,
            self.kms(me, mine, "kms:Decrypt", via_s3=False),
        )
        yield from self.assumptions(triton, "the Triton role")
        outsider = aws_iam.Principal("AWS", f"arn:aws:iam::{OUTSIDER_ACCOUNT}:role/intruder")
        theirs = [aws_iam.Policy("the other account's AdministratorAccess", ADMIN)]
        read = self.s3(outsider, theirs, "s3:GetObject", self.object(weights))
        yield ClientRequest(
            self.site, "another account's admin reads the repository", "outside", False, read
        )
        decrypt = self.kms(outsider, theirs, "kms:Decrypt")
        yield ClientRequest(
            self.site, "another account's admin decrypts with the key", "outside", False, decrypt
        )

    def assumptions(self, identity: _Identity, role: str) -> Iterator[ClientRequest]:
        stranger = "system:serviceaccount:{}:{}".format(*STRANGER)
        for subject, allowed in ((identity.subject, True), (stranger, False)):
            yield ClientRequest(
                self.site,
                f"{subject} assumes {role}",
                IRSA,
                allowed,
                self.assume(identity, subject),
            )

    def plan_jobs(self) -> Iterator[ClientRequest]:
        for job, container, service_account, args in _job_copies(self.evaluation, AWS_CP):
            client = f"{PLAN_JOB} Job {job}, {container}: {' '.join([*AWS_CP, *args])}"
            builder = self.identity(service_account)
            yield from self.plan_copy(client, builder, *_aws_cp(args))
            yield from self.assumptions(builder, f"the role of {service_account}")

    def plan_copy(
        self,
        client: str,
        builder: _Identity,
        source: str,
        destination: str,
        headers: dict[str, str],
    ) -> Iterator[ClientRequest]:
        """One copy of a plan Job with exactly the headers it sends, and the neighbouring
        writes the Job must not be able to make."""
        me, mine = builder.principal, builder.policies

        def case(name: str, allowed: bool, decide: Decide) -> ClientRequest:
            return ClientRequest(self.site, f"plan Job {name}", client, allowed, decide)

        def put(key: str, **sent: str) -> Decide:
            return self.s3(me, mine, "s3:PutObject", self.object(key), **sent)

        if source.startswith("s3://"):
            key = source.removeprefix(f"s3://{self.bucket}/")
            yield case(
                f"HeadObject+GetObject {key}",
                True,
                self.s3(me, mine, "s3:GetObject", self.object(key)),
            )
            yield case("kms:Decrypt via S3 (download)", True, self.kms(me, mine, "kms:Decrypt"))
        if destination.startswith("s3://"):
            key = destination.removeprefix(f"s3://{self.bucket}/")
            onnx = f"{key.rsplit('/', 1)[0]}/model.onnx"
            other = key.replace(self.prefix, ANOTHER_VERSION, 1)
            yield case(f"PutObject {key} with headers {headers}", True, put(key, **headers))
            data_key = self.kms(me, mine, "kms:GenerateDataKey")
            yield case("kms:GenerateDataKey via S3 (bucket default SSE-KMS)", True, data_key)
            decrypt = self.kms(me, mine, "kms:Decrypt")
            yield case("kms:Decrypt via S3 (completing a multipart upload)", True, decrypt)
            yield case(f"PutObject {onnx}", False, put(onnx, **headers))
            yield case(f"PutObject {other}", False, put(other, **headers))
            aes = put(key, **{**headers, SSE: "AES256"})
            yield case(f"PutObject {key} with --sse AES256", False, aes)

    def uploads(self) -> Iterator[ClientRequest]:
        """The stack's own PutObjects by the deploying principal, one per set of SSE headers."""
        deployer = aws_iam.Principal("AWS", f"arn:aws:iam::{self.account}:role/deployer")
        admin = [aws_iam.Policy("the deployer's AdministratorAccess", ADMIN)]
        by_headers: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for upload in self.uploaded():
            inputs = upload.inputs
            pairs = ((SSE, inputs.get("serverSideEncryption")), (SSE_KEY, inputs.get("kmsKeyId")))
            sent = tuple((k, str(v)) for k, v in pairs if v)
            by_headers.setdefault(sent, []).append(inputs["key"])

        def put(key: str, **sent: str) -> Decide:
            return self.s3(deployer, admin, "s3:PutObject", self.object(key), **sent)

        another_key = self.key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
        for headers, keys in sorted(by_headers.items()):
            name = f"PutObject of {len(keys)} objects (e.g. {keys[0]}) with headers {dict(headers)}"
            yield ClientRequest(self.site, name, UPLOADS, True, put(keys[0], **dict(headers)))
            other = put(keys[0], **{SSE: "aws:kms", SSE_KEY: another_key})
            yield ClientRequest(
                self.site, f"PutObject {keys[0]} under another KMS key", UPLOADS, False, other
            )
            managed = put(keys[0], **{SSE: "aws:kms"})
            name = f"PutObject {keys[0]} with aws:kms and no key (the AWS managed key)"
            yield ClientRequest(self.site, name, UPLOADS, False, managed)
        data_key = self.kms(deployer, admin, "kms:GenerateDataKey")
        yield ClientRequest(
            self.site, "kms:GenerateDataKey via S3 for the uploads", UPLOADS, True, data_key
        )

    def log_delivery(self) -> Iterator[ClientRequest]:
        logging = _one(_bucket_settings(self.evaluation, "bucketLogging", self.bucket))
        target = _one(
            _where(self.evaluation, "aws:s3/bucket:Bucket", bucket=logging.inputs["targetBucket"])
        )
        service = aws_iam.Principal("Service", "logging.s3.amazonaws.com")
        prefix = logging.inputs.get("targetPrefix", "")
        key = f"{target.outputs['arn']}/{prefix}2026-01-01-00-00-00-0123456789ABCDEF"
        site = f"public site, s3://{target.outputs['bucket']}"
        client = "S3 server access logging (aws.s3.BucketLogging)"

        def deliver(account: str, source: str) -> Decide:
            context = {
                "aws:SecureTransport": True,
                "aws:SourceAccount": account,
                "aws:SourceArn": source,
            }
            return self.s3(service, [], "s3:PutObject", key, **context)

        yield ClientRequest(
            site,
            f"log delivery for {self.bucket}",
            client,
            True,
            deliver(self.account, self.bucket_arn),
        )
        other_account = deliver(OUTSIDER_ACCOUNT, self.bucket_arn)
        yield ClientRequest(
            site, "log delivery on behalf of another account", client, False, other_account
        )
        other_bucket = deliver(self.account, "arn:aws:s3:::another-bucket-of-the-account")
        yield ClientRequest(
            site, "log delivery for another bucket of the account", client, False, other_bucket
        )


_AWS_CP_FLAGS: Mapping[str, str | None] = {
    "--only-show-errors": None,
    "--checksum-algorithm": None,  # a checksum header: no condition key reads it
    "--sse": SSE,
    "--sse-kms-key-id": SSE_KEY,
}
"""The ``aws s3 cp`` options modelled here -> the condition key their header sets."""


def _aws_cp(args: list[str]) -> tuple[str, str, dict[str, str]]:
    """(source, destination, condition keys of the headers it sends) of ``aws s3 cp <args>``."""
    headers: dict[str, str] = {}
    paths: list[str] = []
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-"):
            paths.append(arg)
        elif arg not in _AWS_CP_FLAGS:
            raise UnsupportedPolicy(f"aws s3 cp {arg}: what it sends is not modelled here")
        elif arg != "--only-show-errors":
            value = next(rest)
            if key := _AWS_CP_FLAGS[arg]:
                headers[key] = value
    source, destination = paths
    return source, destination, headers


def _role_policies(evaluation: StackEvaluation, role: MockedResource) -> list[aws_iam.Policy]:
    """A role's inline policies; a managed policy's document is not in the graph, so it raises."""
    names = {role.outputs.get("name"), role.id}
    for attachment in evaluation.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        if attachment.inputs["role"] in names:
            raise UnsupportedPolicy(f"role {role.name} has a managed policy attached")
    inline = [
        (p.name, p.inputs["policy"])
        for p in evaluation.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] in names
    ]
    inline += [(i["name"], i["policy"]) for i in role.inputs.get("inlinePolicies") or []]
    return [aws_iam.Policy(f"role policy {name}", json.loads(text)) for name, text in inline]


def _bucket_policy(evaluation: StackEvaluation, bucket: str) -> aws_iam.Policy | None:
    policies = _bucket_settings(evaluation, "bucketPolicy", bucket)
    if not policies:
        return None
    policy = _one(policies, f"bucket policy of {bucket}")
    return aws_iam.Policy(f"bucket policy {policy.name}", json.loads(policy.inputs["policy"]))


def _bucket_settings(
    evaluation: StackEvaluation, setting: str, bucket: str
) -> list[MockedResource]:
    """The ``aws:s3/<setting>`` resources of ``bucket`` (``bucketPolicy``, ``bucketLogging``)."""
    type_ = f"aws:s3/{setting}:{setting[0].upper()}{setting[1:]}"
    return [r for r in evaluation.of_type(type_) if r.inputs["bucket"] == bucket]


# --- GCP: the private site ------------------------------------------------------------------


@dataclass(frozen=True)
class _GcpSite:
    evaluation: StackEvaluation
    bucket: str
    prefix: str
    project: str
    project_number: str
    key: str
    """The bucket's default CMEK (a CryptoKey ID)."""
    pool: str
    """The cluster's Workload Identity pool: ``<project>.svc.id.goog``."""
    bindings: list[gcp_iam.Binding]

    @classmethod
    def read(cls, evaluation: StackEvaluation) -> "_GcpSite":
        bucket, prefix = _model_repository(evaluation, "gs")
        resource = _one(_where(evaluation, "gcp:storage/bucket:Bucket", name=bucket))
        cluster = _one(evaluation.of_type("gcp:container/cluster:Cluster"))
        return cls(
            evaluation,
            bucket,
            prefix,
            resource.outputs["project"],
            str(resource.outputs["projectNumber"]),
            resource.inputs["encryption"]["defaultKmsKeyName"],
            cluster.inputs["workloadIdentityConfig"]["workloadPool"],
            _bindings(evaluation),
        )

    @property
    def site(self) -> str:
        return f"private site, gs://{self.bucket}"

    def decide(self, member: str, permission: str, resource: str, *ancestors: str) -> Decide:
        request = gcp_iam.Request(
            member, permission, resource, (*ancestors, f"projects/{self.project}")
        )
        return lambda: gcp_iam.evaluate(request, self.bindings)

    def on_bucket(self, member: str, permission: str) -> Decide:
        return self.decide(member, permission, f"projects/_/buckets/{self.bucket}")

    def on_object(self, member: str, permission: str, key: str) -> Decide:
        bucket = f"projects/_/buckets/{self.bucket}"
        return self.decide(member, permission, f"{bucket}/objects/{key}", bucket)

    def workload(self, namespace: str, ksa: str) -> str:
        """Who a pod of ``namespace/ksa`` is to Google IAM under Workload Identity."""
        return f"serviceAccount:{self.pool}[{namespace}/{ksa}]"

    def service_account(self, ksa: str) -> tuple[str, str]:
        """(member, resource name) of the Google SA the KSA may impersonate."""
        wanted = self.workload(NAMESPACE, ksa)
        for binding in self.bindings:
            if binding.role == "roles/iam.workloadIdentityUser" and binding.member == wanted:
                return f"serviceAccount:{binding.resource.rsplit('/', 1)[1]}", binding.resource
        raise LookupError(f"the stack has no Google service account for {NAMESPACE}/{ksa}")

    def impersonations(self, ksa: str, member: str, account: str) -> Iterator[ClientRequest]:
        for namespace, name, allowed in ((NAMESPACE, ksa, True), (*STRANGER, False)):
            who = self.workload(namespace, name)
            decide = self.decide(who, "iam.serviceAccounts.getAccessToken", account)
            label = f"{namespace}/{name} impersonates {member}"
            yield ClientRequest(self.site, label, WORKLOAD_IDENTITY, allowed, decide)

    # -- the catalog --

    def requests(self) -> Iterator[ClientRequest]:
        yield from self.triton()
        yield from self.plan_jobs()

    def triton(self) -> Iterator[ClientRequest]:
        me, account = self.service_account(SERVICE_ACCOUNT)
        names = [
            o.inputs["name"]
            for o in self.evaluation.of_type("gcp:storage/bucketObject:BucketObject")
            if o.inputs["bucket"] == self.bucket
        ]
        config, weights = _repository_files(names, self.prefix, f"gs://{self.bucket}")

        def case(name: str, function: str, allowed: bool, decide: Decide) -> ClientRequest:
            return ClientRequest(
                self.site, f"Triton {name}", f"{GCS_FS}::{function}", allowed, decide
            )

        yield case(
            "GetBucketMetadata (storage.buckets.get)",
            "IsDirectory",
            True,
            self.on_bucket(me, "storage.buckets.get"),
        )
        yield case(
            f"ListObjects prefix={self.prefix} (storage.objects.list)",
            "IsDirectory, GetDirectoryContents",
            True,
            self.on_bucket(me, "storage.objects.list"),
        )
        yield case(
            f"GetObjectMetadata {config} (storage.objects.get)",
            "FileExists",
            True,
            self.on_object(me, "storage.objects.get", config),
        )
        yield case(
            f"ReadObject {weights} (storage.objects.get)",
            "LocalizePath",
            True,
            self.on_object(me, "storage.objects.get", weights),
        )
        yield case(
            f"InsertObject {config} (storage.objects.create)",
            "WriteTextFile",
            False,
            self.on_object(me, "storage.objects.create", config),
        )
        yield case(
            f"DeleteObject {config} (storage.objects.delete)",
            "DeletePath",
            False,
            self.on_object(me, "storage.objects.delete", config),
        )
        yield from self.impersonations(SERVICE_ACCOUNT, me, account)
        # CMEK: GCS encrypts and decrypts through the project's storage service agent.
        agent = f"serviceAccount:service-{self.project_number}@{STORAGE_AGENTS}"
        ring = self.key.rsplit("/cryptoKeys/", 1)[0]
        for use in ("useToDecrypt", "useToEncrypt"):
            decide = self.decide(agent, f"cloudkms.cryptoKeyVersions.{use}", self.key, ring)
            name = (
                f"the storage service agent: cloudkms.cryptoKeyVersions.{use} on the bucket's key"
            )
            yield ClientRequest(self.site, name, "GCS CMEK for every read and write", True, decide)
        stranger = "serviceAccount:intruder@elsewhere.iam.gserviceaccount.com"
        read = self.on_object(stranger, "storage.objects.get", weights)
        yield ClientRequest(
            self.site,
            "another project's service account reads the repository",
            "outside",
            False,
            read,
        )

    def plan_jobs(self) -> Iterator[ClientRequest]:
        for job, container, ksa, args in _job_copies(self.evaluation, GCLOUD_CP):
            if len(args) != 2 or any(a.startswith("-") for a in args):
                raise UnsupportedPolicy(f"gcloud storage cp {args}: only SOURCE DEST is modelled")
            client = f"{PLAN_JOB} Job {job}, {container}: {' '.join([*GCLOUD_CP, *args])}"
            me, account = self.service_account(ksa)
            yield from self.plan_copy(client, me, *args)
            yield from self.impersonations(ksa, me, account)

    def plan_copy(
        self, client: str, me: str, source: str, destination: str
    ) -> Iterator[ClientRequest]:
        def case(name: str, allowed: bool, decide: Decide) -> ClientRequest:
            return ClientRequest(self.site, f"plan Job {name}", client, allowed, decide)

        if source.startswith("gs://"):
            key = source.removeprefix(f"gs://{self.bucket}/")
            get = self.on_object(me, "storage.objects.get", key)
            yield case(f"get {key} (storage.objects.get)", True, get)
        if destination.startswith("gs://"):
            key = destination.removeprefix(f"gs://{self.bucket}/")
            onnx = f"{key.rsplit('/', 1)[0]}/model.onnx"
            other = key.replace(self.prefix, ANOTHER_VERSION, 1)
            for name, allowed in ((key, True), (onnx, False), (other, False)):
                create = self.on_object(me, "storage.objects.create", name)
                yield case(f"create {name} (storage.objects.create)", allowed, create)


_BINDINGS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "gcp:storage/bucketIAMMember:BucketIAMMember": lambda i: f"projects/_/buckets/{i['bucket']}",
    "gcp:projects/iAMMember:IAMMember": lambda i: f"projects/{i['project']}",
    "gcp:serviceaccount/iAMMember:IAMMember": lambda i: i["serviceAccountId"],
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": lambda i: i["cryptoKeyId"],
}
"""IAM member resource -> the full name of the resource it grants on."""


def _bindings(evaluation: StackEvaluation) -> list[gcp_iam.Binding]:
    """Every IAM member the stack grants. Authoritative bindings and policies replace grants
    made elsewhere, which the stack alone cannot show, so they raise."""
    authoritative = {
        r.type for r in evaluation.resources if r.type.endswith(("IAMBinding", "IAMPolicy"))
    }
    if authoritative:
        raise UnsupportedPolicy(
            f"authoritative IAM resources are not modelled: {sorted(authoritative)}"
        )
    return [
        gcp_iam.Binding(
            f"{type_.rsplit(':', 1)[1]} {r.name}",
            scope(r.inputs),
            r.inputs["role"],
            r.inputs["member"],
            r.inputs.get("condition"),
        )
        for type_, scope in _BINDINGS.items()
        for r in evaluation.of_type(type_)
    ]


# --- the graph ------------------------------------------------------------------------------


def _model_repository(evaluation: StackEvaluation, scheme: str) -> tuple[str, str]:
    """(bucket, ``repo/<hash>/``) from the Triton Deployment's ``--model-repository``."""
    urls = [
        arg.split("=", 1)[1]
        for deployment in evaluation.of_type("kubernetes:apps/v1:Deployment")
        if deployment.inputs["metadata"].get("namespace") == NAMESPACE
        and deployment.inputs["spec"]["template"]["spec"].get("serviceAccountName")
        == SERVICE_ACCOUNT
        for container in deployment.inputs["spec"]["template"]["spec"]["containers"]
        for arg in container.get("args") or []
        if arg.startswith(f"--model-repository={scheme}://")
    ]
    bucket, _, prefix = (
        _one(urls, f"Triton Deployment loading {scheme}://").partition("://")[2].partition("/")
    )
    return bucket, prefix.rstrip("/") + "/"


def _repository_files(keys: list[str], prefix: str, where: str) -> tuple[str, str]:
    """A model's ``config.pbtxt`` and a weights file under ``prefix``: what Triton reads."""
    served = sorted(k for k in keys if k.startswith(prefix))
    configs = [k for k in served if k.endswith("/config.pbtxt")]
    weights = [k for k in served if "/1/" in k]
    if not configs or not weights:
        raise LookupError(
            f"the stack uploads no model (config.pbtxt and version 1) under {where}/{prefix}"
        )
    return configs[0], weights[0]


def _job_copies(
    evaluation: StackEvaluation, tool: list[str]
) -> Iterator[tuple[str, str, str, list[str]]]:
    """(Job, container, service account, arguments) of each Job container that runs ``tool``."""
    for job in evaluation.of_type("kubernetes:batch/v1:Job"):
        spec = job.inputs["spec"]["template"]["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            command = container["command"]
            if command[: len(tool)] == tool:
                yield (
                    job.inputs["metadata"]["name"],
                    container["name"],
                    spec["serviceAccountName"],
                    command[len(tool) :],
                )


def _where(evaluation: StackEvaluation, type_: str, **outputs: str) -> list[MockedResource]:
    return [
        r
        for r in evaluation.of_type(type_)
        if all(r.outputs.get(k) == v for k, v in outputs.items())
    ]


def _one(found: list[Any], what: str = "matching resource") -> Any:
    if len(found) != 1:
        raise LookupError(f"expected one {what}, found {len(found)}")
    return found[0]
