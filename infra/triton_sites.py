"""Triton on both clusters, composed from StackConfig.

Per site: the rendered repository uploaded under its immutable prefix, a read-only bucket
identity bound to Triton's service account, GPU plumbing, TensorRT build Jobs when enabled,
and the Triton server itself, each waiting for the cluster add-on releases it needs. Kept
apart from ``__main__`` so that each composition reads on its own; ``__main__`` calls
``site_repository`` early (the GCS bucket's lifecycle rule needs the served hash) and
``serve`` once clusters, add-ons, buckets and PKI exist.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.cluster_addons import AddonReleases
from components.encrypted_bucket import AwsEncryptedBucket, GcpEncryptedBucket
from components.gpu_plumbing import GpuPlumbing, GpuPlumbingArgs
from components.model_bucket_access import (
    AwsModelBucketAccess,
    AwsModelBucketAccessArgs,
    GcpModelBucketAccess,
    GcpModelBucketAccessArgs,
    KubernetesSubject,
)
from components.model_repository_upload import (
    ModelRepositoryUpload,
    ModelRepositoryUploadArgs,
    load_site_repository,
)
from components.private_cluster import PrivateCluster
from components.public_cluster import PublicCluster
from components.serving_pki import ServingPki
from components.triton_manifests import TritonSite
from components.triton_server import PlanBuilds, ServingTls, TritonServer, TritonServerArgs
from hybrid.bucket_access import REPO_ROOT
from hybrid.config import StackConfig
from hybrid.gpus import GpuType
from hybrid.manifest import Manifest
from hybrid.paths import PROJECT_ROOT
from hybrid.sites import CLOUD_OF, SITES, Site
from hybrid.triton import NAMESPACE, PLAN_BUILDER, SERVICE_ACCOUNT
from modelkit.onnx2tensorrt import ShapeProfile, plan_filename
from modelkit.tensorrt_job import DEADLINE_SECONDS, ENCODER, plan_build_job

TRITON = KubernetesSubject(NAMESPACE, SERVICE_ACCOUNT)
BUILDER = KubernetesSubject(NAMESPACE, PLAN_BUILDER)


@dataclass(frozen=True)
class SiteRepository:
    """A site's verified rendering: where its files are and what its manifest says."""

    root: Path
    manifest: Manifest


def site_repositories(config: StackConfig) -> dict[Site, SiteRepository]:
    """Both sites' renderings, verified before anything is planned."""
    return {site: site_repository(config, site) for site in SITES}


def site_repository(config: StackConfig, site: Site) -> SiteRepository:
    """The rendered repository a site serves, verified; stops the run when it is not ready."""
    root = PROJECT_ROOT / config.serving.repository_dir / site
    models = config.models_on(site)
    tensorrt = config.serving.tensorrt
    plans = [plan_filename(gpu) for gpu in config.gpu_types_on(site)] if tensorrt else []
    manifest = load_site_repository(root, site=site, stack=config.stack, models=models, plans=plans)
    return SiteRepository(root, manifest)


@dataclass(frozen=True)
class SiteInfrastructure:
    """What a site's cluster, bucket and add-ons give Triton, and the options on its cloud."""

    cluster: PublicCluster | PrivateCluster
    bucket: AwsEncryptedBucket | GcpEncryptedBucket
    options: pulumi.ResourceOptions
    addons: AddonReleases


@dataclass(frozen=True)
class ServedSite:
    upload: ModelRepositoryUpload
    server: TritonServer


def serve(
    config: StackConfig,
    repositories: dict[Site, SiteRepository],
    public: SiteInfrastructure,
    private: SiteInfrastructure,
    pki: ServingPki,
) -> dict[Site, ServedSite]:
    """Upload, identities, GPU plumbing, plan builds and Triton on each site."""
    served: dict[Site, ServedSite] = {}
    sites: tuple[tuple[Site, SiteInfrastructure], ...] = (("public", public), ("private", private))
    for site, base in sites:
        repository = repositories[site]
        cloud = CLOUD_OF[site]
        upload = ModelRepositoryUpload(
            f"{site}-repository",
            ModelRepositoryUploadArgs(
                cloud=cloud,
                root=repository.root,
                manifest=repository.manifest,
                bucket_name=base.bucket.bucket_name,
                kms_key=base.bucket.kms_key_id,
                retention_days=config.serving.retention_days,
            ),
            # Objects are written only once the bucket enforces its encryption and policy.
            pulumi.ResourceOptions.merge(
                base.options,
                pulumi.ResourceOptions(depends_on=base.bucket.object_prerequisites),
            ),
        )
        reader = _bucket_access(config, site, base, TRITON, write_prefix=None)
        gpu = GpuPlumbing(
            f"{site}-gpu",
            GpuPlumbingArgs(
                cloud=cloud,
                provider=base.cluster.provider,
                monitoring_namespace=config.serving.monitoring_namespace,
                addons=base.addons,
            ),
        )
        server = TritonServer(
            f"{site}-triton",
            TritonServerArgs(
                site=triton_site(config, site, upload),
                provider=base.cluster.provider,
                service_account_annotations=reader.annotations,
                tls=ServingTls(
                    ca_cert_pem=pki.ca_cert_pem,
                    server_cert_pem=pki.server_cert_pem[site],
                    server_key_pem=pki.server_key_pem[site],
                ),
                queue_slo_us=config.serving.queue_slo_ms * 1000,
                addons=base.addons,
                depends_on=[upload, reader, gpu],
                plan_builds=_plan_builds(config, site, base, upload, repository.manifest),
            ),
            base.options,
        )
        served[site] = ServedSite(upload, server)
    return served


