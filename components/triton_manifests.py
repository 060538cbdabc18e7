"""The Kubernetes objects of one Triton site, as plain manifests (camelCase, as in YAML).

Pure functions of a ``TritonSite`` so every object can be read, diffed and schema-checked
on its own; ``TritonServer`` only turns them into resources. Conventions the functions
follow (see docs/serving-on-clusters.md for the why of each):

- EXPLICIT model control: Triton loads exactly the models placed on the site, from the
  immutable ``repo/<hash>`` prefix, and fails fast (strict config) instead of guessing.
- Metrics (8002) are only ever on a ClusterIP Service; load balancers carry serving ports.
- Probes are sized from the repository size, so a big model is not killed mid-load.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from hybrid.gpu_scheduling import ACCELERATOR_LABEL, GPU_RESOURCE, GPU_TOLERATION
from hybrid.sites import Cloud
from hybrid.triton import NAMESPACE, PORTS, SERVICE, SERVICE_ACCOUNT

KubeObject = dict[str, Any]

APP = "triton"
TRITON_UID = 1000
"""``triton-server``, the non-root user the NGC image ships."""

TLS_SECRET = "triton-grpc-tls"
TLS_DIR = "/etc/triton/tls"
REPOSITORY_CACHE_DIR = "/var/cache/triton-repository"
"""Where Triton copies the bucket's repository before loading (read-only root FS)."""
MOUNT_DIRECTORY_ENV: dict[Cloud, str] = {
    "aws": "TRITON_AWS_MOUNT_DIRECTORY",
    "gcp": "TRITON_GCS_MOUNT_DIRECTORY",
}
SHM_SIZE = "1Gi"
"""Python-backend models (the tokenizer) exchange tensors through /dev/shm."""

PRESTOP_SECONDS = 15
"""Time for load balancers and Endpoints to stop sending new requests before SIGTERM."""
EXIT_TIMEOUT_SECONDS = 30
"""Triton's own wait for in-flight inferences after SIGTERM."""
TERMINATION_GRACE_SECONDS = PRESTOP_SECONDS + EXIT_TIMEOUT_SECONDS + 15
STARTUP_BASE_SECONDS = 120
"""CUDA init, backend start and engine warm-up, before any repository bytes count."""
STARTUP_PERIOD_SECONDS = 10
GIB = 1 << 30

RESOURCES = {
    "requests": {"cpu": "2", "memory": "6Gi", GPU_RESOURCE: "1"},
    "limits": {"cpu": "4", "memory": "12Gi", GPU_RESOURCE: "1"},
}
"""Fits the smallest GPU node of every stack (g4dn.xlarge: 4 vCPU, 16 GiB) with one GPU each."""


@dataclass(frozen=True)
class TritonSite:
    """Everything the manifests of one site depend on."""

    site: str
    cloud: Cloud
    image: str
    repository_url: pulumi.Input[str]
    content_hash: str
    models: tuple[str, ...]
    """The model folders placed on the site: one --load-model each."""
    repository_bytes: int
    accelerators: tuple[str, ...]
    """Values of the GPU pools' accelerator label that Triton may run on."""
    serving_cidrs: tuple[str, ...]
    """Networks admitted to the serving ports (LB source ranges, NetworkPolicy ipBlocks)."""
    mutual_tls: bool
    min_replicas: int
    max_replicas: int
    queue_target_us: int
    """Average queue time per request the HPA holds the pods at."""
    startup_seconds_per_gib: int
    monitoring_namespace: str
    region: str | None = None
    """AWS region for the S3 client (public site)."""

    @property
    def labels(self) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": APP,
            "app.kubernetes.io/part-of": "hybrid-inference",
            "hybrid.dev/site": self.site,
        }

    @property
    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": APP, "hybrid.dev/site": self.site}

    @property
    def serving_ports(self) -> tuple[str, ...]:
        """The ports clients reach: gRPC only where mutual TLS is required (HTTP has no mTLS)."""
        return ("grpc",) if self.mutual_tls else ("http", "grpc")


