"""The cluster add-ons the stack's own objects need, installed by the stack on each cluster.

The same ``pulumi up`` creates the clusters, so nobody can install these in between:

- kube-prometheus-stack: the Prometheus Operator and its CRDs (Triton's and DCGM's
  ServiceMonitors and PrometheusRule are custom resources), the monitoring namespace,
  Prometheus, Grafana and kube-state-metrics;
- prometheus-adapter, serving the HPA's queue-time-per-request metric;
- on EKS, the Cluster Autoscaler: managed node groups do not scale by themselves, so
  without it the HPA's extra replicas and a TensorRT Job on a pool at zero stay Pending.

The node autoscaler is the Cluster Autoscaler, not Karpenter: the GPU pools are managed
node groups, each one instance type with its labels, taint and min/max, and the Cluster
Autoscaler scales exactly those, finding them by the tags EKS puts on their Auto Scaling
groups. Karpenter would launch instances itself from NodePools of its own (more IAM: EC2
fleet and instance profiles, an interruption queue), and the pools' sizes that the config
and the cost policy reason about would stop meaning anything. GKE's node pools scale
through their own ``autoscaling`` block.

Every release is a ``helm.v3.Release`` (a custom resource: the mocks see chart, version
and values); the versions are in ``addon_charts``. Each add-on can be switched off for a
cluster that already runs one: a warning then says what the cluster must provide, and
nothing waits for a release that is not there.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.addon_charts import (
    CLUSTER_AUTOSCALER,
    KUBE_PROMETHEUS_STACK,
    PROMETHEUS_ADAPTER,
    PROMETHEUS_ADAPTER_PORT,
    PROMETHEUS_PORT,
    HelmChart,
)
from components.aws_policies import AwsAccount, aws_account, irsa_trust_policy
from components.private_cluster import PrivateCluster
from components.public_cluster import PublicCluster
from components.triton_monitoring import (
    DASHBOARD_LABELS,
    MONITORING_LABELS,
    QUEUE_METRIC,
    adapter_rule,
)
from hybrid.aws_unscoped_actions import CLUSTER_AUTOSCALER_READS
from hybrid.triton import NAMESPACE as TRITON_NAMESPACE

AUTOSCALER_NAMESPACE = "kube-system"
RELEASE_TIMEOUT_SECONDS = 600
"""Helm waits for every object of a release; kube-prometheus-stack pulls several images
and runs its webhook-certificate Jobs first."""


@dataclass(frozen=True)
class AddonReleases:
    """What objects needing an add-on wait for: its release, or nothing where the cluster
    brings its own."""

    prometheus_operator: tuple[pulumi.Resource, ...] = ()
    """Serves monitoring.coreos.com/v1 and creates the monitoring namespace."""
    custom_metrics: tuple[pulumi.Resource, ...] = ()
    """Serves the HPA's pods metric."""
    node_autoscaler: tuple[pulumi.Resource, ...] = ()
    """Adds the GPU nodes Pending pods wait for (EKS)."""


@dataclass(frozen=True)
class MonitoringAddons:
    """The monitoring add-ons both clouds get, each switchable for a cluster with its own."""

    namespace: str
    kube_prometheus_stack: bool = True
    prometheus_adapter: bool = True


TYPE = "hybrid:cluster_addons:ClusterAddons"
"""The concept's token, shared by both clouds' classes (see ``components/__init__.py``)."""


@dataclass(frozen=True)
class GcpClusterAddonsArgs:
    cluster: PrivateCluster
    monitoring: MonitoringAddons


class GcpClusterAddons(pulumi.ComponentResource):
    """The monitoring add-ons on GKE, whose node pools autoscale by themselves."""

    releases: AddonReleases

    def __init__(
        self, name: str, args: GcpClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.cluster.provider)
        prometheus, custom_metrics = monitoring_releases(self, name, args.monitoring, on_cluster)
        self.releases = AddonReleases(prometheus, custom_metrics)
        self.register_outputs(
            {"releases": [chart.name for chart in (*prometheus, *custom_metrics)]}
        )


@dataclass(frozen=True)
class AwsClusterAddonsArgs:
    cluster: PublicCluster
    monitoring: MonitoringAddons
    cluster_autoscaler: bool = True
    """Managed node groups do not scale by themselves; off for a cluster that runs its own."""
    node_pools: Sequence[pulumi.Resource] = ()
    """The GPU pools: the autoscaler starts once their node-template tags exist."""


