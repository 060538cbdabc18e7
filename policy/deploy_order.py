"""Replay the mocked resource graph in the engine's order and check what each cloud needs to
exist already.

The mocks prove that every resource gets the right arguments, not that the clouds accept
them in the order ``pulumi up`` creates them. The engine starts a resource once everything
it waits for is done, and runs everything else in parallel. It waits for the resources
its inputs came from and its explicit ``depends_on`` (the SDK expands a component there
into its custom descendants). It also waits for its provider and for its parent's
registration, which in turn waits for the parent's own dependencies. So a precondition
is met only by a resource in that transitive closure. A resource that merely registered
earlier may still be creating.

Each ``Precondition`` row says whether it is about **order** (the provider of the
precondition must be in the closure) or about **presence** (something on the same
cluster, created at any time: an enforcing dataplane, a GPU pool, a node autoscaler).
Kubernetes objects are on the same cluster when their providers resolve to the same
cluster resource (the provider URN decides, never a name).

A value that is still unknown in a preview is judged as far as it is known: the replay
never guesses a pass or a failure from an unknown. A row that is listed for a type its
check cannot read, and a row without a check, fail loudly. Neither passes.
"""

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hybrid.config import StackConfig
from hybrid.gpu_scheduling import GPU_TAINT_KEY
from infra.offline import UNKNOWN, MockedResource, StackEvaluation

EKS_CLUSTER = "aws:eks/cluster:Cluster"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
CLUSTERS = (EKS_CLUSTER, GKE_CLUSTER)
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
EKS_ADDON = "aws:eks/addon:Addon"
K8S_PROVIDER = "pulumi:providers:kubernetes"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
GENERIC_CUSTOM_RESOURCE = "kubernetes:apiextensions.k8s.io:CustomResource"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
CRYPTO_KEY_GRANTS = (
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
    "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding",
)
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_BUCKET_SETTINGS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
)

BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
BUILTIN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "extensions",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    }
)
"""API groups every Kubernetes API server serves (kubernetes.io/docs/reference/kubernetes-api/)."""
OPAQUE_KUBERNETES = frozenset(
    {
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:yaml/v2:ConfigFile",
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:kustomize/v2:Directory",
    }
)
"""Remote components: the mocks see one opaque resource, not the objects they render."""

_PROMETHEUS_OPERATOR_KINDS = {
    "v1": (
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Probe",
        "Prometheus",
        "Alertmanager",
        "ThanosRuler",
    ),
    "v1alpha1": ("AlertmanagerConfig", "ScrapeConfig", "PrometheusAgent"),
}
CHART_CRDS: dict[str, frozenset[tuple[str, str]]] = {
    # prometheus-community/helm-charts: charts/kube-prometheus-stack/charts/crds/crds/
    "kube-prometheus-stack": frozenset(
        (f"monitoring.coreos.com/{version}", kind)
        for version, kinds in _PROMETHEUS_OPERATOR_KINDS.items()
        for kind in kinds
    ),
}
"""Helm charts known to install CRDs: chart name -> (apiVersion, kind) it ships."""
METRICS_ADAPTER_CHARTS = ("prometheus-adapter",)
NODE_AUTOSCALER_CHARTS = ("cluster-autoscaler", "karpenter")
CUSTOM_METRIC_TYPES = frozenset({"Pods", "Object", "External"})
"""HPA metric sources served by an adapter (custom and external metrics APIs)."""
ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
WORKLOAD_IDENTITY_MEMBER = re.compile(r"serviceAccount:(?P<pool>[^\[\]]+)\[[^/\]]+/[^\]]+\]")

Relation = Literal["order", "presence"]
Check = Callable[[MockedResource, "Graph"], Iterable[str]]
"""(resource, graph) -> one message per unmet precondition, read after the resource's label."""


@dataclass(frozen=True)
class Preinstalled:
    """What the clusters already run because the stack was told not to install it: an add-on
    switched off (``hybrid:install*``) is the user's word that its cluster provides it."""

    crds: frozenset[tuple[str, str]] = frozenset()
    """(apiVersion, kind) served on every cluster."""
    namespaces: frozenset[str] = frozenset()
    metrics_adapter: bool = False
    node_autoscaler: bool = False


NOTHING_PREINSTALLED = Preinstalled()


