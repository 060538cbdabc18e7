"""The deploy-order replay: each precondition on a tiny graph, then every stack as it stands.

Synthetic graphs are built from ``MockedResource`` directly, recorded the way the mocks
harness records them: ``dependencies`` are URNs, ``provider`` is the provider's URN.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from hybrid.gpu_scheduling import GPU_TAINT_KEY as COMPONENT_GPU_TAINT_KEY
from infra.offline import UNKNOWN, MockedResource, evaluate_stack
from policy.deploy_order import (
    CHECKS,
    CRD,
    CRYPTO_KEY,
    ENCRYPTER_DECRYPTER,
    GKE_CLUSTER,
    GPU_TAINT_KEY,
    HELM_RELEASE,
    OIDC_PROVIDER,
    PRECONDITIONS,
    S3_BUCKET,
    Graph,
    Precondition,
    UnmetPrecondition,
    preinstalled,
    replay,
    replay_resources,
)
from tests.conftest import STACKS, evaluated

PREFIX = "urn:pulumi:test::hybrid::"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
JOB = "kubernetes:batch/v1:Job"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ROLE_ARN_OIDC = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/AB12"
KEY_ID = "projects/acme/locations/europe-west4/keyRings/ring/cryptoKeys/key"
STORAGE_AGENT = "serviceAccount:service-42@gs-project-accounts.iam.gserviceaccount.com"
GKE_AGENT = "serviceAccount:service-42@container-engine-robot.iam.gserviceaccount.com"


def res(
    type_: str,
    name: str,
    inputs: dict[str, Any] | None = None,
    *,
    deps: Sequence[MockedResource] = (),
    provider: MockedResource | None = None,
    parent: MockedResource | None = None,
    outputs: dict[str, Any] | None = None,
    id_: str = "",
    custom: bool = True,
) -> MockedResource:
    return MockedResource(
        urn=f"{PREFIX}{type_}::{name}",
        type=type_,
        name=name,
        inputs=dict(inputs or {}),
        outputs=dict(outputs if outputs is not None else inputs or {}),
        parent=parent.urn if parent else None,
        provider=provider.urn if provider else None,
        custom=custom,
        id=id_,
        dependencies=tuple(d.urn for d in deps),
    )


EKS = res("aws:eks/cluster:Cluster", "eks")
EKS_K8S = res("pulumi:providers:kubernetes", "eks-k8s", deps=[EKS])
GKE = res(
    GKE_CLUSTER,
    "gke",
    {
        "datapathProvider": "ADVANCED_DATAPATH",
        "workloadIdentityConfig": {"workloadPool": "acme.svc.id.goog"},
    },
)
GKE_K8S = res("pulumi:providers:kubernetes", "gke-k8s", deps=[GKE])
CLUSTERS = [EKS, EKS_K8S, GKE, GKE_K8S]
LEGACY_GKE = res(GKE_CLUSTER, "legacy")
LEGACY_K8S = res("pulumi:providers:kubernetes", "legacy-k8s", deps=[LEGACY_GKE])


def kube(
    type_: str,
    name: str,
    namespace: str | None = "default",
    *,
    spec: dict[str, Any] | None = None,
    provider: MockedResource | None = EKS_K8S,
    deps: Sequence[MockedResource] = (),
    parent: MockedResource | None = None,
) -> MockedResource:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    inputs = {"metadata": metadata} | ({"spec": spec} if spec is not None else {})
    return res(
        type_,
        f"{name}-{type_.rsplit(':', 1)[1]}",
        inputs,
        provider=provider,
        deps=deps,
        parent=parent,
    )


def release(
    chart: str,
    namespace: str = "default",
    *,
    provider: MockedResource = EKS_K8S,
    **inputs: Any,
) -> MockedResource:
    return res(
        HELM_RELEASE, chart, {"chart": chart, "namespace": namespace, **inputs}, provider=provider
    )


def pod_spec(**spec: Any) -> dict[str, Any]:
    return {"template": {"spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}}


def eks_pool(
    name: str, *, taint: bool, min_size: int = 1, labels: dict[str, str] | None = None
) -> MockedResource:
    inputs: dict[str, Any] = {
        "labels": labels or {},
        "scalingConfig": {"minSize": min_size, "desiredSize": min_size, "maxSize": 4},
    }
    if taint:
        inputs["taints"] = [{"key": GPU_TAINT_KEY, "value": "present", "effect": "NO_SCHEDULE"}]
    return res(EKS_NODE_GROUP, name, inputs, deps=[EKS])


def vpc_cni(cluster: MockedResource, values: dict[str, str] | None) -> MockedResource:
    inputs: dict[str, Any] = {"addonName": "vpc-cni"}
    if values is not None:
        inputs["configurationValues"] = json.dumps(values)
    return res("aws:eks/addon:Addon", f"{cluster.name}-vpc-cni", inputs, deps=[cluster])


# --- each precondition, failing and passing -------------------------------------------------

KPS = release("kube-prometheus-stack", "monitoring", createNamespace=True)
MONITOR_CRD = res(
    CRD,
    "servicemonitors",
    {
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": "ServiceMonitor", "plural": "servicemonitors"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    },
    provider=EKS_K8S,
)
TRITON_NS = kube("kubernetes:core/v1:Namespace", "triton", None)
GPU_DAEMON = pod_spec(
    tolerations=[{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
)
WI_MEMBER = "serviceAccount:acme.svc.id.goog[triton/triton]"
OIDC = res(OIDC_PROVIDER, "oidc", {"url": "https://oidc.eks"}, outputs={"arn": ROLE_ARN_OIDC})
IRSA_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": ROLE_ARN_OIDC},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
)
KEY = res(CRYPTO_KEY, "key", id_=KEY_ID)
GRANT = {"cryptoKeyId": KEY_ID, "role": ENCRYPTER_DECRYPTER, "member": STORAGE_AGENT}
STORAGE_GRANT = res(
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "storage-grant", GRANT, deps=[KEY]
)
GKE_GRANT = res(
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gke-grant",
    GRANT | {"member": GKE_AGENT},
    deps=[KEY],
)
BUCKET = res(S3_BUCKET, "models", id_="models-1a2b3c")
BUCKET_SSE = res(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "models-encryption",
    {"bucket": BUCKET.id},
    deps=[BUCKET],
)
BUCKET_POLICY = res(
    "aws:s3/bucketPolicy:BucketPolicy", "models-policy", {"bucket": BUCKET.id}, deps=[BUCKET]
)
PODS_METRIC = {"metrics": [{"type": "Pods", "pods": {"metric": {"name": "queue_us"}}}]}
ADAPTER = release("prometheus-adapter", "kube-system")
PINNED = pod_spec(nodeSelector={"hybrid.dev/compute-capability": "8.9"}, restartPolicy="Never")
SM89 = {"hybrid.dev/compute-capability": "8.9"}


def gcs_bucket(key: Any, deps: Sequence[MockedResource]) -> MockedResource:
    return res(
        "gcp:storage/bucket:Bucket", "gcs", {"encryption": {"defaultKmsKeyName": key}}, deps=deps
    )


def s3_object(deps: Sequence[MockedResource], bucket: Any = BUCKET.id) -> MockedResource:
    return res(
        "aws:s3/bucketObjectv2:BucketObjectv2",
        "model.onnx",
        {"bucket": bucket, "key": "repo/x"},
        deps=deps,
    )


@dataclass(frozen=True)
class Case:
    precondition: str
    failing: list[MockedResource]
    passing: list[MockedResource]
    message: str
    """A phrase the failure must contain."""
    context: list[MockedResource] = field(default_factory=lambda: list(CLUSTERS))


CASES = [
    Case(
        "crd-installed",
        [KPS, kube(SERVICE_MONITOR, "triton")],
        [KPS, kube(SERVICE_MONITOR, "triton", deps=[KPS])],
        "is created before anything installs monitoring.coreos.com/v1 ServiceMonitor; make it "
        "depend on Release",
    ),
    Case(
        "crd-installed",
        [MONITOR_CRD, kube(SERVICE_MONITOR, "triton", provider=GKE_K8S, deps=[MONITOR_CRD])],
        [MONITOR_CRD, kube(SERVICE_MONITOR, "triton", deps=[MONITOR_CRD])],
        "make it depend on the kube-prometheus-stack release",  # the CRD is on the other cluster
    ),
    Case(
        "namespace-exists",
        [TRITON_NS, kube(CONFIG_MAP, "settings", "triton")],
        [TRITON_NS, kube(CONFIG_MAP, "settings", "triton", deps=[TRITON_NS])],
        "is created before its namespace 'triton' exists; make it depend on Namespace triton",
    ),
    Case(
        "namespace-exists",
        [KPS, kube(CONFIG_MAP, "rules", "monitoring")],
        [KPS, kube(CONFIG_MAP, "rules", "monitoring", deps=[KPS])],
        "is created before its namespace 'monitoring' exists; make it depend on Release",
    ),
    Case(
        "cluster-provider",
        [kube(CONFIG_MAP, "settings", provider=None)],
        [kube(CONFIG_MAP, "settings")],
        "uses the default Kubernetes provider",
    ),
    Case(
        "cluster-provider",
        [kube(CONFIG_MAP, "settings", provider=res("pulumi:providers:kubernetes", "loose"))],
        [kube(CONFIG_MAP, "settings", provider=GKE_K8S)],
        "which depends on no single EKS or GKE cluster",
        context=[*CLUSTERS, res("pulumi:providers:kubernetes", "loose")],
    ),
    Case(
        "gpu-pool-for-toleration",
        [eks_pool("system", taint=False), kube(DAEMON_SET, "dcgm", spec=GPU_DAEMON)],
        # Presence, not order: the pool is not among the DaemonSet's dependencies.
        [eks_pool("gpu", taint=True), kube(DAEMON_SET, "dcgm", spec=GPU_DAEMON)],
        f"tolerates the {GPU_TAINT_KEY} taint, but cluster eks has no node pool carrying it",
    ),
    Case(
        "workload-identity-pool",
        [res("gcp:serviceaccount/iAMMember:IAMMember", "wi", {"member": WI_MEMBER, "role": "r"})],
        [
            res(
                "gcp:serviceaccount/iAMMember:IAMMember",
                "wi",
                {"member": WI_MEMBER, "role": "r"},
                deps=[GKE],
            )
        ],
        "before any GKE cluster enables the identity pool 'acme.svc.id.goog' (GCP answers "
        "'Identity Pool does not exist'",
    ),
    Case(
        "workload-identity-pool",
        [res("gcp:projects/iAMBinding:IAMBinding", "wi", {"members": ["user:a@b.c", WI_MEMBER]})],
        [res("gcp:projects/iAMBinding:IAMBinding", "wi", {"members": [WI_MEMBER]}, deps=[GKE])],
        "take the pool from the workloadIdentityConfig output of Cluster gke",
    ),
    Case(
        "irsa-oidc-provider",
        [OIDC, res("aws:iam/role:Role", "irsa", {"assumeRolePolicy": IRSA_POLICY})],
        [OIDC, res("aws:iam/role:Role", "irsa", {"assumeRolePolicy": IRSA_POLICY}, deps=[OIDC])],
        f"trusts {ROLE_ARN_OIDC} before that OIDC provider exists",
    ),
    Case(
        "cmek-key-grant",
        [KEY, STORAGE_GRANT, gcs_bucket(KEY_ID, [KEY])],
        [KEY, STORAGE_GRANT, gcs_bucket(KEY_ID, [KEY, STORAGE_GRANT])],
        f"before the service agent (*@gs-project-accounts.iam.gserviceaccount.com) holds "
        f"{ENCRYPTER_DECRYPTER} on it",
    ),
    Case(
        "cmek-key-grant",
        # The GKE agent's grant does not help a bucket; in preview the key is matched by edge.
        [KEY, GKE_GRANT, gcs_bucket(UNKNOWN, [KEY, GKE_GRANT])],
        [
            KEY,
            GKE_GRANT,
            res(
                GKE_CLUSTER,
                "gke2",
                {"databaseEncryption": {"keyName": UNKNOWN}},
                deps=[KEY, GKE_GRANT],
            ),
        ],
        "uses CMEK key key before the service agent",
    ),
    Case(
        "s3-object-after-bucket-settings",
        [BUCKET, BUCKET_SSE, BUCKET_POLICY, s3_object([BUCKET, BUCKET_POLICY])],
        [BUCKET, BUCKET_SSE, BUCKET_POLICY, s3_object([BUCKET, BUCKET_SSE, BUCKET_POLICY])],
        "is written to bucket models before its BucketServerSideEncryptionConfiguration apply",
    ),
    Case(
        "s3-object-after-bucket-settings",
        # Preview: the bucket name is unknown, the dependency on the bucket is not.
        [BUCKET, BUCKET_SSE, BUCKET_POLICY, s3_object([BUCKET], UNKNOWN)],
        [
            BUCKET,
            BUCKET_SSE,
            BUCKET_POLICY,
            s3_object([BUCKET, BUCKET_SSE, BUCKET_POLICY], UNKNOWN),
        ],
        "before its BucketServerSideEncryptionConfiguration and BucketPolicy apply",
    ),
    Case(
        "network-policy-enforced",
        [vpc_cni(EKS, None), kube(NETWORK_POLICY, "deny", spec={"podSelector": {}})],
        [
            vpc_cni(EKS, {"enableNetworkPolicy": "true"}),
            kube(NETWORK_POLICY, "deny", spec={"podSelector": {}}),
        ],
        "the vpc-cni add-on of EKS cluster eks does not set enableNetworkPolicy",
    ),
    Case(
        "network-policy-enforced",
        [LEGACY_GKE, LEGACY_K8S, kube(NETWORK_POLICY, "deny", spec={}, provider=LEGACY_K8S)],
        [kube(NETWORK_POLICY, "deny", spec={}, provider=GKE_K8S)],
        "GKE cluster legacy does not run Dataplane V2",
    ),
    Case(
        "metrics-adapter",
        [ADAPTER, kube(HPA, "triton", spec=PODS_METRIC)],
        [ADAPTER, kube(HPA, "triton", spec=PODS_METRIC, deps=[ADAPTER])],
        "scales on Pods metrics before anything serves them",
    ),
    Case(
        "metrics-adapter",
        # The chart is matched exactly, and only on the HPA's own cluster.
        [
            release("prometheus-community/prometheus-adapter"),
            release("prometheus-adapter", provider=GKE_K8S),
            kube(HPA, "triton", spec=PODS_METRIC),
        ],
        [
            kube(
                HPA, "triton", spec={"metrics": [{"type": "Resource", "resource": {"name": "cpu"}}]}
            )
        ],
        "make it depend on the prometheus-adapter release",
    ),
    Case(
        "job-node-autoscaler",
        [eks_pool("gpu", taint=True, min_size=0, labels=SM89), kube(JOB, "build", spec=PINNED)],
        # Presence: the autoscaler is on the cluster, not among the Job's dependencies.
        [
            eks_pool("gpu", taint=True, min_size=0, labels=SM89),
            release("cluster-autoscaler", "kube-system"),
            kube(JOB, "build", spec=PINNED),
        ],
        "is pinned to gpu of cluster eks, which can be at zero nodes",
    ),
    Case(
        "job-node-autoscaler",
        [
            eks_pool("gpu", taint=True, labels={"hybrid.dev/compute-capability": "8.6"}),
            kube(JOB, "build", spec=PINNED),
        ],
        [
            res(
                "gcp:container/nodePool:NodePool",
                "gpu",
                {
                    "nodeConfig": {"labels": SM89},
                    "initialNodeCount": 0,
                    "autoscaling": {"totalMinNodeCount": 0, "totalMaxNodeCount": 3},
                },
                deps=[GKE],
            ),
            kube(JOB, "build", spec=PINNED, provider=GKE_K8S),
        ],
        "that no node pool of cluster eks declares",
    ),
]


def messages(resources: Sequence[MockedResource], precondition: str) -> list[str]:
    return [u.message for u in replay_resources(resources) if u.precondition == precondition]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.precondition}-{i}" for i, c in enumerate(CASES)])
def test_a_precondition_fails_and_passes_on_its_own_graph(case: Case) -> None:
    failing = messages([*case.context, *case.failing], case.precondition)
    assert failing, f"{case.precondition} did not fail"
    assert any(case.message in m for m in failing), failing
    passing = replay_resources([*case.context, *case.passing])
    assert [u.message for u in passing] == [], "the passing graph meets every precondition"


def test_every_row_has_a_case_and_a_check() -> None:
    ids = [row.id for row in PRECONDITIONS]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(CHECKS) == {case.precondition for case in CASES}
    for row in PRECONDITIONS:
        assert row.reason and row.applies_to and row.relation in ("order", "presence"), row.id
        assert "https://" in row.source or ".py" in row.source, row.id


def test_a_precondition_without_a_check_fails() -> None:
    row = Precondition("no-such-check", ("kubernetes:*",), "why", "https://example.com", "order")
    unmet = replay_resources(CLUSTERS, [row])
    assert [(u.precondition, u.urn) for u in unmet] == [("no-such-check", None)]
    assert "precondition 'no-such-check' has no check" in unmet[0].message


def test_a_type_its_check_cannot_read_fails() -> None:
    row = Precondition(
        "gpu-pool-for-toleration", ("kubernetes:apps/v1:ReplicaSet",), "why", "x.py", "presence"
    )
    replica_set = kube("kubernetes:apps/v1:ReplicaSet", "rs", spec=GPU_DAEMON)
    unmet = replay_resources([*CLUSTERS, replica_set], [row])
    assert [u.urn for u in unmet] == [replica_set.urn]
    assert (
        "cannot be judged for 'gpu-pool-for-toleration': no pod template path" in unmet[0].message
    )


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            kube("kubernetes:example.com/v1:Widget", "w"),
            "before anything installs example.com/v1 Widget; no chart in CHART_CRDS ships",
        ),
        (
            res(
                "kubernetes:apiextensions.k8s.io:CustomResource",
                "cr",
                {"apiVersion": UNKNOWN},
                provider=EKS_K8S,
            ),
            "cannot be judged for 'crd-installed': a CustomResource whose apiVersion and kind",
        ),
        (
            res("kubernetes:helm.sh/v4:Chart", "chart", provider=EKS_K8S, custom=False),
            "cannot be judged for 'crd-installed': a remote component",
        ),
    ],
)
def test_an_unclassifiable_kubernetes_type_fails(resource: MockedResource, message: str) -> None:
    assert any(message in m for m in messages([*CLUSTERS, resource], "crd-installed"))


def test_crds_come_only_from_releases_that_install_them() -> None:
    monitor = kube(SERVICE_MONITOR, "triton", deps=[KPS])
    skipped = release("kube-prometheus-stack", skipCrds=True)
    assert messages([*CLUSTERS, KPS, monitor], "crd-installed") == []
    assert messages(
        [*CLUSTERS, skipped, kube(SERVICE_MONITOR, "triton", deps=[skipped])], "crd-installed"
    )


def test_a_precondition_is_met_through_the_closure_not_by_registering_first() -> None:
    """Registered earlier is not enough; a dependency's dependency, the parent's
    depends_on and the provider's dependencies are."""
    secret = kube("kubernetes:core/v1:Secret", "tls", "triton", deps=[TRITON_NS])
    component = res("hybrid:triton_server:TritonServer", "site", deps=[TRITON_NS], custom=False)
    transitive = kube(CONFIG_MAP, "a", "triton", deps=[secret])
    by_parent = kube(CONFIG_MAP, "b", "triton", parent=component)
    registered_later = kube(CONFIG_MAP, "c", "triton")
    unmet = replay_resources(
        [*CLUSTERS, TRITON_NS, secret, component, transitive, by_parent, registered_later]
    )
    assert [u.urn for u in unmet] == [registered_later.urn]


