"""What a cluster's GPU nodes need before Triton can use and report them.

EKS nodes get the NVIDIA device plugin (GKE installs its own with the driver), so that
``nvidia.com/gpu`` becomes a schedulable resource. Both sites get a DCGM exporter, the
source of the GPU memory and utilization series the alerts and the dashboard use.
Both run only on the GPU pools (their accelerator label) and tolerate the pools' taint.

They stay hand-written DaemonSets rather than NVIDIA's Helm charts: the values those charts
would need (affinity, toleration, GKE's driver mount, the security contexts below) are as
long as the manifests, the charts' pinned defaults are weaker (dcgm-exporter's keeps every
capability), and a chart's objects are invisible to the mocks, where these are validated
against the Kubernetes schema and reviewed by the policies.

Hardening: no service-account token, ``RuntimeDefault`` seccomp and a read-only root
filesystem for both (a memory-backed ``/tmp`` for the exporter, which NVIDIA's chart notes
it needs to run read-only). The device plugin needs nothing else. The exporter needs more,
and only that: on EKS root with ``SYS_ADMIN`` added back after dropping every capability
(the profiling metrics, ``DCGM_FI_PROF_*``), no privilege escalation; on GKE
``privileged``, because GKE hands a container only the GPUs allocated to it and the
exporter must see all of them (seccomp does not apply to privileged containers).
"""

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_addons import AddonReleases
from components.triton_monitoring import MONITORING_LABELS
from hybrid.gpu_scheduling import ACCELERATOR_LABEL, GPU_TOLERATION
from hybrid.sites import Cloud

DEVICE_PLUGIN_IMAGE = "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"
DCGM_EXPORTER_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:4.4.1-4.6.0-ubuntu22.04"
DCGM_PORT = 9400
GKE_DRIVER_DIR = "/home/kubernetes/bin/nvidia"
"""Where GKE's driver installer puts the NVIDIA libraries on the node."""
RUNTIME_DEFAULT_SECCOMP = {"seccompProfile": {"type": "RuntimeDefault"}}


@dataclass(frozen=True)
class GpuPlumbingArgs:
    cloud: Cloud
    provider: k8s.Provider
    monitoring_namespace: str
    addons: AddonReleases
    """The exporter's ServiceMonitor waits for the release that serves its CRD."""
    namespace: str = "gpu-monitoring"


class GpuPlumbing(pulumi.ComponentResource):
    """Device plugin (EKS) and DCGM exporter (both) on the GPU nodes of one cluster."""

    namespace: str

    def __init__(
        self, name: str, args: GpuPlumbingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("hybrid:gpu_plumbing:GpuPlumbing", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.namespace = args.namespace

        def create(kind: type, role: str, body: dict[str, Any], opts: Any) -> Any:
            return kind(f"{name}-{role}", opts=opts, **body)

        if args.cloud == "aws":
            create(k8s.apps.v1.DaemonSet, "device-plugin", device_plugin_daemonset(), k8s_opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": args.namespace,
                # The exporter reads the GPUs directly: this namespace alone runs privileged.
                "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
            },
            opts=k8s_opts,
        )
        in_namespace = pulumi.ResourceOptions.merge(
            k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])
        )
        for kind, role, body in (
            (
                k8s.apps.v1.DaemonSet,
                "dcgm-exporter",
                dcgm_exporter_daemonset(args.cloud, args.namespace),
            ),
            (k8s.core.v1.Service, "dcgm-service", dcgm_service(args.namespace)),
            (
                k8s.networking.v1.NetworkPolicy,
                "dcgm-ingress",
                scrape_only_policy(args.namespace, args.monitoring_namespace),
            ),
        ):
            create(kind, role, body, in_namespace)
        create(
            k8s.apiextensions.CustomResource,
            "dcgm-service-monitor",
            dcgm_service_monitor(args.namespace),
            pulumi.ResourceOptions.merge(
                in_namespace,
                pulumi.ResourceOptions(depends_on=list(args.addons.prometheus_operator)),
            ),
        )
        self.register_outputs({"namespace": self.namespace})


# --- manifests (pure) --------------------------------------------------------