def preinstalled(config: StackConfig) -> Preinstalled:
    """The add-ons ``config`` switches off, as the capabilities the clusters must then have."""
    addons = config.addons
    monitoring = not addons.kube_prometheus_stack
    return Preinstalled(
        crds=CHART_CRDS["kube-prometheus-stack"] if monitoring else frozenset(),
        namespaces=frozenset({config.serving.monitoring_namespace}) if monitoring else frozenset(),
        metrics_adapter=not addons.prometheus_adapter,
        node_autoscaler=not addons.cluster_autoscaler,
    )


class CannotJudge(Exception):
    """The check does not know how to read this resource type: a failure, never a pass."""


@dataclass(frozen=True)
class Precondition:
    """One thing a cloud needs before (or beside) a resource, and where that is written."""

    id: str
    applies_to: tuple[str, ...]
    """Type tokens (``fnmatch`` patterns, case-sensitive) the row judges."""
    reason: str
    source: str
    relation: Relation
    """``order``: must be in the resource's dependency closure; ``presence``: on its cluster."""

    @property
    def check(self) -> Check | None:
        return CHECKS.get(self.id)

    def applies(self, type_: str) -> bool:
        return any(fnmatch.fnmatchcase(type_, pattern) for pattern in self.applies_to)


@dataclass(frozen=True)
class UnmetPrecondition:
    precondition: str
    urn: str | None
    """The resource that would fail; None for a defect of the table itself."""
    message: str


# --- the graph as the engine orders it -----------------------------------------------------


class Graph:
    """The evaluation's resources with the edges the engine waits on."""

    def __init__(
        self, resources: Sequence[MockedResource], preinstalled: Preinstalled = NOTHING_PREINSTALLED
    ) -> None:
        self.resources = list(resources)
        self.preinstalled = preinstalled
        self._by_urn = {r.urn: r for r in self.resources}
        self._by_type: dict[str, list[MockedResource]] = {}
        for resource in self.resources:
            self._by_type.setdefault(resource.type, []).append(resource)
        self._before: dict[str, frozenset[str]] = {}

    def get(self, urn: str | None) -> MockedResource | None:
        return self._by_urn.get(urn or "")

    def before(self, resource: MockedResource) -> frozenset[str]:
        """URNs of the custom resources that are created when the engine starts ``resource``."""
        done = self._before.get(resource.urn)
        if done is None:
            found: set[str] = set()
            for urn in (*resource.dependencies, resource.parent, resource.provider):
                waited = self.get(urn)  # None: the stack itself, or nothing of this program
                if waited is not None:
                    found |= self.before(waited) | ({waited.urn} if waited.custom else set())
            done = self._before[resource.urn] = frozenset(found)
        return done

    def exists_before(
        self, prerequisites: Iterable[MockedResource], resource: MockedResource
    ) -> bool:
        done = self.before(resource)
        return any(p.urn in done for p in prerequisites)

    def engine_order(self) -> list[MockedResource]:
        """A creation order the engine may follow: everything waited on comes first."""
        position = {r.urn: i for i, r in enumerate(self.resources)}
        return sorted(self.resources, key=lambda r: (len(self.before(r)), position[r.urn]))

    def of_type(self, *types: str) -> list[MockedResource]:
        return [r for type_ in types for r in self._by_type.get(type_, [])]

    def cluster(self, resource: MockedResource) -> MockedResource | None:
        """The EKS or GKE cluster a resource lives on: a Kubernetes object through its
        provider, a node pool or add-on through the cluster it names."""
        if resource.type in CLUSTERS:
            return resource
        source = (
            self.get(resource.provider) if resource.type.startswith("kubernetes:") else resource
        )
        if source is None or (source is not resource and source.type != K8S_PROVIDER):
            return None
        clusters = {u for u in source.dependencies if self._is_cluster(u)}
        clusters = clusters or {u for u in self.before(source) if self._is_cluster(u)}
        return self.get(clusters.pop()) if len(clusters) == 1 else None

    def on_cluster(self, cluster: MockedResource | None, *types: str) -> list[MockedResource]:
        if cluster is None:
            return []
        return [r for r in self.of_type(*types) if self.cluster(r) is cluster]

    def referenced(self, resource: MockedResource, value: Any, type_: str) -> list[MockedResource]:
        """The ``type_`` resources an input names: matched by physical ID when the value is
        known, otherwise (preview) every one among the inputs' direct dependencies."""
        candidates = [r for u in resource.dependencies if (r := self.get(u)) and r.type == type_]
        if isinstance(value, str):
            return [r for r in candidates if r.id == value]
        return candidates

    def _is_cluster(self, urn: str) -> bool:
        found = self.get(urn)
        return found is not None and found.type in CLUSTERS


