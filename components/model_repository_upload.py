"""A site's rendered Triton repository, uploaded under an immutable, content-addressed prefix.

Every object lands under ``repo/<content_hash>/``. A changed model is a new hash, so a new
prefix: nothing is overwritten in place, a half-finished upload is never what Triton reads,
and the Deployment rolls simply because its ``--model-repository`` argument changed.

Objects are retained when Pulumi drops them (the provider would otherwise purge every
version of a replaced key at once), so a retired prefix stays readable for rollbacks and for
pods of the previous ReplicaSet. The bucket's lifecycle rules (``repository_retention``)
remove retired prefixes, never the one being served.
"""

import mimetypes
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components.repository_retention import s3_lifecycle_rules
from hybrid.manifest import Manifest, ManifestError, load_verified
from hybrid.sites import Cloud


def load_site_repository(
    root: Path, *, site: str, stack: str, models: Sequence[str], plans: Collection[str]
) -> Manifest:
    """The verified sub-manifest of the models a site serves, and of what they call.

    ``plans`` are the TensorRT plan files the site serves: one per GPU type of its pools
    when the stack enables plans, none when it serves ONNX. A rendering that serves plans
    must hold one for every pool, or some pods could not load the encoder, and must not
    serve them at all where the stack asks for ONNX (it was rendered for another setting).
    A missing, stale or unfit rendering stops preview/up here, with the command that
    fixes it, instead of uploading something Triton would fail on.
    """
    hint = f"run `make models STACK={stack}` (python -m modelkit build --stack {stack})"
    try:
        manifest = load_verified(root)
        if manifest.target != site:
            raise ManifestError(f"{root} holds the '{manifest.target}' target, not '{site}'")
        manifest = manifest.for_site(site, models)
        rendered = {path.rsplit("/", 1)[-1] for path in manifest.files if path.endswith(".plan")}
        if rendered and not plans:
            raise ManifestError(
                f"{root} serves TensorRT plans {sorted(rendered)}, but stack '{stack}' serves "
                f"ONNX (TensorRT plans are off)"
            )
        if rendered and not set(plans) <= rendered:
            raise ManifestError(
                f"{root} serves TensorRT plans {sorted(rendered)}, but the {site} site's GPU "
                f"pools need {sorted(plans)}"
            )
        return manifest
    except ManifestError as error:
        message = str(error) if "make models" in str(error) else f"{error}; {hint}"
        raise pulumi.RunError(
            f"the {site} site's model repository is not ready: {message}"
        ) from None


@dataclass(frozen=True)
class ModelRepositoryUploadArgs:
    cloud: Cloud
    root: Path
    """The rendered target directory the manifest describes (``build/repos/<site>``)."""
    manifest: Manifest
    """What to upload: the site's verified sub-manifest (``load_site_repository``)."""
    bucket_name: pulumi.Input[str]
    kms_key: pulumi.Input[str]
    """The bucket's customer-managed key: KMS key ARN (AWS) or Cloud KMS key id (GCP)."""
    retention_days: int
    """How old a retired prefix may get before the lifecycle rule deletes it."""


class ModelRepositoryUpload(pulumi.ComponentResource):
    """Uploads one repository version and, on AWS, owns the bucket's expiry of retired ones."""

    url: pulumi.Output[str]
    """``s3://bucket/repo/<hash>`` or ``gs://bucket/repo/<hash>``: Triton's --model-repository."""
    prefix: str
    content_hash: str
    models: tuple[str, ...]
    size_bytes: int

    def __init__(
        self,
        name: str,
        args: ModelRepositoryUploadArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hybrid:model_repository_upload:ModelRepositoryUpload", name, None, opts)
        manifest = args.manifest
        self.content_hash = manifest.content_hash
        self.prefix = manifest.prefix
        self.models = manifest.models
        self.size_bytes = sum(entry.size for entry in manifest.files.values())
        scheme = "s3" if args.cloud == "aws" else "gs"
        self.url = pulumi.Output.concat(
            f"{scheme}://", args.bucket_name, "/", self.prefix.rstrip("/")
        )
        # Retained: a replaced key would otherwise be purged (all versions) at the end of
        # `pulumi up`; the lifecycle rule below is what expires retired prefixes.
        keep = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        upload = _s3_object if args.cloud == "aws" else _gcs_object
        for path, entry in manifest.files.items():
            upload(f"{name}-{path}", args, self.prefix + path, args.root / path, entry.sha256, keep)
        if args.cloud == "aws":
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle",
                bucket=args.bucket_name,
                rules=s3_lifecycle_rules(self.content_hash, args.retention_days),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs(
            {
                "url": self.url,
                "prefix": self.prefix,
                "content_hash": self.content_hash,
                "models": list(self.models),
                "size_bytes": self.size_bytes,
            }
        )


def _s3_object(
    name: str,
    args: ModelRepositoryUploadArgs,
    key: str,
    source: Path,
    sha256: str,
    opts: pulumi.ResourceOptions,
) -> None:
    aws.s3.BucketObjectv2(
        name,
        bucket=args.bucket_name,
        key=key,
        source=pulumi.FileAsset(str(source)),
        content_type=content_type(source),
        server_side_encryption="aws:kms",
        kms_key_id=args.kms_key,
        bucket_key_enabled=True,
        # S3 recomputes the SHA-256 on arrival and rejects a corrupted upload.
        checksum_algorithm="SHA256",
        metadata={"sha256": sha256},
        opts=opts,
    )


def _gcs_object(
    name: str,
    args: ModelRepositoryUploadArgs,
    key: str,
    source: Path,
    sha256: str,
    opts: pulumi.ResourceOptions,
) -> None:
    gcp.storage.BucketObject(
        name,
        bucket=args.bucket_name,
        name=key,
        source=pulumi.FileAsset(str(source)),
        content_type=content_type(source),
        kms_key_name=args.kms_key,
        metadata={"sha256": sha256},
        opts=opts,
    )


# --- pure helpers ------------------------------------------------------------


def content_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed:
        return guessed
    return "text/plain" if path.suffix == ".pbtxt" else "application/octet-stream"
