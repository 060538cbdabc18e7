"""ClusterAddons under the real program: the pinned charts on each cluster's own provider,
the values that carry the contracts (the HPA's adapter rule, what Prometheus and Grafana
select, the autoscaler's discovery), the autoscaler's scoped IAM, the scale-from-zero tags
of each EKS GPU pool, the order of everything that needs an add-on, and each switch."""

import json
from pathlib import Path

import pytest

from components.addon_charts import (
    CHARTS,
    CLUSTER_AUTOSCALER,
    KUBE_PROMETHEUS_STACK,
    PROMETHEUS_ADAPTER,
)
from components.cluster_addons import (
    CLUSTER_AUTOSCALER_REQUIREMENTS,
    kube_prometheus_stack_requirements,
    prometheus_adapter_requirements,
)
from components.gpu_node_pool import EKS_GPU_LABEL
from components.triton_monitoring import DASHBOARD_LABELS, MONITORING_LABELS, adapter_rule
from hybrid.config import load_stack_config
from hybrid.paths import PROJECT_ROOT
from hybrid.sites import SITES
from infra.offline import MockedResource, StackEvaluation, evaluate_stack
from tests.components.serving_support import STACKS, evaluation, k8s_object, on_site

pytestmark = pytest.mark.usefixtures("rendered_repositories")

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
CASES = [(stack, site) for stack in STACKS for site in SITES]


def releases(ev: StackEvaluation, site: str) -> dict[str, MockedResource]:
    return {r.inputs["chart"]: r for r in on_site(ev, site) if r.type == RELEASE}


def reaches(ev: StackEvaluation, resource: MockedResource, target: MockedResource) -> bool:
    """Whether ``resource`` depends on ``target``, directly or through what it depends on."""
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn == target.urn:
            return True
        if urn not in seen:
            seen.add(urn)
            todo.extend(ev.by_urn(urn).dependencies)
    return False


def cluster_provider(ev: StackEvaluation, site: str) -> str:
    (provider,) = [
        p.urn for p in ev.of_type("pulumi:providers:kubernetes") if p.name.startswith(site)
    ]
    return provider


# --- charts and values ----------------------------------------------------------------


@pytest.mark.parametrize("stack, site", CASES)
def test_each_cluster_installs_the_pinned_charts_on_its_own_provider(stack, site):
    ev = evaluation(stack)
    installed = releases(ev, site)
    expected = {KUBE_PROMETHEUS_STACK, PROMETHEUS_ADAPTER} | (
        {CLUSTER_AUTOSCALER} if site == "public" else set()
    )
    assert set(installed) == {chart.chart for chart in expected}
    for chart in expected:
        release = installed[chart.chart]
        pinned = (chart.release, chart.version, {"repo": chart.repository})
        assert (
            release.inputs["name"],
            release.inputs["version"],
            release.inputs["repositoryOpts"],
        ) == pinned, release.name
        assert release.provider == cluster_provider(ev, site), f"{release.name}: provider"


def test_chart_versions_are_spelled_in_the_table_only():
    table = PROJECT_ROOT / "components" / "addon_charts.py"
    sources = [
        p for folder in ("components", "infra") for p in (PROJECT_ROOT / folder).glob("*.py")
    ]
    for chart in CHARTS:
        spelled = [p.name for p in sources if p != table and f'"{chart.version}"' in p.read_text()]
        assert not spelled, f"{chart.chart} {chart.version} is also pinned in {spelled}"
    assert len({chart.chart for chart in CHARTS}) == len(CHARTS)


def test_the_operator_is_the_release_the_crd_schemas_were_pinned_from():
    for schema in (Path(__file__).parent / "schemas").glob("monitoring.coreos.com_*.json"):
        comment = json.loads(schema.read_text())["$comment"]
        assert f"prometheus-operator {KUBE_PROMETHEUS_STACK.app_version} CRD" in comment, schema


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_autoscaler_minor_is_the_clusters(stack):
    minor = CLUSTER_AUTOSCALER.app_version.rsplit(".", 1)[0]
    assert minor == load_stack_config(stack).public.kubernetes_version


