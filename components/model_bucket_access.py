"""Cloud identities for the pods that touch a model bucket, bound to one Kubernetes service account.

Triton reads and nothing else: on AWS an IRSA role that only the Triton service account of
that cluster's OIDC issuer can assume, allowed ``s3:GetObject`` under ``repo/``,
``s3:ListBucket`` with a ``repo/`` prefix condition (plus HeadBucket, which carries no
prefix) and ``kms:Decrypt`` on the bucket's CMK through S3; on GCP a service account that
only that KSA can impersonate (Workload Identity) with ``roles/storage.objectViewer`` and
``roles/storage.legacyBucketReader`` (for the bucket metadata Triton reads first) on the
model bucket. CMEK decryption on GCS happens through the storage service agent, which the
bucket already holds on its key. ``policy.client_requests`` judges these on the requests
Triton really sends.

The TensorRT builder additionally writes ``*.plan`` files, and only under the prefix being
served, so it cannot touch a model file or an older version.
"""

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.aws_policies import irsa_trust_policy
from hybrid.bucket_access import gcs_plan_condition, s3_access_policy


@dataclass(frozen=True)
class KubernetesSubject:
    """The one service account allowed to use the identity."""

    namespace: str
    service_account: str


@dataclass(frozen=True)
class AwsModelBucketAccessArgs:
    subject: KubernetesSubject
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer URL without ``https://``."""
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    region: str
    read_prefix: str
    """``repo/``: every repository version, so pods of the previous ReplicaSet keep working."""
    write_prefix: str | None = None
    """``repo/<hash>/`` where ``*.plan`` files may be created; None for read-only."""


class AwsModelBucketAccess(pulumi.ComponentResource):
    """An IRSA role for one service account, scoped to the model prefix and the bucket's CMK."""

    role_arn: pulumi.Output[str]
    annotations: pulumi.Output[dict[str, str]]
    """Put on the Kubernetes ServiceAccount so EKS injects the web identity."""

    def __init__(
        self, name: str, args: AwsModelBucketAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:model_bucket_access:AwsModelBucketAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subject = args.subject
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=irsa_trust_policy(
                args.oidc_provider_arn,
                args.oidc_issuer,
                subject.namespace,
                subject.service_account,
            ),
            description=f"Model bucket access for {subject.namespace}/{subject.service_account}",
            max_session_duration=3600,
            opts=child,
        )

        def render_policy(arns: list[str]) -> str:
            bucket_arn, kms_key_arn = arns
            document = s3_access_policy(
                bucket_arn,
                kms_key_arn,
                args.region,
                read_prefix=args.read_prefix,
                write_prefix=args.write_prefix,
                # Triton (the read-only identity) probes the bucket; the plan builder never does.
                head_bucket=args.write_prefix is None,
            )
            return json.dumps(document)

        policy = pulumi.Output.all(args.bucket_arn, args.kms_key_arn).apply(render_policy)
        aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=child)
        self.role_arn = role.arn
        self.annotations = role.arn.apply(lambda arn: {"eks.amazonaws.com/role-arn": arn})
        self.register_outputs({"role_arn": self.role_arn, "annotations": self.annotations})


@dataclass(frozen=True)
class GcpModelBucketAccessArgs:
    subject: KubernetesSubject
    project: str
    workload_pool: pulumi.Input[str]
    """``<project>.svc.id.goog``."""
    bucket_name: pulumi.Input[str]
    account_id: str
    """The Google service account's id (6-30 characters)."""
    write_prefix: str | None = None
    """``repo/<hash>/`` where ``*.plan`` objects may be created; None for read-only."""


class GcpModelBucketAccess(pulumi.ComponentResource):
    """A Google service account for one KSA (Workload Identity), reader of the model bucket."""

    email: pulumi.Output[str]
    annotations: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: GcpModelBucketAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:model_bucket_access:GcpModelBucketAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        subject = args.subject
        account = gcp.serviceaccount.Account(
            f"{name}-sa",
            project=args.project,
            account_id=args.account_id,
            display_name=f"Model bucket access for {subject.namespace}/{subject.service_account}",
            opts=child,
        )
        member = pulumi.Output.concat("serviceAccount:", account.email)
        gcp.serviceaccount.IAMMember(
            f"{name}-workload-identity",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pulumi.Output.concat(
                "serviceAccount:",
                args.workload_pool,
                f"[{subject.namespace}/{subject.service_account}]",
            ),
            opts=child,
        )
        gcp.storage.BucketIAMMember(
            f"{name}-viewer",
            bucket=args.bucket_name,
            role="roles/storage.objectViewer",
            member=member,
            opts=child,
        )
        if args.write_prefix is None:
            # Triton's GCS filesystem reads the bucket's metadata before anything else, and
            # objectViewer lacks storage.buckets.get: legacyBucketReader is the smallest
            # predefined role that adds it. The plan builder's gcloud copies never need it.
            gcp.storage.BucketIAMMember(
                f"{name}-bucket-reader",
                bucket=args.bucket_name,
                role="roles/storage.legacyBucketReader",
                member=member,
                opts=child,
            )
        else:
            gcp.storage.BucketIAMMember(
                f"{name}-plan-writer",
                bucket=args.bucket_name,
                role="roles/storage.objectCreator",
                member=member,
                condition=pulumi.Output.from_input(args.bucket_name).apply(
                    lambda bucket: gcp.storage.BucketIAMMemberConditionArgs(
                        **gcs_plan_condition(bucket, str(args.write_prefix))
                    )
                ),
                opts=child,
            )
        self.email = account.email
        self.annotations = account.email.apply(
            lambda email: {"iam.gke.io/gcp-service-account": email}
        )
        self.register_outputs({"email": self.email, "annotations": self.annotations})