# --- the checks ----------------------------------------------------------------------------

CHECKS: dict[str, Check] = {}


def _check(precondition_id: str) -> Callable[[Check], Check]:
    def register(function: Check) -> Check:
        CHECKS[precondition_id] = function
        return function

    return register


@_check("crd-installed")
def _crd_installed(resource: MockedResource, graph: Graph) -> Iterator[str]:
    if _kubernetes_role(resource) != "object":
        return
    kind = kube_kind(resource)
    if kind.group in BUILTIN_GROUPS or (kind.api_version, kind.kind) in graph.preinstalled.crds:
        return
    installers = [
        r
        for r in graph.on_cluster(graph.cluster(resource), HELM_RELEASE, CRD)
        if _installs(r, kind)
    ]
    if graph.exists_before(installers, resource):
        return
    charts = [
        chart for chart, kinds in CHART_CRDS.items() if (kind.api_version, kind.kind) in kinds
    ]
    if installers:
        fix = f"make it depend on {label(installers[0])}"
    elif charts:
        fix = f"make it depend on the {' or '.join(charts)} release"
    else:
        fix = (
            f"no chart in CHART_CRDS ships {kind}: install its CustomResourceDefinition on the "
            "cluster and make it depend on that"
        )
    yield f"is created before anything installs {kind}; {fix}"


@_check("namespace-exists")
def _namespace_exists(resource: MockedResource, graph: Graph) -> Iterator[str]:
    role = _kubernetes_role(resource)
    if role == "component":
        return
    if role == "release":
        if resource.inputs.get("createNamespace") is True:
            return
        namespace = resource.inputs.get("namespace", "default")
    else:
        namespace = _get(resource.inputs, "metadata", "namespace")
    if not isinstance(namespace, str) or namespace in BUILTIN_NAMESPACES:
        return  # cluster-scoped, the default namespace, or not known yet (preview)
    if namespace in graph.preinstalled.namespaces:
        return
    creators = [
        r
        for r in graph.on_cluster(graph.cluster(resource), NAMESPACE, HELM_RELEASE)
        if _creates_namespace(r, namespace)
    ]
    if graph.exists_before(creators, resource):
        return
    fix = (
        f"make it depend on {label(creators[0])}"
        if creators
        else f"create Namespace '{namespace}' on its cluster (or a Helm release there with "
        "createNamespace) and make it depend on that"
    )
    yield f"is created before its namespace '{namespace}' exists; {fix}"


@_check("cluster-provider")
def _cluster_provider(resource: MockedResource, graph: Graph) -> Iterator[str]:
    if _kubernetes_role(resource) == "component":
        return
    if resource.provider is None:
        yield (
            "uses the default Kubernetes provider (whatever cluster the deploying machine's "
            "kubeconfig points at); pass its cluster component's provider explicitly"
        )
        return
    provider = graph.get(resource.provider)
    if provider is None or provider.type != K8S_PROVIDER:
        yield f"names provider {resource.provider}, which is no Kubernetes provider of this stack"
    elif graph.cluster(resource) is None:
        yield (
            f"uses provider {provider.name}, which depends on no single EKS or GKE cluster of "
            "this stack; build the provider's kubeconfig from its cluster's outputs"
        )


POD_SPECS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
}
"""Where each workload type keeps its pod template's spec."""


@_check("gpu-pool-for-toleration")
def _gpu_pool_for_toleration(resource: MockedResource, graph: Graph) -> Iterator[str]:
    spec = _pod_spec(resource)
    tolerations = spec.get("tolerations") if spec else None
    if not isinstance(tolerations, list):
        return
    if not any(_get(t, "key") == GPU_TAINT_KEY for t in tolerations):
        return
    cluster = graph.cluster(resource)
    if cluster is None:
        return  # cluster-provider reports it
    if not any(GPU_TAINT_KEY in _pool_taint_keys(p) for p in _node_pools(graph, cluster)):
        yield (
            f"tolerates the {GPU_TAINT_KEY} taint, but cluster {cluster.name} has no node pool "
            "carrying it, so its pods never get a GPU; add a GPU node pool to that cluster"
        )


