"""What Prometheus, the HPA and Grafana see of a Triton site: scrape config, the autoscaling
metric, alerts and a dashboard, all as plain data.

The autoscaling signal is the average queue time *per request*: the rate of
``nv_inference_queue_duration_us`` divided by the rate of ``nv_inference_request_success``.
A raw rate of the queue counter grows with traffic even when nobody waits; the ratio only
grows when requests wait for a GPU, which is what more replicas fix.
"""

import json
from collections.abc import Sequence
from typing import Any

from components.addon_charts import KUBE_PROMETHEUS_STACK

QUEUE_METRIC = "triton_queue_time_per_request_us"
"""The custom metric name prometheus-adapter serves and the HPA scales on."""
FAILURE_RATIO = 0.01
"""Alert when more than 1% of inferences fail over 5 minutes."""
GPU_MEMORY_RATIO = 0.9
MONITORING_LABELS = {"release": KUBE_PROMETHEUS_STACK.release}
"""What Prometheus selects ServiceMonitors and PrometheusRules by (kube-prometheus-stack's
release label, so its own monitors are selected too)."""
DASHBOARD_LABELS = {"grafana_dashboard": "1"}
"""The label Grafana's dashboard sidecar watches ConfigMaps for."""

Panel = tuple[str, list[str], str, float | None]
"""Title, PromQL expressions, unit, red threshold."""


def per_request(counter: str, selector: str, window: str, by: str) -> str:
    """PromQL: rate of ``counter`` per successful request, grouped ``by``."""
    return (
        f"sum by ({by}) (rate({counter}{{{selector}}}[{window}]))"
        f" / (sum by ({by}) (rate(nv_inference_request_success{{{selector}}}[{window}])) > 0)"
    )


def adapter_rule() -> dict[str, Any]:
    """The prometheus-adapter rule that serves the per-request queue time as a pods metric.

    The denominator is clamped rather than filtered so an idle pod reports 0 (and the HPA
    can scale in) instead of reporting nothing.
    """
    matchers, group = "<<.LabelMatchers>>", "<<.GroupBy>>"
    query = (
        f"sum by ({group}) (rate(nv_inference_queue_duration_us{{{matchers}}}[2m]))"
        f" / clamp_min(sum by ({group}) (rate(nv_inference_request_success{{{matchers}}}[2m])),"
        " 1e-06)"
    )
    return {
        "seriesQuery": 'nv_inference_queue_duration_us{namespace!="",pod!=""}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": "^nv_inference_queue_duration_us$", "as": QUEUE_METRIC},
        "metricsQuery": query,
    }


def service_monitor_spec(namespace: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": selector},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s", "scheme": "http"}],
    }


