"""Reaching a cluster's API: a kubeconfig whose user runs a cloud's token plugin, and the
Kubernetes provider that deploys with it. No static credentials on either site."""

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def exec_kubeconfig(
    cluster_name: pulumi.Input[str],
    cluster: Mapping[str, Any],
    command: str,
    plugin: Mapping[str, Any],
) -> pulumi.Output[str]:
    """One cluster, one context, one user whose token comes from ``command`` on every call."""
    return pulumi.Output.json_dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": dict(cluster)}],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": command,
                            **plugin,
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


def cluster_provider(
    name: str,
    kubeconfig: pulumi.Input[str],
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource],
) -> k8s.Provider:
    """The provider for a cluster's objects, once the nodes (and admins) it needs exist."""
    return k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