@_check("workload-identity-pool")
def _workload_identity_pool(resource: MockedResource, graph: Graph) -> Iterator[str]:
    if "member" in resource.inputs:
        members = [resource.inputs["member"]]
    elif "members" in resource.inputs:
        members = resource.inputs["members"] if isinstance(resource.inputs["members"], list) else []
    else:
        raise CannotJudge(f"{resource.type} has neither 'member' nor 'members'")
    for member in members:
        match = WORKLOAD_IDENTITY_MEMBER.fullmatch(member) if isinstance(member, str) else None
        if match is None:
            continue
        pool = match["pool"]
        clusters = [
            c
            for c in graph.of_type(GKE_CLUSTER)
            if _get(c.inputs, "workloadIdentityConfig", "workloadPool") == pool
        ]
        if graph.exists_before(clusters, resource):
            continue
        fix = (
            f"take the pool from the workloadIdentityConfig output of {label(clusters[0])}, so "
            "that the grant waits for the cluster"
            if clusters
            else f"no GKE cluster of this stack enables it; create one with workloadPool '{pool}'"
        )
        yield (
            f"grants {member} before any GKE cluster enables the identity pool '{pool}' (GCP "
            f"answers 'Identity Pool does not exist' on a fresh project); {fix}"
        )


@_check("irsa-oidc-provider")
def _irsa_oidc_provider(resource: MockedResource, graph: Graph) -> Iterator[str]:
    document = resource.inputs.get("assumeRolePolicy")
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise CannotJudge("its assumeRolePolicy is not JSON") from None
    if not isinstance(document, dict):
        return  # no policy, or one still unknown (preview)
    for arn in _federated_oidc_principals(document):
        providers = [p for p in graph.of_type(OIDC_PROVIDER) if p.outputs.get("arn") == arn]
        if graph.exists_before(providers, resource):
            continue
        fix = (
            f"build the policy from the arn output of {label(providers[0])}"
            if providers
            else "create the cluster's OpenIdConnectProvider in this stack and build the policy "
            "from its arn output"
        )
        yield (
            f"trusts {arn} before that OIDC provider exists (IAM refuses the trust policy: "
            f"'Invalid principal in policy'); {fix}"
        )


CMEK_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "gcp:storage/bucket:Bucket": (
        ("encryption", "defaultKmsKeyName"),
        "gs-project-accounts.iam.gserviceaccount.com",
    ),
    "gcp:storage/bucketObject:BucketObject": (
        ("kmsKeyName",),
        "gs-project-accounts.iam.gserviceaccount.com",
    ),
    GKE_CLUSTER: (
        ("databaseEncryption", "keyName"),
        "container-engine-robot.iam.gserviceaccount.com",
    ),
}
"""Where each type names its CMEK key, and the domain of the service agent that uses it."""


@_check("cmek-key-grant")
def _cmek_key_grant(resource: MockedResource, graph: Graph) -> Iterator[str]:
    if resource.type not in CMEK_KEYS:
        raise CannotJudge(f"no CMEK key path for {resource.type}")
    path, agent = CMEK_KEYS[resource.type]
    key = _get(resource.inputs, *path)
    if key is None:
        return  # Google-managed encryption
    keys = graph.referenced(resource, key, CRYPTO_KEY)
    grants = [
        g
        for g in graph.of_type(*CRYPTO_KEY_GRANTS)
        if g.inputs.get("role") == ENCRYPTER_DECRYPTER
        and _names_key(g, key, keys)
        and _grants_agent(g, agent)
    ]
    if graph.exists_before(grants, resource):
        return
    named = key if isinstance(key, str) else " or ".join(k.name for k in keys) or "a key"
    fix = f"make it depend on {label(grants[0])}" if grants else "grant the agent on the key first"
    yield (
        f"uses CMEK key {named} before the service agent (*@{agent}) holds "
        f"{ENCRYPTER_DECRYPTER} on it, and creation is refused; {fix}"
    )