def metadata(name: str, site: TritonSite, **extra: Any) -> KubeObject:
    return {"name": name, "namespace": NAMESPACE, "labels": site.labels, **extra}


def triton_args(site: TritonSite) -> list[pulumi.Input[str]]:
    tls_flag = "--grpc-use-ssl-mutual=true" if site.mutual_tls else "--grpc-use-ssl=true"
    args: list[pulumi.Input[str]] = [
        pulumi.Output.concat("--model-repository=", site.repository_url),
        "--model-control-mode=explicit",
        *(f"--load-model={model}" for model in sorted(site.models)),
        "--strict-model-config=true",
        "--exit-on-error=true",
        f"--http-port={PORTS['http']}",
        f"--grpc-port={PORTS['grpc']}",
        f"--metrics-port={PORTS['metrics']}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=true",
        tls_flag,
        f"--grpc-server-cert={TLS_DIR}/tls.crt",
        f"--grpc-server-key={TLS_DIR}/tls.key",
        f"--grpc-root-cert={TLS_DIR}/ca.crt",
        f"--exit-timeout-secs={EXIT_TIMEOUT_SECONDS}",
    ]
    return args


def startup_failure_threshold(site: TritonSite) -> int:
    budget = STARTUP_BASE_SECONDS + math.ceil(
        site.repository_bytes / GIB * site.startup_seconds_per_gib
    )
    return math.ceil(budget / STARTUP_PERIOD_SECONDS)


def repository_cache_size(site: TritonSite) -> str:
    """Room for the downloaded repository plus one TensorRT plan per GPU type, at least 1Gi."""
    return f"{max(1, math.ceil(3 * site.repository_bytes / GIB))}Gi"


def deployment(site: TritonSite) -> KubeObject:
    """The Triton Deployment; replicas are left to the HPA."""
    env: list[KubeObject] = [
        {"name": MOUNT_DIRECTORY_ENV[site.cloud], "value": REPOSITORY_CACHE_DIR}
    ]
    if site.region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": site.region})
    probe = {"port": "http"}
    container = {
        "name": "triton",
        "image": site.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tritonserver"],
        "args": triton_args(site),
        "env": env,
        "ports": [{"name": name, "containerPort": port} for name, port in PORTS.items()],
        "resources": RESOURCES,
        "startupProbe": {
            "httpGet": {"path": "/v2/health/ready", **probe},
            "periodSeconds": STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": startup_failure_threshold(site),
        },
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", **probe},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", **probe},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SECONDS)]}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tls", "mountPath": TLS_DIR, "readOnly": True},
            {"name": "repository-cache", "mountPath": REPOSITORY_CACHE_DIR},
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod_spec = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": TRITON_UID,
            "runAsGroup": TRITON_UID,
            "fsGroup": TRITON_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": {"nodeAffinity": gpu_node_affinity(site.accelerators)},
        "tolerations": [GPU_TOLERATION],
        # Soft: GPU capacity is zonal and scarce, a hard spread would leave pods Pending.
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": site.selector},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
        "containers": [container],
        "volumes": [
            {"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}},
            {"name": "repository-cache", "emptyDir": {"sizeLimit": repository_cache_size(site)}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
    }
    return {
        "metadata": metadata(APP, site),
        "spec": {
            "selector": {"matchLabels": site.selector},
            "strategy": {
                "type": "RollingUpdate",
                # Surge one pod at a time: a new pod needs a whole GPU.
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": site.labels,
                    "annotations": {"hybrid.dev/repository-hash": site.content_hash},
                },
                "spec": pod_spec,
            },
        },
    }


def gpu_node_affinity(accelerators: Sequence[str]) -> KubeObject:
    """Only nodes of the site's GPU pools (by the pools' accelerator label)."""
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": ACCELERATOR_LABEL, "operator": "In", "values": list(accelerators)}
                    ]
                }
            ]
        }
    }


