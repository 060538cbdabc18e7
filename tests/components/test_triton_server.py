"""TritonServer under the real program, per site: the Deployment, its exposure, autoscaling,
disruption budget, network policy and monitoring objects, checked against the stack config
and the placement rather than counted."""

import json
import math

import pytest

from components import triton_manifests as m
from components.triton_monitoring import QUEUE_METRIC
from components.triton_server import GPU_NODE_FROM_ZERO_MINUTES, NGC_IMAGE_PULL_MINUTES
from hybrid.config import load_stack_config
from hybrid.sites import SITES
from modelkit.placement import site_models
from tests.components.serving_support import (
    STACKS,
    container,
    evaluation,
    flag_values,
    k8s_object,
    kubernetes_objects,
    on_site,
    site_manifest,
)

pytestmark = pytest.mark.usefixtures("rendered_repositories")

CASES = [(stack, site) for stack in STACKS for site in SITES]


def pod_spec(stack: str, site: str) -> dict:
    return k8s_object(evaluation(stack), site, "Deployment", "triton")["spec"]["template"]["spec"]


@pytest.mark.parametrize("stack, site", CASES)
def test_triton_loads_exactly_the_models_placed_on_the_site(stack, site):
    args = container(evaluation(stack), site)["args"]
    config = load_stack_config(stack)
    assert flag_values(args, "load-model") == sorted(site_models(config, site))
    assert flag_values(args, "model-control-mode") == ["explicit"]
    assert flag_values(args, "strict-model-config") == ["true"]
    assert flag_values(args, "metrics-port") == ["8002"]


@pytest.mark.parametrize("stack, site", CASES)
def test_image_is_the_pinned_release_from_config(stack, site):
    image = container(evaluation(stack), site)["image"]
    tag = load_stack_config(stack).serving.triton_image_tag
    assert image == f"nvcr.io/nvidia/tritonserver:{tag}-py3"