@_check("s3-object-after-bucket-settings")
def _s3_object_after_bucket_settings(resource: MockedResource, graph: Graph) -> Iterator[str]:
    for bucket in graph.referenced(resource, resource.inputs.get("bucket"), S3_BUCKET):
        missing, needed = [], []
        for setting_type in S3_BUCKET_SETTINGS:
            settings = [s for s in graph.of_type(setting_type) if bucket.urn in s.dependencies]
            if not graph.exists_before(settings, resource):
                missing.append(setting_type.rsplit(":", 1)[-1])
                needed.append(label(settings[0]) if settings else f"a new {missing[-1]}")
        if missing:
            yield (
                f"is written to bucket {bucket.name} before its {' and '.join(missing)} apply "
                "(an object written earlier escapes the bucket's encryption and upload rules); "
                f"make it depend on {' and '.join(needed)}"
            )


@_check("network-policy-enforced")
def _network_policy_enforced(resource: MockedResource, graph: Graph) -> Iterator[str]:
    cluster = graph.cluster(resource)
    if cluster is None:
        return  # cluster-provider reports it
    if cluster.type == GKE_CLUSTER:
        if cluster.inputs.get("datapathProvider") != "ADVANCED_DATAPATH":
            yield (
                f"is accepted but never enforced: GKE cluster {cluster.name} does not run "
                "Dataplane V2; set datapathProvider ADVANCED_DATAPATH"
            )
        return
    cni = [
        a for a in graph.on_cluster(cluster, EKS_ADDON) if a.inputs.get("addonName") == "vpc-cni"
    ]
    values = [a.inputs.get("configurationValues") for a in cni]
    if UNKNOWN in values or any(_enables_network_policy(v) for v in values):
        return
    yield (
        f"is accepted but never enforced: the vpc-cni add-on of EKS cluster {cluster.name} "
        'does not set enableNetworkPolicy "true" in its configurationValues; set it'
    )


@_check("metrics-adapter")
def _metrics_adapter(resource: MockedResource, graph: Graph) -> Iterator[str]:
    metrics = _get(resource.inputs, "spec", "metrics")
    sources = {_get(m, "type") for m in metrics} if isinstance(metrics, list) else set()
    custom = sorted(sources & CUSTOM_METRIC_TYPES)
    if not custom or graph.preinstalled.metrics_adapter:
        return
    adapters = _releases(graph, resource, METRICS_ADAPTER_CHARTS)
    if graph.exists_before(adapters, resource):
        return
    fix = (
        f"make it depend on {label(adapters[0])}"
        if adapters
        else "make it depend on the prometheus-adapter release"
    )
    yield (
        f"scales on {'/'.join(custom)} metrics before anything serves them (no adapter answers "
        f"the custom metrics API, so it never scales); {fix}"
    )


@_check("job-node-autoscaler")
def _job_node_autoscaler(resource: MockedResource, graph: Graph) -> Iterator[str]:
    spec = _pod_spec(resource)
    if spec is None:
        return
    selector, terms = _node_selection(spec)
    cluster = graph.cluster(resource)
    if (not selector and not terms) or cluster is None:
        return
    pools = [p for p in _node_pools(graph, cluster) if _selects(selector, terms, _pool_labels(p))]
    if not pools:
        yield (
            f"is pinned to nodes ({selector or terms}) that no node pool of cluster "
            f"{cluster.name} declares, so it never starts; fix the selector or the pool labels"
        )
        return
    if not all(_can_be_empty(p) for p in pools):
        return
    if cluster.type == GKE_CLUSTER:
        if any(_gke_autoscaled(p) for p in pools):
            return
        fix = "give the node pool an autoscaling block"
    else:
        if graph.preinstalled.node_autoscaler or _releases(graph, resource, NODE_AUTOSCALER_CHARTS):
            return
        fix = "install a cluster-autoscaler (or karpenter) release on that cluster"
    yield (
        f"is pinned to {', '.join(p.name for p in pools)} of cluster {cluster.name}, which can "
        f"be at zero nodes with nothing to scale them up (the Job's await times out after 10 "
        f"minutes); {fix}"
    )


# --- the table -----------------------------------------------------------------------------