def metrics_service(site: TritonSite) -> KubeObject:
    return {
        "metadata": metadata(f"{APP}-metrics", site),
        "spec": {
            "type": "ClusterIP",
            "selector": site.selector,
            "ports": [{"name": "metrics", "port": PORTS["metrics"], "targetPort": "metrics"}],
        },
    }


def load_balancer_service(site: TritonSite, annotations: Mapping[str, Any]) -> KubeObject:
    """The serving endpoint; never the metrics port. ``Local`` keeps client IPs for policies."""
    ports = [
        {"name": "grpc", "port": PORTS["grpc"], "targetPort": "grpc", "protocol": "TCP"},
    ]
    if "http" in site.serving_ports:
        # TLS for HTTP ends at the load balancer (Triton's HTTP endpoint has no TLS).
        ports.insert(0, {"name": "https", "port": 443, "targetPort": "http", "protocol": "TCP"})
    return {
        "metadata": metadata(SERVICE, site, annotations=dict(annotations)),
        "spec": {
            "type": "LoadBalancer",
            "selector": site.selector,
            "externalTrafficPolicy": "Local",
            "loadBalancerSourceRanges": list(site.serving_cidrs),
            "ports": ports,
        },
    }


def nlb_annotations(certificate_arn: pulumi.Input[str]) -> dict[str, Any]:
    """AWS NLB, internet-facing, TLS on the HTTPS port with the site's certificate in ACM."""
    prefix = "service.beta.kubernetes.io/aws-load-balancer"
    return {
        f"{prefix}-type": "nlb",
        f"{prefix}-scheme": "internet-facing",
        f"{prefix}-ssl-cert": certificate_arn,
        f"{prefix}-ssl-ports": "https",
        f"{prefix}-ssl-negotiation-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        f"{prefix}-backend-protocol": "tcp",
        f"{prefix}-cross-zone-load-balancing-enabled": "true",
    }


def internal_lb_annotations() -> dict[str, Any]:
    """GKE internal passthrough load balancer: an address in the VPC, reached over the VPN."""
    return {"networking.gke.io/load-balancer-type": "Internal"}


def horizontal_pod_autoscaler(site: TritonSite, metric_name: str) -> KubeObject:
    """Scale on queue time per request, the signal that requests wait for a GPU."""
    return {
        "metadata": metadata(APP, site),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "minReplicas": site.min_replicas,
            "maxReplicas": site.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": metric_name},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(site.queue_target_us),
                        },
                    },
                }
            ],
            "behavior": {
                # Up fast (a GPU node takes minutes to join), down slowly (model load is costly).
                "scaleUp": {
                    "stabilizationWindowSeconds": 60,
                    "selectPolicy": "Max",
                    "policies": [
                        {"type": "Pods", "value": 2, "periodSeconds": 60},
                        {"type": "Percent", "value": 100, "periodSeconds": 60},
                    ],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 600,
                    "selectPolicy": "Min",
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                },
            },
        },
    }


def pod_disruption_budget(site: TritonSite) -> KubeObject:
    """One pod down at a time: node drains proceed, a site is never drained at once."""
    return {
        "metadata": metadata(APP, site),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": site.selector}},
    }


def network_policies(site: TritonSite) -> dict[str, KubeObject]:
    """Default-deny ingress for the namespace; Triton admits serving and metrics scrapes only."""
    default_deny = {
        "metadata": metadata("default-deny-ingress", site),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    serving = {
        "from": [{"ipBlock": {"cidr": cidr}} for cidr in site.serving_cidrs],
        "ports": [{"protocol": "TCP", "port": name} for name in site.serving_ports],
    }
    scrapes = {
        "from": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": site.monitoring_namespace}
                }
            }
        ],
        "ports": [{"protocol": "TCP", "port": "metrics"}],
    }
    allow = {
        "metadata": metadata(f"{APP}-ingress", site),
        "spec": {
            "podSelector": {"matchLabels": site.selector},
            "policyTypes": ["Ingress"],
            "ingress": [serving, scrapes],
        },
    }
    return {"default-deny": default_deny, "allow": allow}