@pytest.mark.parametrize("stack, site", CASES)
def test_the_adapter_serves_the_hpas_metric_from_the_stacks_prometheus(stack, site):
    ev = evaluation(stack)
    namespace = load_stack_config(stack).serving.monitoring_namespace
    adapter = releases(ev, site)[PROMETHEUS_ADAPTER.chart]
    values = adapter.inputs["values"]
    assert values["rules"] == {"default": False, "custom": [adapter_rule()]}
    hpa = k8s_object(ev, site, "HorizontalPodAutoscaler", "triton")
    (metric,) = hpa["spec"]["metrics"]
    assert values["rules"]["custom"][0]["name"]["as"] == metric["pods"]["metric"]["name"]
    prometheus = f"http://{KUBE_PROMETHEUS_STACK.release}-prometheus.{namespace}.svc"
    assert values["prometheus"] == {"url": prometheus, "port": 9090}
    assert adapter.inputs["namespace"] == namespace and adapter.inputs["createNamespace"] is True


@pytest.mark.parametrize("stack, site", CASES)
def test_prometheus_and_grafana_select_the_stacks_monitoring_objects(stack, site):
    ev = evaluation(stack)
    stack_release = releases(ev, site)[KUBE_PROMETHEUS_STACK.chart]
    values = stack_release.inputs["values"]
    spec = values["prometheus"]["prometheusSpec"]
    assert {"release": stack_release.inputs["name"]} == MONITORING_LABELS
    for selector in ("serviceMonitorSelector", "ruleSelector"):
        assert spec[selector] == {"matchLabels": MONITORING_LABELS}, selector
    monitored = [
        r.inputs
        for r in on_site(ev, site)
        if r.type.startswith("kubernetes:monitoring.coreos.com/")
    ]
    assert len(monitored) == 3  # Triton's ServiceMonitor and rules, DCGM's ServiceMonitor
    for manifest in monitored:
        labels = manifest["metadata"]["labels"]
        assert MONITORING_LABELS.items() <= labels.items(), manifest["metadata"]["name"]
    dashboards = values["grafana"]["sidecar"]["dashboards"]
    ((label, value),) = DASHBOARD_LABELS.items()
    assert (dashboards["label"], dashboards["labelValue"]) == (label, value)
    dashboard = k8s_object(ev, site, "ConfigMap", f"triton-{site}-dashboard")
    assert dashboard["metadata"]["labels"][label] == value
    assert dashboard["metadata"]["namespace"] == dashboards["searchNamespace"]
    assert stack_release.inputs["createNamespace"] is True
    assert values["crds"] == {"enabled": True}


@pytest.mark.parametrize("site", SITES)
def test_grafana_gets_a_generated_secret_password(site):
    ev = evaluation("dev")
    stack_release = releases(ev, site)[KUBE_PROMETHEUS_STACK.chart]
    assert "values" in stack_release.secret_inputs
    (password,) = [
        p
        for p in ev.of_type("random:index/randomPassword:RandomPassword")
        if p.name == f"{site}-addons-grafana-admin"
    ]
    assert stack_release.inputs["values"]["grafana"]["adminPassword"] == password.outputs["result"]