_WORKLOADS = tuple(POD_SPECS)
PRECONDITIONS: tuple[Precondition, ...] = (
    Precondition(
        "crd-installed",
        ("kubernetes:*",),
        "The API server refuses a custom resource until a CRD defines its group and kind; "
        "a cluster this stack creates has none until the stack installs them.",
        "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/"
        "custom-resource-definitions/; prometheus-community/helm-charts "
        "charts/kube-prometheus-stack/charts/crds/crds/",
        "order",
    ),
    Precondition(
        "namespace-exists",
        ("kubernetes:*",),
        "A namespaced object is refused in a namespace that does not exist yet.",
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/",
        "order",
    ),
    Precondition(
        "cluster-provider",
        ("kubernetes:*",),
        "Kubernetes objects need an explicit provider built from their cluster; the default "
        "provider deploys to whatever cluster the local kubeconfig names.",
        "https://www.pulumi.com/registry/packages/kubernetes/installation-configuration/",
        "order",
    ),
    Precondition(
        "gpu-pool-for-toleration",
        _WORKLOADS,
        "Pods that tolerate the GPU taint are meant for GPU nodes; without a pool carrying the "
        "taint on their cluster they stay Pending (Helm release values are not judged).",
        "https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/; "
        "components/gpu_node_pool.py",
        "presence",
    ),
    Precondition(
        "workload-identity-pool",
        ("gcp:*:*IAMMember", "gcp:*:*IAMBinding"),
        "A Workload Identity member names the project's identity pool, which exists only once "
        "a cluster with Workload Identity does.",
        "https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity",
        "order",
    ),
    Precondition(
        "irsa-oidc-provider",
        ("aws:iam/role:Role",),
        "IAM refuses a trust policy whose Federated principal is an OIDC provider that does "
        "not exist yet.",
        "https://docs.aws.amazon.com/eks/latest/userguide/enable-iam-roles-for-service-accounts.html",
        "order",
    ),
    Precondition(
        "cmek-key-grant",
        tuple(CMEK_KEYS),
        "GCS and GKE refuse a CMEK key that their service agent cannot use, so the agent's "
        "encrypter/decrypter grant on the key must come first.",
        "https://cloud.google.com/storage/docs/encryption/using-customer-managed-keys; "
        "https://cloud.google.com/kubernetes-engine/docs/how-to/encrypting-secrets",
        "order",
    ),
    Precondition(
        "s3-object-after-bucket-settings",
        ("aws:s3/bucketObjectv2:BucketObjectv2",),
        "Default encryption and the bucket policy apply only to uploads after they are set; "
        "earlier objects are written without them.",
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-encryption.html",
        "order",
    ),
    Precondition(
        "network-policy-enforced",
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy",),
        "A NetworkPolicy is accepted on any cluster but enforced only by a policy-enforcing "
        "dataplane: GKE Dataplane V2, or EKS's vpc-cni with enableNetworkPolicy.",
        "https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2; "
        "https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html",
        "presence",
    ),
    Precondition(
        "metrics-adapter",
        (
            "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
            "kubernetes:autoscaling/v2beta2:HorizontalPodAutoscaler",
        ),
        "An HPA on pods, object or external metrics reads them from the custom or external "
        "metrics API, which only an adapter serves.",
        "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/"
        "#support-for-metrics-apis; https://github.com/kubernetes-sigs/prometheus-adapter",
        "order",
    ),
    Precondition(
        "job-node-autoscaler",
        ("kubernetes:batch/v1:Job",),
        "EKS managed node groups do not scale by themselves: a Job pinned to pools that can be "
        "at zero nodes waits forever without a node autoscaler (GKE: the pool's autoscaling).",
        "https://docs.aws.amazon.com/eks/latest/best-practices/cas.html; "
        "https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-autoscaler; "
        "https://www.pulumi.com/registry/packages/kubernetes/api-docs/batch/v1/job/",
        "presence",
    ),
)


# --- the replay ----------------------------------------------------------------------------


def replay(evaluation: StackEvaluation) -> list[UnmetPrecondition]:
    """Every precondition a resource of the stack would find unmet when the engine creates it."""
    return replay_resources(evaluation.resources, preinstalled=preinstalled(evaluation.config))


