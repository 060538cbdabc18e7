"""The Helm charts the stack installs on its clusters, pinned in this one table.

Upgrading an add-on is a change here and nowhere else. The release names are fixed, not
auto-named: kube-prometheus-stack selects ServiceMonitors and rules by ``release: <its
release name>`` and names its Prometheus Service after it, and prometheus-adapter and
the Triton objects rely on both.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class HelmChart:
    chart: str
    version: str
    """The chart's version (what Helm pins)."""
    app_version: str
    """What that chart version runs, for the compatibility notes below and the tests."""
    repository: str
    release: str


KUBE_PROMETHEUS_STACK = HelmChart(
    chart="kube-prometheus-stack",
    # Prometheus Operator v0.80.1: the CRD schemas tests/components/schemas/ are pinned from.
    version="69.8.2",
    app_version="v0.80.1",
    repository="https://prometheus-community.github.io/helm-charts",
    release="kube-prometheus-stack",
)
PROMETHEUS_ADAPTER = HelmChart(
    chart="prometheus-adapter",
    version="4.13.0",
    app_version="v0.12.0",
    repository="https://prometheus-community.github.io/helm-charts",
    release="prometheus-adapter",
)
CLUSTER_AUTOSCALER = HelmChart(
    chart="cluster-autoscaler",
    # The autoscaler's minor version must be the cluster's (hybrid:eksVersion, 1.33);
    # 9.51.0 is the last chart that ships 1.33.
    version="9.51.0",
    app_version="1.33.0",
    repository="https://kubernetes.github.io/autoscaler",
    release="cluster-autoscaler",
)
CHARTS = (KUBE_PROMETHEUS_STACK, PROMETHEUS_ADAPTER, CLUSTER_AUTOSCALER)

PROMETHEUS_PORT = 9090
"""kube-prometheus-stack's Prometheus Service port, which prometheus-adapter queries."""
PROMETHEUS_ADAPTER_PORT = 6443
"""The adapter's HTTPS port: the API server calls it for custom.metrics.k8s.io, so a
private GKE control plane needs a firewall rule for it (GKE's own covers 443 and 10250)."""