class AwsClusterAddons(pulumi.ComponentResource):
    """The monitoring add-ons and the Cluster Autoscaler on EKS."""

    releases: AddonReleases

    def __init__(
        self, name: str, args: AwsClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.cluster.provider)
        prometheus, custom_metrics = monitoring_releases(self, name, args.monitoring, on_cluster)
        node_autoscaler: tuple[k8s.helm.v3.Release, ...] = ()
        if args.cluster_autoscaler:
            node_autoscaler = (
                self._cluster_autoscaler(name, args.cluster, args.node_pools, on_cluster),
            )
        else:
            missing(self, name, CLUSTER_AUTOSCALER_REQUIREMENTS)
        self.releases = AddonReleases(prometheus, custom_metrics, node_autoscaler)
        installed = (*prometheus, *custom_metrics, *node_autoscaler)
        self.register_outputs({"releases": [chart.name for chart in installed]})

    def _cluster_autoscaler(
        self,
        name: str,
        cluster: PublicCluster,
        node_pools: Sequence[pulumi.Resource],
        on_cluster: pulumi.ResourceOptions,
    ) -> k8s.helm.v3.Release:
        """The autoscaler with its own IRSA role, allowed to resize only this cluster's groups."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-cluster-autoscaler",
            assume_role_policy=irsa_trust_policy(
                cluster.oidc_provider_arn,
                cluster.oidc_issuer,
                AUTOSCALER_NAMESPACE,
                CLUSTER_AUTOSCALER.release,
            ),
            opts=child,
        )
        account = aws_account(self)
        policy = aws.iam.RolePolicy(
            f"{name}-cluster-autoscaler",
            role=role.id,
            policy=pulumi.Output.all(account, cluster.name).apply(
                lambda values: json.dumps(cluster_autoscaler_policy(values[0], values[1]))
            ),
            opts=child,
        )
        values = cluster_autoscaler_values(
            cluster.name, account.apply(lambda a: a.region), role.arn
        )
        return release(
            name,
            CLUSTER_AUTOSCALER,
            AUTOSCALER_NAMESPACE,
            values,
            depending(on_cluster, (policy, *node_pools)),
            create_namespace=False,  # kube-system always exists
        )


def monitoring_releases(
    parent: pulumi.Resource,
    name: str,
    monitoring: MonitoringAddons,
    on_cluster: pulumi.ResourceOptions,
) -> tuple[tuple[k8s.helm.v3.Release, ...], tuple[k8s.helm.v3.Release, ...]]:
    """kube-prometheus-stack and prometheus-adapter, or a warning naming what the cluster
    must provide instead of each one switched off."""
    namespace = monitoring.namespace
    prometheus: tuple[k8s.helm.v3.Release, ...] = ()
    if monitoring.kube_prometheus_stack:
        grafana_admin = random.RandomPassword(
            f"{name}-grafana-admin",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        values = kube_prometheus_stack_values(namespace, grafana_admin.result)
        prometheus = (release(name, KUBE_PROMETHEUS_STACK, namespace, values, on_cluster),)
    else:
        missing(
            parent,
            name,
            kube_prometheus_stack_requirements(namespace, monitoring.prometheus_adapter),
        )

    custom_metrics: tuple[k8s.helm.v3.Release, ...] = ()
    if monitoring.prometheus_adapter:
        # It queries kube-prometheus-stack's Prometheus.
        after = depending(on_cluster, prometheus)
        adapter = prometheus_adapter_values(namespace)
        custom_metrics = (release(name, PROMETHEUS_ADAPTER, namespace, adapter, after),)
    else:
        missing(parent, name, prometheus_adapter_requirements())
    return prometheus, custom_metrics


def missing(parent: pulumi.Resource, name: str, requirements: str) -> None:
    """Warn what the cluster must provide for an add-on the stack does not install."""
    pulumi.log.warn(f"{name}: {requirements}", resource=parent)


def release(
    name: str,
    chart: HelmChart,
    namespace: str,
    values: Mapping[str, object],
    opts: pulumi.ResourceOptions,
    create_namespace: bool = True,
) -> k8s.helm.v3.Release:
    """A pinned chart under its fixed release name. Both monitoring releases may create
    their namespace (Helm leaves an existing one alone), so the adapter needs no other."""
    return k8s.helm.v3.Release(
        f"{name}-{chart.chart}",
        name=chart.release,
        chart=chart.chart,
        version=chart.version,
        repository_opts={"repo": chart.repository},
        namespace=namespace,
        create_namespace=create_namespace,
        values=values,
        timeout=RELEASE_TIMEOUT_SECONDS,
        opts=opts,
    )


def depending(
    opts: pulumi.ResourceOptions, resources: Sequence[pulumi.Resource]
) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(resources)))


# --- chart values (pure) ------------------------------------------------------


class Enabled(TypedDict):
    enabled: bool


class LabelSelector(TypedDict):
    matchLabels: dict[str, str]


class PrometheusSpec(TypedDict):
    serviceMonitorSelector: LabelSelector
    ruleSelector: LabelSelector
    serviceMonitorNamespaceSelector: dict[str, str]
    ruleNamespaceSelector: dict[str, str]


class PrometheusValues(TypedDict):
    prometheusSpec: PrometheusSpec


class DashboardSidecar(TypedDict):
    enabled: bool
    label: str
    labelValue: str
    searchNamespace: str


class GrafanaSidecar(TypedDict):
    dashboards: DashboardSidecar


class GrafanaValues(TypedDict):
    adminPassword: pulumi.Input[str]
    sidecar: GrafanaSidecar


class KubePrometheusStackValues(TypedDict):
    crds: Enabled
    prometheus: PrometheusValues
    grafana: GrafanaValues
    kubeControllerManager: Enabled
    kubeScheduler: Enabled
    kubeEtcd: Enabled
    kubeProxy: Enabled


def kube_prometheus_stack_values(
    namespace: str, grafana_password: pulumi.Input[str]
) -> KubePrometheusStackValues:
    """Prometheus selects exactly MONITORING_LABELS in every namespace, Grafana's sidecar
    loads ConfigMaps with DASHBOARD_LABELS, and nothing scrapes the control plane."""
    ((label, label_value),) = DASHBOARD_LABELS.items()
    selector: LabelSelector = {"matchLabels": dict(MONITORING_LABELS)}
    off: Enabled = {"enabled": False}
    return {
        "crds": {"enabled": True},
        "prometheus": {
            "prometheusSpec": {
                "serviceMonitorSelector": selector,
                "ruleSelector": selector,
                # Empty: every namespace (Triton's and the exporter's are not this one).
                "serviceMonitorNamespaceSelector": {},
                "ruleNamespaceSelector": {},
            }
        },
        "grafana": {
            # The chart's default is a published password.
            "adminPassword": pulumi.Output.secret(grafana_password),
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": label,
                    "labelValue": label_value,
                    "searchNamespace": namespace,
                }
            },
        },
        # EKS and GKE run these out of reach; kube-proxy listens on the node's loopback
        # only (and GKE's Dataplane V2 has none). Scraping them would only raise alerts.
        "kubeControllerManager": off,
        "kubeScheduler": off,
        "kubeEtcd": off,
        "kubeProxy": off,
    }


class PrometheusEndpoint(TypedDict):
    url: str
    port: int


class AdapterRules(TypedDict):
    default: bool
    custom: list[dict[str, Any]]


class PrometheusAdapterValues(TypedDict):
    prometheus: PrometheusEndpoint
    rules: AdapterRules
    listenPort: int


def prometheus_adapter_values(namespace: str) -> PrometheusAdapterValues:
    """Only Triton's rule: the chart's default rules would serve metrics nothing uses."""
    return {
        "prometheus": {"url": prometheus_url(namespace), "port": PROMETHEUS_PORT},
        "rules": {"default": False, "custom": [adapter_rule()]},
        "listenPort": PROMETHEUS_ADAPTER_PORT,
    }


def prometheus_url(namespace: str) -> str:
    """kube-prometheus-stack names its Prometheus Service ``<release>-prometheus``."""
    return f"http://{KUBE_PROMETHEUS_STACK.release}-prometheus.{namespace}.svc"


class AutoDiscovery(TypedDict):
    clusterName: pulumi.Input[str]


class ServiceAccount(TypedDict):
    create: bool
    name: str
    annotations: dict[str, pulumi.Input[str]]


class Rbac(TypedDict):
    serviceAccount: ServiceAccount


class ClusterAutoscalerValues(TypedDict):
    cloudProvider: str
    awsRegion: pulumi.Input[str]
    autoDiscovery: AutoDiscovery
    fullnameOverride: str
    rbac: Rbac
    extraArgs: dict[str, str | bool]
    securityContext: dict[str, Any]
    containerSecurityContext: dict[str, Any]
    resources: dict[str, dict[str, str]]


def cluster_autoscaler_values(
    cluster_name: pulumi.Input[str], region: pulumi.Input[str], role_arn: pulumi.Input[str]
) -> ClusterAutoscalerValues:
    """Auto-discovery of the cluster's node groups by the tags EKS gives their ASGs
    (``k8s.io/cluster-autoscaler/enabled`` and ``.../<cluster>``, the chart's default);
    the security contexts are upstream's example manifest's."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "fullnameOverride": CLUSTER_AUTOSCALER.release,
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": CLUSTER_AUTOSCALER.release,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "extraArgs": {
            # Add the node that wastes least of what the pending pods asked for.
            "expander": "least-waste",
            # Triton's emptyDirs are caches: they must not keep an idle GPU node alive.
            "skip-nodes-with-local-storage": False,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "fsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "600Mi"},
            "limits": {"memory": "600Mi"},
        },
    }