def replay_resources(
    resources: Sequence[MockedResource],
    preconditions: Sequence[Precondition] = PRECONDITIONS,
    preinstalled: Preinstalled = NOTHING_PREINSTALLED,
) -> list[UnmetPrecondition]:
    """The replay over any set of resources and rows (the table's own tests use small ones)."""
    unmet = [
        UnmetPrecondition(
            row.id,
            None,
            f"precondition '{row.id}' has no check: write one in policy/deploy_order.py",
        )
        for row in preconditions
        if row.check is None
    ]
    graph = Graph(resources, preinstalled)
    for resource in graph.engine_order():
        for row in preconditions:
            check = row.check
            if check is None or not row.applies(resource.type):
                continue
            try:
                messages = list(check(resource, graph))
            except CannotJudge as error:
                messages = [f"cannot be judged for '{row.id}': {error}; teach the check this type"]
            unmet += [
                UnmetPrecondition(row.id, resource.urn, f"{label(resource)} {m}") for m in messages
            ]
    return unmet


def label(resource: MockedResource) -> str:
    """``Kind namespace/name (urn ...)`` for Kubernetes objects, ``Type name (urn ...)`` else."""
    kind = resource.type.rsplit(":", 1)[-1]
    name, namespace = (
        _get(resource.inputs, "metadata", "name"),
        _get(resource.inputs, "metadata", "namespace"),
    )
    if not isinstance(name, str):
        name = resource.name
    elif isinstance(namespace, str):
        name = f"{namespace}/{name}"
    return f"{kind} {name} (urn {resource.urn})"


# --- reading resources ---------------------------------------------------------------------


@dataclass(frozen=True)
class KubeKind:
    group: str
    """``""`` for the core group."""
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.api_version} {self.kind}"


def kube_kind(resource: MockedResource) -> KubeKind:
    """Group, version and kind of a Kubernetes object, from its type token (``core/v1``)."""
    module, kind = resource.type.removeprefix("kubernetes:").rsplit(":", 1)
    if resource.type == GENERIC_CUSTOM_RESOURCE:
        api_version, named = resource.inputs.get("apiVersion"), resource.inputs.get("kind")
        if not isinstance(api_version, str) or not isinstance(named, str):
            raise CannotJudge("a CustomResource whose apiVersion and kind are not known")
        module, kind = api_version, named
    group, _, version = module.rpartition("/")
    if not version:
        raise CannotJudge(f"the type token {resource.type} names no API version")
    return KubeKind("" if group == "core" else group, version, kind)


def _kubernetes_role(resource: MockedResource) -> Literal["object", "release", "component"]:
    """What a ``kubernetes:*`` resource is: an API object, a Helm release, or a local component
    (whose children are the objects)."""
    if resource.type in OPAQUE_KUBERNETES:
        raise CannotJudge("a remote component, which the mocks see as one opaque resource")
    if not resource.custom:
        return "component"
    return "release" if resource.type == HELM_RELEASE else "object"


def _installs(installer: MockedResource, kind: KubeKind) -> bool:
    inputs = installer.inputs
    if installer.type == HELM_RELEASE:
        shipped = CHART_CRDS.get(str(inputs.get("chart")), frozenset())
        return inputs.get("skipCrds") is not True and (kind.api_version, kind.kind) in shipped
    versions = _get(inputs, "spec", "versions")
    return (
        _get(inputs, "spec", "group") == kind.group
        and _get(inputs, "spec", "names", "kind") == kind.kind
        and isinstance(versions, list)
        and any(_get(v, "name") == kind.version for v in versions)
    )


def _creates_namespace(creator: MockedResource, namespace: str) -> bool:
    if creator.type == HELM_RELEASE:
        inputs = creator.inputs
        return inputs.get("createNamespace") is True and inputs.get("namespace") == namespace
    return _get(creator.inputs, "metadata", "name") == namespace


def _releases(
    graph: Graph, resource: MockedResource, charts: Sequence[str]
) -> list[MockedResource]:
    """Helm releases of exactly these charts on ``resource``'s cluster."""
    cluster = graph.cluster(resource)
    return [r for r in graph.on_cluster(cluster, HELM_RELEASE) if r.inputs.get("chart") in charts]


def _pod_spec(resource: MockedResource) -> dict[str, Any] | None:
    """The pod template's spec; None while it is unknown (preview)."""
    if resource.type not in POD_SPECS:
        raise CannotJudge(f"no pod template path for {resource.type}")
    spec = _get(resource.inputs, *POD_SPECS[resource.type])
    return spec if isinstance(spec, dict) else None


def _node_pools(graph: Graph, cluster: MockedResource) -> list[MockedResource]:
    return graph.on_cluster(cluster, EKS_NODE_GROUP, GKE_NODE_POOL)