def gpu_nodes_only() -> dict[str, Any]:
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": ACCELERATOR_LABEL, "operator": "Exists"}]}
                    ]
                }
            }
        },
        "tolerations": [GPU_TOLERATION],
    }


def device_plugin_daemonset() -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "nvidia-device-plugin"}
    return {
        "metadata": {"name": "nvidia-device-plugin", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "automountServiceAccountToken": False,
                    "securityContext": RUNTIME_DEFAULT_SECCOMP,
                    **gpu_nodes_only(),
                    "containers": [
                        {
                            "name": "nvidia-device-plugin",
                            "image": DEVICE_PLUGIN_IMAGE,
                            # Keep running on a node whose driver is still installing.
                            "env": [{"name": "FAIL_ON_INIT_ERROR", "value": "false"}],
                            # It writes only its socket, into the kubelet's host directory.
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "volumeMounts": [
                                {
                                    "name": "device-plugins",
                                    "mountPath": "/var/lib/kubelet/device-plugins",
                                }
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "device-plugins",
                            "hostPath": {"path": "/var/lib/kubelet/device-plugins"},
                        }
                    ],
                },
            },
        },
    }


def dcgm_labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "dcgm-exporter"}


def dcgm_exporter_daemonset(cloud: str, namespace: str) -> dict[str, Any]:
    """DCGM exporter; on GKE it loads the driver libraries from the node's install dir."""
    labels = dcgm_labels()
    env = [
        {"name": "DCGM_EXPORTER_LISTEN", "value": f":{DCGM_PORT}"},
        {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},
    ]
    mounts = [
        {"name": "pod-resources", "mountPath": "/var/lib/kubelet/pod-resources", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "pod-resources", "hostPath": {"path": "/var/lib/kubelet/pod-resources"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    if cloud == "gcp":
        env += [
            {"name": "DCGM_EXPORTER_KUBERNETES_GPU_ID_TYPE", "value": "device-name"},
            {"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"},
        ]
        mounts.append(
            {"name": "nvidia-drivers", "mountPath": "/usr/local/nvidia", "readOnly": True}
        )
        volumes.append({"name": "nvidia-drivers", "hostPath": {"path": GKE_DRIVER_DIR}})
        # GKE does not hand unallocated GPUs to a container; only a privileged one sees them.
        security: dict[str, Any] = {"privileged": True, "readOnlyRootFilesystem": True}
    else:
        # The EKS NVIDIA AMI's container runtime exposes every GPU on request.
        env.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"})
        security = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
            "runAsUser": 0,
            "runAsNonRoot": False,
        }
    probe = {"httpGet": {"path": "/health", "port": "metrics"}, "periodSeconds": 15}
    return {
        "metadata": {"name": "dcgm-exporter", "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": RUNTIME_DEFAULT_SECCOMP,
                    **gpu_nodes_only(),
                    "containers": [
                        {
                            "name": "dcgm-exporter",
                            "image": DCGM_EXPORTER_IMAGE,
                            "ports": [{"name": "metrics", "containerPort": DCGM_PORT}],
                            "env": env,
                            "securityContext": security,
                            "readinessProbe": probe,
                            "livenessProbe": {**probe, "initialDelaySeconds": 45},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def dcgm_service(namespace: str) -> dict[str, Any]:
    labels = dcgm_labels()
    return {
        "metadata": {"name": "dcgm-exporter", "namespace": namespace, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "metrics", "port": DCGM_PORT, "targetPort": "metrics"}],
        },
    }


def dcgm_service_monitor(namespace: str) -> dict[str, Any]:
    labels = dcgm_labels()
    return {
        "api_version": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": "dcgm-exporter",
            "namespace": namespace,
            "labels": {**labels, **MONITORING_LABELS},
        },
        "spec": {
            "selector": {"matchLabels": labels},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "15s"}],
        },
    }


def scrape_only_policy(namespace: str, monitoring_namespace: str) -> dict[str, Any]:
    """Only Prometheus, from its namespace, may reach the exporter."""
    return {
        "metadata": {"name": "dcgm-exporter-ingress", "namespace": namespace},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": monitoring_namespace}
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": DCGM_PORT}],
                }
            ],
        },
    }