"""What the autoscaler reads to know the groups and their instance types (upstream's
"Full Cluster Autoscaler Features Policy"); AWS authorizes these only on ``*``."""
SCALING_ACTIONS = (
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
)


def cluster_autoscaler_policy(account: AwsAccount, cluster_name: str) -> dict[str, Any]:
    """Reads everywhere, describes this cluster's node groups, and resizes only the Auto
    Scaling groups EKS tagged as owned by this cluster."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DescribeScalingGroups",
                "Effect": "Allow",
                "Action": list(CLUSTER_AUTOSCALER_READS),
                "Resource": "*",
            },
            {
                # Labels and taints of a managed node group at zero nodes.
                "Sid": "DescribeOwnNodeGroups",
                "Effect": "Allow",
                "Action": ["eks:DescribeNodegroup"],
                "Resource": [account.arn("eks", f"nodegroup/{cluster_name}/*/*")],
            },
            {
                "Sid": "ScaleOwnGroups",
                "Effect": "Allow",
                "Action": list(SCALING_ACTIONS),
                "Resource": [
                    account.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*")
                ],
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                    }
                },
            },
        ],
    }


# --- what a cluster must provide when an add-on is off ---------------------------


def kube_prometheus_stack_requirements(namespace: str, adapter: bool) -> str:
    """``adapter``: whether the stack's prometheus-adapter will query that Prometheus."""
    ((label, value),) = MONITORING_LABELS.items()
    ((dashboard_label, dashboard_value),) = DASHBOARD_LABELS.items()
    service = (
        f" as the Service {prometheus_url(namespace)}:{PROMETHEUS_PORT} (prometheus-adapter "
        "queries it)"
        if adapter
        else ""
    )
    return (
        "kube-prometheus-stack is off: the cluster must already serve monitoring.coreos.com/v1 "
        f"ServiceMonitor and PrometheusRule, have the namespace '{namespace}', run Prometheus "
        f"selecting ServiceMonitors and PrometheusRules labelled {label}={value} in every "
        f"namespace{service}, run kube-state-metrics, and run Grafana loading dashboards from "
        f"ConfigMaps labelled {dashboard_label}={dashboard_value} in '{namespace}'"
    )


def prometheus_adapter_requirements() -> str:
    return (
        "prometheus-adapter is off: the cluster must already serve custom.metrics.k8s.io/v1beta1 "
        f"with the pods metric {QUEUE_METRIC} for namespace '{TRITON_NAMESPACE}' (the rule is "
        "components.triton_monitoring.adapter_rule), or Triton's HPA cannot scale"
    )


CLUSTER_AUTOSCALER_REQUIREMENTS = (
    "the Cluster Autoscaler is off: the cluster must already run a node autoscaler that "
    "scales its GPU node groups, from zero nodes too, or pods beyond the current nodes (the "
    "HPA's extra replicas, a TensorRT Job on a pool at zero) stay Pending"
)