# --- the Cluster Autoscaler -------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_autoscaler_discovers_this_cluster_and_has_its_own_role(stack):
    ev = evaluation(stack)
    config = load_stack_config(stack)
    autoscaler = releases(ev, "public")[CLUSTER_AUTOSCALER.chart]
    values = autoscaler.inputs["values"]
    cluster = ev.one("aws:eks/cluster:Cluster", "public-eks")
    assert values["autoDiscovery"] == {"clusterName": cluster.outputs["name"]}
    assert (values["cloudProvider"], values["awsRegion"]) == ("aws", config.public.region)
    assert autoscaler.inputs["namespace"] == "kube-system"
    account = values["rbac"]["serviceAccount"]
    role = ev.one("aws:iam/role:Role", "public-addons-cluster-autoscaler")
    assert account["annotations"] == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    (statement,) = trust
    subjects = statement["Condition"]["StringEquals"]
    assert f"system:serviceaccount:kube-system:{account['name']}" in subjects.values()
    assert values["fullnameOverride"] == account["name"] == CLUSTER_AUTOSCALER.release
    assert values["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_autoscaler_may_resize_only_groups_this_cluster_owns(stack):
    ev = evaluation(stack)
    cluster_name = ev.one("aws:eks/cluster:Cluster", "public-eks").outputs["name"]
    policy = ev.one("aws:iam/rolePolicy:RolePolicy", "public-addons-cluster-autoscaler")
    role = ev.one("aws:iam/role:Role", "public-addons-cluster-autoscaler")
    assert policy.inputs["role"] == role.id
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    reads = statements["DescribeScalingGroups"]
    assert reads["Resource"] == "*" and "Condition" not in reads
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in reads["Action"])
    assert {a.split(":")[0] for a in reads["Action"]} == {"autoscaling", "ec2"}
    node_groups = statements["DescribeOwnNodeGroups"]
    assert node_groups["Action"] == ["eks:DescribeNodegroup"]
    (node_group_arn,) = node_groups["Resource"]
    assert node_group_arn.endswith(f":nodegroup/{cluster_name}/*/*")
    scaling = statements["ScaleOwnGroups"]
    assert sorted(scaling["Action"]) == [
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    assert scaling["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}
    }
    (groups,) = scaling["Resource"]
    assert groups.startswith("arn:aws:autoscaling:") and ":autoScalingGroup:" in groups
    assert set(statements) == {"DescribeScalingGroups", "DescribeOwnNodeGroups", "ScaleOwnGroups"}


@pytest.mark.parametrize("stack", STACKS)
def test_each_eks_gpu_pool_tells_the_autoscaler_its_labels_taint_and_gpus(stack):
    ev = evaluation(stack)
    config = load_stack_config(stack)
    autoscaler = releases(ev, "public")[CLUSTER_AUTOSCALER.chart]
    tags = ev.of_type("aws:autoscaling/tag:Tag")
    for pool in config.public.gpu_pools:
        group = ev.one("aws:eks/nodeGroup:NodeGroup", f"public-{pool.name}-nodes")
        asg = group.outputs["resources"][0]["autoscalingGroups"][0]["name"]
        mine = [t for t in tags if t.inputs["autoscalingGroupName"] == asg]
        template = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in mine}
        labels = group.inputs["labels"]
        assert labels[EKS_GPU_LABEL] == pool.gpu.name
        (taint,) = group.inputs["taints"]
        effect = {"NO_SCHEDULE": "NoSchedule"}[taint["effect"]]
        assert template == {
            **{f"{NODE_TEMPLATE}/label/{key}": value for key, value in labels.items()},
            f"{NODE_TEMPLATE}/taint/{taint['key']}": f"{taint['value']}:{effect}",
            f"{NODE_TEMPLATE}/resources/nvidia.com/gpu": str(pool.gpus_per_node),
        }, group.name
        assert all(t.inputs["tag"]["propagateAtLaunch"] is False for t in mine)
        # The autoscaler starts once it can read what a node from zero would look like.
        assert all(reaches(ev, autoscaler, tag) for tag in mine), pool.name


@pytest.mark.parametrize("stack", STACKS)
def test_gke_pools_scale_by_themselves(stack):
    ev = evaluation(stack)
    for pool in load_stack_config(stack).private.gpu_pools:
        node_pool = ev.one("gcp:container/nodePool:NodePool", f"private-{pool.name}-nodes")
        autoscaling = node_pool.inputs["autoscaling"]
        assert (autoscaling["totalMinNodeCount"], autoscaling["totalMaxNodeCount"]) == (
            pool.min_size,
            pool.max_size,
        )
    assert CLUSTER_AUTOSCALER.chart not in releases(ev, "private")