def triton_site(config: StackConfig, site: Site, upload: ModelRepositoryUpload) -> TritonSite:
    serving = config.serving
    public = site == "public"
    return TritonSite(
        site=site,
        cloud=CLOUD_OF[site],
        image=serving.triton_image,
        repository_url=upload.url,
        content_hash=upload.content_hash,
        models=upload.models,
        repository_bytes=upload.size_bytes,
        accelerators=tuple(gpu.name for gpu in config.gpu_types_on(site)),
        # Public: the networks in config; private: only the AWS VPC, over the VPN.
        serving_cidrs=serving.source_ranges if public else (config.public.vpc_cidr,),
        mutual_tls=not public,
        min_replicas=serving.min_replicas,
        max_replicas=serving.max_replicas,
        # Scale out at half the SLO, before the alert fires.
        queue_target_us=serving.queue_slo_ms * 1000 // 2,
        startup_seconds_per_gib=serving.startup_seconds_per_gib,
        monitoring_namespace=serving.monitoring_namespace,
        region=config.public.region if public else None,
    )


def _plan_builds(
    config: StackConfig,
    site: Site,
    base: SiteInfrastructure,
    upload: ModelRepositoryUpload,
    manifest: Manifest,
) -> PlanBuilds | None:
    """Jobs for the GPU architectures whose plan the served repository does not hold yet.

    Once ``make models`` has rendered the fetched plans into the repository, the site
    serves ``tensorrt_plan`` and no Job is left to run.
    """
    if not config.serving.tensorrt or ENCODER not in manifest.models:
        return None
    missing = {
        gpu.compute_capability: gpu
        for gpu in config.gpu_types_on(site)
        if f"{ENCODER}/1/{plan_filename(gpu)}" not in manifest.files
    }
    if not missing:
        return None
    writer = _bucket_access(config, site, base, BUILDER, write_prefix=manifest.prefix)
    profile = ShapeProfile(**manifest.profiles[ENCODER])

    def job(gpu: GpuType) -> pulumi.Output[dict[str, Any]]:
        return upload.url.apply(
            lambda url: plan_build_job(
                gpu,
                site=site,
                repo_url=url,
                namespace=NAMESPACE,
                service_account=PLAN_BUILDER,
                profile=profile,
                # A plan only loads in the TensorRT release it was built with.
                ngc_release=config.serving.triton_image_tag,
            )
        )

    jobs = {f"sm{gpu.sm}": job(gpu) for _, gpu in sorted(missing.items())}
    return PlanBuilds(
        service_account_annotations=writer.annotations, jobs=jobs, deadline_seconds=DEADLINE_SECONDS
    )


def _bucket_access(
    config: StackConfig,
    site: Site,
    base: SiteInfrastructure,
    subject: KubernetesSubject,
    *,
    write_prefix: str | None,
) -> AwsModelBucketAccess | GcpModelBucketAccess:
    """Triton reads every version under ``repo/``; the plan builder only its own prefix."""
    cluster, bucket = base.cluster, base.bucket
    role = "triton" if subject == TRITON else "tensorrt"
    if isinstance(cluster, PublicCluster):
        assert isinstance(bucket, AwsEncryptedBucket), "the public site's bucket is on S3"
        return AwsModelBucketAccess(
            f"{site}-{role}-identity",
            AwsModelBucketAccessArgs(
                subject=subject,
                oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_issuer=cluster.oidc_issuer,
                bucket_arn=bucket.arn,
                kms_key_arn=bucket.kms_key_id,
                region=config.public.region,
                read_prefix=write_prefix or REPO_ROOT,
                write_prefix=write_prefix,
            ),
            base.options,
        )
    return GcpModelBucketAccess(
        f"{site}-{role}-identity",
        GcpModelBucketAccessArgs(
            subject=subject,
            project=config.private.project,
            workload_pool=cluster.workload_pool,
            bucket_name=bucket.bucket_name,
            account_id=f"{role}-{config.stack}",
            write_prefix=write_prefix,
        ),
        base.options,
    )