def test_the_engine_order_puts_what_is_waited_on_first() -> None:
    config_map = kube(CONFIG_MAP, "settings", "triton", deps=[TRITON_NS])
    order = Graph([config_map, TRITON_NS, EKS_K8S, EKS]).engine_order()
    assert [r.name for r in order] == ["eks", "eks-k8s", TRITON_NS.name, config_map.name]


def test_unknown_values_in_preview_are_not_guessed() -> None:
    """A trust policy or pod template still unknown names nothing to check yet."""
    role = res("aws:iam/role:Role", "irsa", {"assumeRolePolicy": UNKNOWN})
    job = res(JOB, "build", {"metadata": UNKNOWN, "spec": UNKNOWN}, provider=EKS_K8S)
    assert replay_resources([*CLUSTERS, role, job]) == []


def test_the_gpu_taint_is_the_one_the_pools_carry() -> None:
    assert GPU_TAINT_KEY == COMPONENT_GPU_TAINT_KEY


# --- every stack, as the engine would create it ---------------------------------------------


@cache
def stack_replay(stack: str, preview: bool) -> list[UnmetPrecondition]:
    """One replay per evaluation, shared by the rows' tests."""
    return replay(evaluated(stack, preview))


@pytest.mark.parametrize("row", [row.id for row in PRECONDITIONS])
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
@pytest.mark.parametrize("stack", STACKS)
def test_stack_meets_precondition(stack: str, preview: bool, row: str) -> None:
    unmet = [u.message for u in stack_replay(stack, preview) if u.precondition == row]
    assert unmet == [], "\n".join(unmet)


ADDONS_OFF = {
    "hybrid:installKubePrometheusStack": False,
    "hybrid:installPrometheusAdapter": False,
    "hybrid:installClusterAutoscaler": False,
}


def test_an_add_on_switched_off_is_taken_as_already_on_the_cluster() -> None:
    """Switching an add-on off is the user's word that the cluster runs it (the preview warns
    what that means), so the replay assumes what it provides instead of failing the stack."""
    evaluation = evaluate_stack("prod", config_overrides=ADDONS_OFF)
    assert replay(evaluation) == []
    assumed = preinstalled(evaluation.config)
    assert ("monitoring.coreos.com/v1", "ServiceMonitor") in assumed.crds
    assert assumed.namespaces == {evaluation.config.serving.monitoring_namespace}
    assert assumed.metrics_adapter and assumed.node_autoscaler
    # What the replay assumed is exactly what it would otherwise have asked for.
    assert {u.precondition for u in replay_resources(evaluation.resources)} == {
        "crd-installed",
        "namespace-exists",
        "metrics-adapter",
        "job-node-autoscaler",
    }