# --- what waits for which release -----------------------------------------------------------


@pytest.mark.parametrize("stack, site", CASES)
def test_prometheus_operator_objects_wait_for_the_release_serving_their_crds(stack, site):
    ev = evaluation(stack)
    operator = releases(ev, site)[KUBE_PROMETHEUS_STACK.chart]
    namespace = load_stack_config(stack).serving.monitoring_namespace
    waiting = [
        r
        for r in on_site(ev, site)
        if r.type.startswith("kubernetes:monitoring.coreos.com/")
        or (r.type.startswith("kubernetes:") and _namespace(r) == namespace)
    ]
    assert {r.type.rsplit(":", 1)[1] for r in waiting} == {
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",  # the dashboard, in the namespace the release creates
        "Release",  # prometheus-adapter, which queries its Prometheus
    }
    for resource in waiting:
        assert resource is operator or reaches(ev, resource, operator), resource.name
        assert resource.provider == operator.provider, resource.name


def _namespace(resource: MockedResource) -> str | None:
    return resource.inputs.get("namespace") or resource.inputs.get("metadata", {}).get("namespace")


@pytest.mark.parametrize("stack, site", CASES)
def test_the_hpa_waits_for_the_adapter(stack, site):
    ev = evaluation(stack)
    adapter = releases(ev, site)[PROMETHEUS_ADAPTER.chart]
    (hpa,) = [r for r in on_site(ev, site) if r.type.endswith(":HorizontalPodAutoscaler")]
    assert reaches(ev, hpa, adapter) and hpa.provider == adapter.provider


def test_gpu_workloads_on_eks_wait_for_the_autoscaler():
    ev = evaluation("prod")  # its a10g-spot pool starts at zero nodes
    assert any(p.desired_size == 0 for p in load_stack_config("prod").public.gpu_pools)
    autoscaler = releases(ev, "public")[CLUSTER_AUTOSCALER.chart]
    workloads = [
        r
        for r in on_site(ev, "public")
        if r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
    ]
    assert len(workloads) == 3  # Triton and the sm86 and sm89 plan builds
    for workload in workloads:
        assert reaches(ev, workload, autoscaler), workload.name


# --- switches ----------------------------------------------------------------------------------

SWITCHES = {
    "hybrid:installKubePrometheusStack": (
        KUBE_PROMETHEUS_STACK,
        kube_prometheus_stack_requirements("monitoring", adapter=True),
        SITES,
    ),
    "hybrid:installPrometheusAdapter": (
        PROMETHEUS_ADAPTER,
        prometheus_adapter_requirements(),
        SITES,
    ),
    "hybrid:installClusterAutoscaler": (
        CLUSTER_AUTOSCALER,
        CLUSTER_AUTOSCALER_REQUIREMENTS,
        ("public",),
    ),
}


@pytest.mark.parametrize("key", SWITCHES)
def test_a_switched_off_addon_is_not_installed_nor_waited_for_and_says_what_must_exist(key):
    chart, requirements, sites = SWITCHES[key]
    ev = evaluate_stack("dev", config_overrides={key: False})
    assert sorted(ev.warnings) == sorted(f"{site}-addons: {requirements}" for site in sites)
    for site in SITES:
        left = set(releases(ev, site))
        assert chart.chart not in left
        assert left == set(releases(evaluation("dev"), site)) - {chart.chart}
    urns = {r.urn for r in ev.resources}
    dangling = {r.name: d for r in ev.resources for d in r.dependencies if d not in urns}
    assert not dangling


def test_the_monitoring_stack_off_leaves_the_adapter_its_own_namespace():
    ev = evaluate_stack("dev", config_overrides={"hybrid:installKubePrometheusStack": False})
    for site in SITES:
        adapter = releases(ev, site)[PROMETHEUS_ADAPTER.chart]
        assert adapter.inputs["createNamespace"] is True
        assert not [d for d in adapter.dependencies if ev.by_urn(d).type == RELEASE]