def _pool_config(pool: MockedResource) -> dict[str, Any]:
    """Where a pool keeps its labels and taints: the node group itself, or GKE's nodeConfig."""
    config = pool.inputs.get("nodeConfig") if pool.type == GKE_NODE_POOL else pool.inputs
    return config if isinstance(config, dict) else {}


def _pool_taint_keys(pool: MockedResource) -> set[Any]:
    taints = _pool_config(pool).get("taints")
    return {_get(t, "key") for t in taints} if isinstance(taints, list) else set()


def _pool_labels(pool: MockedResource) -> dict[str, Any]:
    labels = _pool_config(pool).get("labels")
    return labels if isinstance(labels, dict) else {}


def _can_be_empty(pool: MockedResource) -> bool:
    """True for a pool that may have no node at all: minimum or starting size 0."""
    if pool.type == EKS_NODE_GROUP:
        sizes = [_get(pool.inputs, "scalingConfig", k) for k in ("minSize", "desiredSize")]
    else:
        sizes = [pool.inputs.get(k) for k in ("nodeCount", "initialNodeCount")]
        sizes += [
            _get(pool.inputs, "autoscaling", k) for k in ("totalMinNodeCount", "minNodeCount")
        ]
    return 0 in sizes


def _gke_autoscaled(pool: MockedResource) -> bool:
    autoscaling = pool.inputs.get("autoscaling")
    limits = [_get(autoscaling, k) for k in ("totalMaxNodeCount", "maxNodeCount")]
    return any(isinstance(n, int) and n > 0 for n in limits)


def _node_selection(spec: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The pod's nodeSelector and its required node-affinity terms (any one must match)."""
    selector = spec.get("nodeSelector")
    terms = _get(
        spec,
        "affinity",
        "nodeAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "nodeSelectorTerms",
    )
    return (selector if isinstance(selector, dict) else {}), (
        terms if isinstance(terms, list) else []
    )


def _selects(selector: dict[str, Any], terms: list[Any], labels: dict[str, Any]) -> bool:
    if any(labels.get(key) != value for key, value in selector.items()):
        return False
    return not terms or any(_term_matches(term, labels) for term in terms)


def _term_matches(term: Any, labels: dict[str, Any]) -> bool:
    if _get(term, "matchFields"):
        raise CannotJudge("node affinity on matchFields (node names), not labels")
    expressions = _get(term, "matchExpressions")
    return all(
        _expression_matches(e, labels)
        for e in (expressions if isinstance(expressions, list) else [])
    )


def _expression_matches(expression: Any, labels: dict[str, Any]) -> bool:
    key, operator = _get(expression, "key"), _get(expression, "operator")
    values = _get(expression, "values") or []
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    raise CannotJudge(f"node affinity operator {operator!r}")


def _federated_oidc_principals(document: dict[str, Any]) -> list[str]:
    statements = document.get("Statement")
    federated: list[Any] = []
    for statement in statements if isinstance(statements, list) else [statements]:
        principal = _get(statement, "Principal", "Federated")
        federated += principal if isinstance(principal, list) else [principal]
    return [p for p in federated if isinstance(p, str) and ":oidc-provider/" in p]


def _names_key(grant: MockedResource, key: Any, keys: list[MockedResource]) -> bool:
    granted = grant.inputs.get("cryptoKeyId")
    if isinstance(key, str) and isinstance(granted, str):
        return granted == key
    return any(k.urn in grant.dependencies for k in keys)


def _grants_agent(grant: MockedResource, agent_domain: str) -> bool:
    """Whether the grant names the service agent; a member still unknown (preview) may."""
    members = grant.inputs.get("members", [grant.inputs.get("member")])
    members = members if isinstance(members, list) else [members]
    return any(
        m is UNKNOWN or (isinstance(m, str) and m.endswith("@" + agent_domain)) for m in members
    )


def _enables_network_policy(configuration_values: Any) -> bool:
    if not isinstance(configuration_values, str):
        return False
    try:
        values = json.loads(configuration_values)
    except ValueError:
        return False
    return isinstance(values, dict) and values.get("enableNetworkPolicy") == "true"


def _get(value: Any, *path: str) -> Any:
    """The value at ``path`` through nested mappings; None where a step is missing, UNKNOWN
    where a step is not known yet."""
    for key in path:
        if value is UNKNOWN:
            return UNKNOWN
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
