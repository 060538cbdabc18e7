"""One site's Triton: namespace, identity-bound service account, hardened Deployment, load
balancer, autoscaling on queue time per request, disruption budget, network policy and
monitoring objects, on the cluster's own Kubernetes provider.

The manifests themselves are pure functions in ``triton_manifests`` and
``triton_monitoring``; this component adds the cloud pieces they reference (the ACM
certificate behind the public NLB's TLS listener) and the ordering between objects: the
monitoring objects wait for the release that serves their CRDs and namespace, the HPA for
the one that serves its metric, and the pods for the node autoscaler.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import triton_manifests as manifests
from components import triton_monitoring as monitoring
from components.cluster_addons import AddonReleases
from components.triton_manifests import APP, TLS_SECRET, TritonSite
from hybrid.triton import NAMESPACE, PLAN_BUILDER, SERVICE_ACCOUNT

GPU_NODE_FROM_ZERO_MINUTES = 25
"""A GPU node where the pool has none: the autoscaler reacts and the cloud finds GPU capacity
and boots the node (up to 15 min; spot and scarce GPU types take longest), then GKE's driver
installer runs (up to 10 min; EKS's NVIDIA AMI has the driver baked in) and the device
plugin registers the GPU."""
NGC_IMAGE_PULL_MINUTES = 15
"""The NGC images (tritonserver, tensorrt) are around 10 GB; a fresh node pulls and unpacks
them in 5 to 15 minutes."""
JOB_AWAIT_MARGIN_MINUTES = 5
"""Kubernetes fails a Job at its activeDeadlineSeconds; the await lasts a little longer so
that its reason (DeadlineExceeded, BackoffLimitExceeded) is what ``pulumi up`` reports."""


@dataclass(frozen=True)
class ServingTls:
    """The site's gRPC server certificate, signed by the serving CA."""

    ca_cert_pem: pulumi.Input[str]
    server_cert_pem: pulumi.Input[str]
    server_key_pem: pulumi.Input[str]


@dataclass(frozen=True)
class PlanBuilds:
    """TensorRT plan builds for the served prefix, run by their own (write-capable) identity."""

    service_account_annotations: pulumi.Input[Mapping[str, str]]
    jobs: Mapping[str, pulumi.Input[dict[str, Any]]]
    """Job manifests (from modelkit) by GPU architecture, e.g. ``sm89``."""
    deadline_seconds: int
    """The Jobs' activeDeadlineSeconds: ``pulumi up`` waits for each Job that long, and a bit."""


@dataclass(frozen=True)
class TritonServerArgs:
    site: TritonSite
    provider: k8s.Provider
    """The cluster's Kubernetes provider (from the cluster component)."""
    service_account_annotations: pulumi.Input[Mapping[str, str]]
    """Binds the pods to the read-only bucket identity (IRSA role / Workload Identity)."""
    tls: ServingTls
    queue_slo_us: int
    """Alert threshold for the average queue time per request."""
    addons: AddonReleases
    """The cluster's add-on releases (empty where the cluster brings its own)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What must exist before pods start: the uploaded repository, its identity, GPU plumbing."""
    plan_builds: PlanBuilds | None = None


class TritonServer(pulumi.ComponentResource):
    namespace: str
    endpoint: pulumi.Output[str]
    """The load balancer's hostname or IP (empty until the cloud assigns it)."""

    def __init__(
        self, name: str, args: TritonServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:triton_server:TritonServer", name, None, opts)
        site = args.site
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": NAMESPACE,
                "labels": {**site.labels, "pod-security.kubernetes.io/enforce": "restricted"},
            },
            opts=k8s_opts,
        )
        in_namespace = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])
        )

        def resource(kind: type, role: str, body: dict[str, Any], **extra: Any) -> Any:
            options = extra.pop("opts", in_namespace)
            return kind(f"{name}-{role}", opts=options, **body, **extra)

        service_account = resource(
            k8s.core.v1.ServiceAccount,
            "service-account",
            {
                "metadata": manifests.metadata(
                    SERVICE_ACCOUNT, site, annotations=args.service_account_annotations
                )
            },
            automount_service_account_token=False,
        )
        tls_secret = resource(
            k8s.core.v1.Secret,
            "grpc-tls",
            {"metadata": manifests.metadata(TLS_SECRET, site)},
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": args.tls.server_cert_pem,
                "tls.key": pulumi.Output.secret(args.tls.server_key_pem),
                "ca.crt": args.tls.ca_cert_pem,
            },
        )
        deployment = resource(
            k8s.apps.v1.Deployment,
            "deployment",
            manifests.deployment(site),
            opts=pulumi.ResourceOptions.merge(
                in_namespace,
                pulumi.ResourceOptions(
                    depends_on=[
                        service_account,
                        tls_secret,
                        *args.depends_on,
                        *args.addons.node_autoscaler,
                    ],
                    custom_timeouts=rollout_timeouts(site),
                ),
            ),
        )
        resource(k8s.core.v1.Service, "metrics", manifests.metrics_service(site))
        load_balancer = resource(
            k8s.core.v1.Service,
            "load-balancer",
            manifests.load_balancer_service(site, self._lb_annotations(name, args)),
        )
        resource(
            k8s.autoscaling.v2.HorizontalPodAutoscaler,
            "hpa",
            manifests.horizontal_pod_autoscaler(site, monitoring.QUEUE_METRIC),
            opts=pulumi.ResourceOptions.merge(
                in_namespace,
                pulumi.ResourceOptions(depends_on=[deployment, *args.addons.custom_metrics]),
            ),
        )
        resource(k8s.policy.v1.PodDisruptionBudget, "pdb", manifests.pod_disruption_budget(site))
        for role, policy in manifests.network_policies(site).items():
            resource(k8s.networking.v1.NetworkPolicy, f"netpol-{role}", policy)

        # Custom resources of the Prometheus Operator, and objects in its namespace.
        after_operator = pulumi.ResourceOptions(depends_on=list(args.addons.prometheus_operator))
        monitoring_labels = {**site.labels, **monitoring.MONITORING_LABELS}
        for role, kind, spec in (
            (
                "service-monitor",
                "ServiceMonitor",
                monitoring.service_monitor_spec(NAMESPACE, site.selector),
            ),
            (
                "alerts",
                "PrometheusRule",
                monitoring.alert_rules(NAMESPACE, site.site, site.models, args.queue_slo_us),
            ),
        ):
            custom = {
                "api_version": "monitoring.coreos.com/v1",
                "kind": kind,
                "metadata": manifests.metadata(APP, site, labels=monitoring_labels),
                "spec": spec,
            }
            resource(
                k8s.apiextensions.CustomResource,
                role,
                custom,
                opts=pulumi.ResourceOptions.merge(in_namespace, after_operator),
            )
        dashboard = {
            "metadata": {
                "name": f"triton-{site.site}-dashboard",
                "namespace": site.monitoring_namespace,
                "labels": {**site.labels, **monitoring.DASHBOARD_LABELS},
            },
            "data": {
                f"triton-{site.site}.json": monitoring.dashboard(
                    NAMESPACE, site.site, args.queue_slo_us
                )
            },
        }
        resource(
            k8s.core.v1.ConfigMap,
            "dashboard",
            dashboard,
            opts=pulumi.ResourceOptions.merge(k8s_opts, after_operator),
        )
        if args.plan_builds is not None:
            self._plan_builds(name, args.plan_builds, in_namespace, args.addons)
        self.namespace = NAMESPACE
        self.endpoint = load_balancer.status.apply(_address)
        self.register_outputs({"namespace": self.namespace, "endpoint": self.endpoint})

    def _plan_builds(
        self,
        name: str,
        builds: PlanBuilds,
        in_namespace: pulumi.ResourceOptions,
        addons: AddonReleases,
    ) -> None:
        """The builder's service account and one Job per GPU architecture of the site.

        Each Job's pod may wait for its pool to scale up from zero (prod's spot pools start
        there), so the Jobs wait for the node autoscaler and ``pulumi up`` waits for them
        as long as their deadline allows.
        """
        account = k8s.core.v1.ServiceAccount(
            f"{name}-plan-builder",
            metadata={
                "name": PLAN_BUILDER,
                "namespace": NAMESPACE,
                "annotations": builds.service_account_annotations,
            },
            opts=in_namespace,
        )
        minutes = math.ceil(builds.deadline_seconds / 60) + JOB_AWAIT_MARGIN_MINUTES
        after_account = pulumi.ResourceOptions.merge(
            in_namespace,
            pulumi.ResourceOptions(
                depends_on=[account, *addons.node_autoscaler],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m"),
            ),
        )
        for arch, job in builds.jobs.items():
            manifest = pulumi.Output.from_input(job)
            k8s.batch.v1.Job(
                f"{name}-tensorrt-{arch}",
                metadata=manifest.apply(lambda j: j["metadata"]),
                spec=manifest.apply(lambda j: j["spec"]),
                opts=after_account,
            )

    def _lb_annotations(self, name: str, args: TritonServerArgs) -> dict[str, Any]:
        if args.site.cloud == "gcp":
            return manifests.internal_lb_annotations()
        # The NLB ends TLS for HTTPS with the site's own certificate, imported into ACM;
        # gRPC passes through to Triton, which terminates TLS itself.
        certificate = aws.acm.Certificate(
            f"{name}-https-certificate",
            certificate_body=args.tls.server_cert_pem,
            private_key=args.tls.server_key_pem,
            certificate_chain=args.tls.ca_cert_pem,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return manifests.nlb_annotations(certificate.arn)


def rollout_timeouts(site: TritonSite) -> pulumi.CustomTimeouts:
    """How long ``pulumi up`` waits for the Deployment.

    Its first pods start together, each maybe on a GPU node from zero that pulls the Triton
    image, then within its startup-probe budget downloads and loads the models. An update
    replaces pods one at a time; after the first, each reuses a node that has the image
    (a new repository prefix only changes an argument) and costs its startup budget.
    """
    probe_seconds = manifests.startup_failure_threshold(site) * manifests.STARTUP_PERIOD_SECONDS
    startup = math.ceil(probe_seconds / 60)
    first = GPU_NODE_FROM_ZERO_MINUTES + NGC_IMAGE_PULL_MINUTES + startup
    return pulumi.CustomTimeouts(
        create=f"{first}m", update=f"{first + (site.max_replicas - 1) * startup}m"
    )


def _address(status: Any) -> str:
    """The first ingress hostname (AWS) or IP (GCP); empty until the cloud assigns one."""
    ingress = status and status.load_balancer and status.load_balancer.ingress
    if not ingress:
        return ""
    return ingress[0].hostname or ingress[0].ip or ""