def alert_rules(
    namespace: str, site: str, models: Sequence[str], queue_slo_us: int
) -> dict[str, Any]:
    """PrometheusRule spec: model not ready, queue time over SLO, failures, GPU memory."""
    ns = f'namespace="{namespace}"'
    labels = {"site": site}
    not_ready = [
        {
            "alert": "TritonModelNotReady",
            "expr": f'absent(nv_inference_count{{{ns},model="{model}"}})',
            "for": "10m",
            "labels": {**labels, "severity": "critical", "model": model},
            "annotations": {
                "summary": f"Model {model} is not loaded by any Triton pod on the {site} site",
                "description": "No ready Triton replica reports the model; check pod logs "
                "for load errors and the repository prefix.",
            },
        }
        for model in sorted(models)
    ]
    pods_unavailable = {
        "alert": "TritonReplicasUnavailable",
        "expr": (f'kube_deployment_status_replicas_unavailable{{{ns},deployment="triton"}} > 0'),
        "for": "15m",
        "labels": {**labels, "severity": "warning"},
        "annotations": {
            "summary": f"Triton pods on the {site} site have not become ready for 15 minutes",
            "description": "Pods fail their readiness probe (a model is not ready) or cannot "
            "be scheduled on a GPU node.",
        },
    }
    queue = {
        "alert": "TritonQueueTimeAboveSlo",
        "expr": f"{per_request('nv_inference_queue_duration_us', ns, '5m', 'model')}"
        f" > {queue_slo_us}",
        "for": "10m",
        "labels": {**labels, "severity": "warning"},
        "annotations": {
            "summary": "Average queue time per request of {{ $labels.model }} is above "
            f"the {queue_slo_us} us SLO",
            "description": "Requests wait for a GPU; check the HPA (max replicas reached?) "
            "and the GPU pool's capacity.",
        },
    }
    failures = {
        "alert": "TritonInferenceFailureRatio",
        "expr": (
            f"sum by (model) (rate(nv_inference_request_failure{{{ns}}}[5m]))"
            f" / ((sum by (model) (rate(nv_inference_request_success{{{ns}}}[5m]))"
            f" + sum by (model) (rate(nv_inference_request_failure{{{ns}}}[5m]))) > 0)"
            f" > {FAILURE_RATIO}"
        ),
        "for": "10m",
        "labels": {**labels, "severity": "critical"},
        "annotations": {
            "summary": f"More than {FAILURE_RATIO:.0%} of {{{{ $labels.model }}}} inferences fail",
            "description": "Check Triton's logs for the failing requests.",
        },
    }
    gpu_memory = {
        "alert": "GpuMemoryAbove90Percent",
        "expr": (
            "max by (Hostname, gpu) (DCGM_FI_DEV_FB_USED"
            " / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE))"
            f" > {GPU_MEMORY_RATIO}"
        ),
        "for": "10m",
        "labels": {**labels, "severity": "warning"},
        "annotations": {
            "summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} uses more than "
            f"{GPU_MEMORY_RATIO:.0%} of its memory",
            "description": "A model instance or a TensorRT workspace is about to fail "
            "allocation; reduce instance counts or move to a larger GPU.",
        },
    }
    return {
        "groups": [
            {
                "name": f"triton-{site}",
                "rules": [*not_ready, pods_unavailable, queue, failures, gpu_memory],
            }
        ]
    }


def dashboard(namespace: str, site: str, queue_slo_us: int) -> str:
    """Grafana dashboard JSON: Triton traffic, latency and batching next to DCGM GPU panels."""
    ns = f'namespace="{namespace}"'
    rate = "sum by (model) (rate({counter}{{" + ns + "}}[5m]))"
    triton: list[Panel] = [
        ("Successful requests/s by model", [rate.format(counter="nv_inference_request_success")],
         "reqps", None),
        ("Failed requests/s by model", [rate.format(counter="nv_inference_request_failure")],
         "reqps", None),
        ("Queue time per request (us)",
         [per_request("nv_inference_queue_duration_us", ns, "5m", "model")], "µs", queue_slo_us),
        ("Request latency per request (us)",
         [per_request("nv_inference_request_duration_us", ns, "5m", "model")], "µs", None),
        ("Average batch size",
         [f"{rate.format(counter='nv_inference_count')}"
          f" / ({rate.format(counter='nv_inference_exec_count')} > 0)"], "short", None),
        ("Pending requests by pod",
         [f"sum by (pod) (nv_inference_pending_request_count{{{ns}}})"], "short", None),
        ("Replicas: available and desired by the HPA",
         [f'kube_deployment_status_replicas_available{{{ns},deployment="triton"}}',
          f"kube_horizontalpodautoscaler_status_desired_replicas{{{ns}}}"], "short", None),
    ]  # fmt: skip
    memory_used = "DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)"
    gpu: list[Panel] = [
        ("GPU utilization (%)", ["avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)"], "percent",
         None),
        ("GPU memory used (%)", [f"100 * max by (Hostname, gpu) ({memory_used})"], "percent",
         100 * GPU_MEMORY_RATIO),
        ("GPU power (W)", ["avg by (Hostname, gpu) (DCGM_FI_DEV_POWER_USAGE)"], "watt", None),
        ("GPU temperature (C)", ["max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP)"], "celsius",
         None),
    ]  # fmt: skip
    panels = [
        _panel(index, title, exprs, unit, threshold)
        for index, (title, exprs, unit, threshold) in enumerate([*triton, *gpu])
    ]
    body = {
        "title": f"Triton - {site} site",
        "uid": f"triton-{site}",
        "tags": ["triton", "gpu", site],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]
        },
        "panels": panels,
    }
    return json.dumps(body, indent=2)


def _panel(
    index: int, title: str, exprs: Sequence[str], unit: str, threshold: float | None
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": "__auto"}
            for i, expr in enumerate(exprs)
        ],
    }