@pytest.mark.parametrize("stack, site", CASES)
def test_repository_download_goes_to_an_empty_dir_and_s3_knows_its_region(stack, site):
    triton = container(evaluation(stack), site)
    env = {e["name"]: e["value"] for e in triton["env"]}
    mount_env = "TRITON_AWS_MOUNT_DIRECTORY" if site == "public" else "TRITON_GCS_MOUNT_DIRECTORY"
    mounts = {v["mountPath"]: v["name"] for v in triton["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(stack, site)["volumes"]}
    assert "emptyDir" in volumes[mounts[env[mount_env]]]
    if site == "public":
        assert env["AWS_DEFAULT_REGION"] == load_stack_config(stack).public.region
    else:
        assert "AWS_DEFAULT_REGION" not in env


@pytest.mark.parametrize("stack, site", CASES)
def test_pods_need_a_gpu_of_the_sites_pools_and_spread_over_zones(stack, site):
    spec = pod_spec(stack, site)
    resources = container(evaluation(stack), site)["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == "1"
    assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    (expression,) = term["matchExpressions"]
    gpus = {gpu.name for gpu in load_stack_config(stack).gpu_types_on(site)}
    assert expression == {
        "key": "hybrid.dev/accelerator",
        "operator": "In",
        "values": sorted(gpus, key=list(gpus).index),
    } or (expression["key"] == "hybrid.dev/accelerator" and set(expression["values"]) == gpus)
    zones = [
        c
        for c in spec["topologySpreadConstraints"]
        if c["topologyKey"] == "topology.kubernetes.io/zone"
    ]
    assert zones and zones[0]["labelSelector"]["matchLabels"] == _deployment_selector(stack, site)


@pytest.mark.parametrize("stack, site", CASES)
def test_probes_and_startup_budget_follow_the_repository_size(stack, site):
    triton = container(evaluation(stack), site)
    config = load_stack_config(stack)
    size = sum(entry.size for entry in site_manifest(stack, site).files.values())
    startup = triton["startupProbe"]
    budget = m.STARTUP_BASE_SECONDS + math.ceil(
        size / (1 << 30) * config.serving.startup_seconds_per_gib
    )
    assert startup["failureThreshold"] * startup["periodSeconds"] >= budget
    assert startup["failureThreshold"] == math.ceil(budget / startup["periodSeconds"])
    assert startup["httpGet"]["path"] == "/v2/health/ready"
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


@pytest.mark.parametrize("stack, site", CASES)
def test_pulumi_waits_for_a_rollout_that_needs_gpu_nodes_from_zero(stack, site):
    ev = evaluation(stack)
    startup = container(ev, site)["startupProbe"]
    startup_minutes = math.ceil(startup["failureThreshold"] * startup["periodSeconds"] / 60)
    (deployment,) = [r for r in on_site(ev, site) if r.type == "kubernetes:apps/v1:Deployment"]
    create, update = (int(deployment.timeouts[k].removesuffix("m")) for k in ("create", "update"))
    # A GPU node from zero, the Triton image, then the models within the startup budget ...
    first = GPU_NODE_FROM_ZERO_MINUTES + NGC_IMAGE_PULL_MINUTES + startup_minutes
    assert create == first >= 40
    # ... and one more startup for each further pod an update replaces.
    assert update == first + (load_stack_config(stack).serving.max_replicas - 1) * startup_minutes


@pytest.mark.parametrize("stack, site", CASES)
def test_pods_are_hardened(stack, site):
    spec = pod_spec(stack, site)
    security = container(evaluation(stack), site)["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")["emptyDir"]
    assert shm["medium"] == "Memory" and shm["sizeLimit"]
    namespace = k8s_object(evaluation(stack), site, "Namespace", m.NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("stack, site", CASES)
def test_grpc_tls_comes_from_the_serving_pki_and_is_mutual_on_the_private_site(stack, site):
    ev = evaluation(stack)
    args = container(ev, site)["args"]
    secret = k8s_object(ev, site, "Secret", m.TLS_SECRET)
    assert secret["type"] == "kubernetes.io/tls"
    (tls_secret,) = [r for r in on_site(ev, site) if r.name == f"{site}-triton-grpc-tls"]
    assert "stringData" in tls_secret.secret_inputs, "the TLS key must be a secret"
    certificates = {r.name: r for r in ev.of_type("tls:index/locallySignedCert:LocallySignedCert")}
    served = secret["stringData"]["tls.crt"]
    assert any(c.outputs.get("certPem") == served for c in certificates.values())
    (ca,) = [r for r in ev.of_type("tls:index/selfSignedCert:SelfSignedCert")]
    assert secret["stringData"]["ca.crt"] == ca.outputs["certPem"]
    mutual = flag_values(args, "grpc-use-ssl-mutual")
    assert mutual == (["true"] if site == "private" else [])
    assert flag_values(args, "grpc-use-ssl") == ([] if site == "private" else ["true"])
    assert flag_values(args, "grpc-server-cert") == [f"{m.TLS_DIR}/tls.crt"]
    spec = pod_spec(stack, site)
    tls_volume = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == m.TLS_SECRET


@pytest.mark.parametrize("stack, site", CASES)
def test_termination_grace_covers_the_drain(stack, site):
    spec = pod_spec(stack, site)
    args = container(evaluation(stack), site)["args"]
    (exit_timeout,) = flag_values(args, "exit-timeout-secs")
    pre_stop = int(container(evaluation(stack), site)["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > pre_stop + int(exit_timeout)


@pytest.mark.parametrize("stack, site", CASES)
def test_metrics_are_only_on_a_cluster_ip_service(stack, site):
    ev = evaluation(stack)
    services = [o for o in kubernetes_objects(ev, site) if o["kind"] == "Service"]
    for service in services:
        ports = {p["port"] for p in service["spec"]["ports"]}
        targets = {p["targetPort"] for p in service["spec"]["ports"]}
        if service["spec"]["type"] == "LoadBalancer":
            assert 8002 not in ports and "metrics" not in targets, service["metadata"]["name"]
    metrics = k8s_object(ev, site, "Service", "triton-metrics")
    assert metrics["spec"]["type"] == "ClusterIP"
    assert [p["port"] for p in metrics["spec"]["ports"]] == [8002]


@pytest.mark.parametrize("stack", STACKS)
def test_public_load_balancer_is_an_nlb_with_tls_and_the_configured_sources(stack):
    ev = evaluation(stack)
    service = k8s_object(ev, "public", "Service", "triton")
    annotations = service["metadata"]["annotations"]
    prefix = "service.beta.kubernetes.io/aws-load-balancer"
    assert annotations[f"{prefix}-type"] == "nlb"
    (certificate,) = ev.of_type("aws:acm/certificate:Certificate")
    assert annotations[f"{prefix}-ssl-cert"] == certificate.outputs["arn"]
    assert annotations[f"{prefix}-ssl-ports"] == "https"
    assert service["spec"]["loadBalancerSourceRanges"] == list(
        load_stack_config(stack).serving.source_ranges
    )
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"https": (443, "http"), "grpc": (8001, "grpc")}


@pytest.mark.parametrize("stack", STACKS)
def test_private_load_balancer_is_internal_and_admits_only_the_aws_vpc(stack):
    service = k8s_object(evaluation(stack), "private", "Service", "triton")
    assert service["metadata"]["annotations"] == {
        "networking.gke.io/load-balancer-type": "Internal"
    }
    assert service["spec"]["loadBalancerSourceRanges"] == [load_stack_config(stack).public.vpc_cidr]
    # HTTP cannot do mutual TLS, so only gRPC is exposed.
    assert [p["name"] for p in service["spec"]["ports"]] == ["grpc"]


@pytest.mark.parametrize("stack, site", CASES)
def test_hpa_scales_on_queue_time_per_request(stack, site):
    ev = evaluation(stack)
    serving = load_stack_config(stack).serving
    hpa = k8s_object(ev, site, "HorizontalPodAutoscaler", "triton")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "triton",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        serving.min_replicas,
        serving.max_replicas,
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == QUEUE_METRIC
    assert 0 < int(metric["pods"]["target"]["averageValue"]) < serving.queue_slo_ms * 1000
    assert {"scaleUp", "scaleDown"} <= set(hpa["spec"]["behavior"])

    (adapter,) = [r for r in on_site(ev, site) if r.inputs.get("chart") == "prometheus-adapter"]
    (rule,) = adapter.inputs["values"]["rules"]["custom"]
    assert rule["name"]["as"] == QUEUE_METRIC
    numerator, denominator = rule["metricsQuery"].split(" / ", 1)
    assert "rate(nv_inference_queue_duration_us{" in numerator
    assert "rate(nv_inference_request_success{" in denominator
    assert "nv_inference_queue_duration_us" not in denominator


@pytest.mark.parametrize("stack, site", CASES)
def test_disruption_budget_keeps_all_but_one_pod(stack, site):
    pdb = k8s_object(evaluation(stack), site, "PodDisruptionBudget", "triton")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == _deployment_selector(stack, site)


@pytest.mark.parametrize("stack, site", CASES)
def test_network_policy_denies_by_default_and_admits_serving_and_scrapes_only(stack, site):
    ev = evaluation(stack)
    config = load_stack_config(stack)
    deny = k8s_object(ev, site, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    allow = k8s_object(ev, site, "NetworkPolicy", "triton-ingress")
    assert allow["spec"]["podSelector"]["matchLabels"] == _deployment_selector(stack, site)
    serving, scrapes = allow["spec"]["ingress"]
    sources = config.serving.source_ranges if site == "public" else (config.public.vpc_cidr,)
    assert [peer["ipBlock"]["cidr"] for peer in serving["from"]] == list(sources)
    assert {p["port"] for p in serving["ports"]} == (
        {"http", "grpc"} if site == "public" else {"grpc"}
    )
    assert scrapes["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": config.serving.monitoring_namespace}
            }
        }
    ]
    assert [p["port"] for p in scrapes["ports"]] == ["metrics"]


@pytest.mark.parametrize("stack, site", CASES)
def test_service_monitor_scrapes_the_metrics_service(stack, site):
    ev = evaluation(stack)
    monitor = k8s_object(ev, site, "ServiceMonitor", "triton")
    metrics = k8s_object(ev, site, "Service", "triton-metrics")
    labels = metrics["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    port_names = {p["name"] for p in metrics["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names


@pytest.mark.parametrize("stack, site", CASES)
def test_alerts_cover_readiness_queue_slo_failures_and_gpu_memory(stack, site):
    ev = evaluation(stack)
    config = load_stack_config(stack)
    rule = k8s_object(ev, site, "PrometheusRule", "triton")
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    by_name: dict[str, list[dict]] = {}
    for alert in alerts:
        by_name.setdefault(alert["alert"], []).append(alert)
    assert {a["labels"]["model"] for a in by_name["TritonModelNotReady"]} == set(
        site_models(config, site)
    )
    (queue,) = by_name["TritonQueueTimeAboveSlo"]
    assert "rate(nv_inference_queue_duration_us" in queue["expr"]
    assert "rate(nv_inference_request_success" in queue["expr"]
    assert queue["expr"].endswith(f"> {config.serving.queue_slo_ms * 1000}")
    (failures,) = by_name["TritonInferenceFailureRatio"]
    assert "nv_inference_request_failure" in failures["expr"]
    (gpu,) = by_name["GpuMemoryAbove90Percent"]
    assert "DCGM_FI_DEV_FB_USED" in gpu["expr"] and gpu["expr"].endswith("> 0.9")


@pytest.mark.parametrize("stack, site", CASES)
def test_dashboard_shows_triton_and_dcgm_panels(stack, site):
    ev = evaluation(stack)
    config_map = k8s_object(ev, site, "ConfigMap", f"triton-{site}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (body,) = config_map["data"].values()
    dashboard = json.loads(body)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert any("nv_inference_queue_duration_us" in e for e in exprs)
    assert any("DCGM_FI_DEV_GPU_UTIL" in e for e in exprs)
    assert any("DCGM_FI_DEV_FB_USED" in e for e in exprs)


@pytest.mark.parametrize("stack", STACKS)
def test_each_site_uses_its_own_cluster_provider(stack):
    ev = evaluation(stack)
    providers = {
        site: {
            r.provider for r in on_site(ev, site) if r.type.startswith("kubernetes:") and r.custom
        }
        for site in SITES
    }
    assert all(len(p) == 1 for p in providers.values()), providers
    assert providers["public"] != providers["private"]


def _deployment_selector(stack: str, site: str) -> dict:
    deployment = k8s_object(evaluation(stack), site, "Deployment", "triton")
    return deployment["spec"]["selector"]["matchLabels"]
