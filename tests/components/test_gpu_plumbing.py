"""GpuPlumbing under the real program: the device plugin (EKS) and the DCGM exporter (both
sites) run on the GPU pools only, locked down as far as each can run. (That the exporter's
ServiceMonitor waits for its CRD's release is checked with the add-ons.)"""

import pytest

from hybrid.gpu_scheduling import ACCELERATOR_LABEL, GPU_TOLERATION
from hybrid.sites import SITES
from tests.components.serving_support import STACKS, evaluation, k8s_object, kubernetes_objects

pytestmark = pytest.mark.usefixtures("rendered_repositories")

DAEMONSETS = {"public": ("nvidia-device-plugin", "dcgm-exporter"), "private": ("dcgm-exporter",)}


def pod_spec(stack: str, site: str, name: str) -> dict:
    return k8s_object(evaluation(stack), site, "DaemonSet", name)["spec"]["template"]["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_device_plugin_on_eks_only_and_dcgm_exporter_on_both_sites(stack):
    ev = evaluation(stack)
    daemonsets = {
        site: {
            o["metadata"]["name"] for o in kubernetes_objects(ev, site) if o["kind"] == "DaemonSet"
        }
        for site in SITES
    }
    assert daemonsets == {site: set(names) for site, names in DAEMONSETS.items()}


CASES = [(site, name) for site, names in DAEMONSETS.items() for name in names]


@pytest.mark.parametrize("site, name", CASES)
def test_they_run_on_gpu_nodes_only_without_token_seccomp_confined_read_only(site, name):
    spec = pod_spec("dev", site, name)
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [{"key": ACCELERATOR_LABEL, "operator": "Exists"}]
    assert spec["tolerations"] == [GPU_TOLERATION]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True, name


def test_the_device_plugin_keeps_no_capability():
    (container,) = pod_spec("dev", "public", "nvidia-device-plugin")["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


@pytest.mark.parametrize("site", SITES)
def test_the_exporter_has_only_its_privileged_bits_and_a_memory_tmp(site):
    spec = pod_spec("dev", site, "dcgm-exporter")
    (container,) = spec["containers"]
    security = container["securityContext"]
    if site == "private":
        # GKE hands a container only its allocated GPUs; the exporter must see them all.
        assert security == {"privileged": True, "readOnlyRootFilesystem": True}
    else:
        assert security["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN"]}
        assert security["allowPrivilegeEscalation"] is False and "privileged" not in security
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"]["medium"] == "Memory"
