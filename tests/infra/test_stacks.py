"""The whole program for dev, staging and prod under mocks: how the stack composes the
components from its config and what it exports. What one component does with its args is
tested next to it, in tests/components/."""

import json
from collections import Counter

from components.private_cluster import is_internal
from infra.offline import MockedResource, StackEvaluation


def only(resources: list[MockedResource], what: str) -> MockedResource:
    assert len(resources) == 1, f"expected one {what}, found {[r.name for r in resources]}"
    return resources[0]


# --- the graph as a whole ----------------------------------------------------------------


def test_urns_are_unique(stack_evaluation: StackEvaluation) -> None:
    duplicates = [u for u, n in Counter(r.urn for r in stack_evaluation.resources).items() if n > 1]
    assert not duplicates, f"{stack_evaluation.stack}: URNs registered twice: {duplicates}"


def test_every_cloud_resource_uses_an_explicit_provider(stack_evaluation: StackEvaluation) -> None:
    providers = {r.urn for r in stack_evaluation.resources if r.type.startswith("pulumi:providers")}
    for resource in stack_evaluation.resources:
        if resource.custom and not resource.type.startswith("pulumi:providers:"):
            package = resource.type.split(":", 1)[0]
            if package in ("random", "tls"):
                continue  # local-only packages: the default provider is the right one
            assert resource.provider in providers, (
                f"{resource.name} ({resource.type}) uses the default provider; "
                "pass the stack's provider through the component's opts"
            )


def test_every_cloud_resource_belongs_to_a_component(stack_evaluation: StackEvaluation) -> None:
    components = {r.urn for r in stack_evaluation.resources if not r.custom}
    loose = [
        r.name
        for r in stack_evaluation.resources
        if r.custom and not r.type.startswith("pulumi:providers:") and r.parent not in components
    ]
    assert not loose, f"resources created outside any component: {loose}"


def test_the_mocks_fabricate_outputs_for_every_type(stack_evaluation: StackEvaluation) -> None:
    from infra.offline import fabricated_types

    cloud = [r for r in stack_evaluation.resources if not r.type.startswith("kubernetes:")]
    missing = {r.type for r in cloud if r.custom} - fabricated_types()
    assert not missing, f"infra/offline has no fabricator for {sorted(missing)}"


def test_no_deprecation_warnings(stack_evaluation: StackEvaluation) -> None:
    assert not [w for w in stack_evaluation.warnings if "deprecat" in w.lower()]


# --- the VPN between the networks --------------------------------------------------------


def test_the_vpn_joins_the_networks_the_config_names(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    config = ev.config
    tgw = only(ev.of_type("aws:ec2transitgateway/transitGateway:TransitGateway"), "TGW")
    assert tgw.inputs["amazonSideAsn"] == config.public.asn
    router = only([r for r in ev.of_type("gcp:compute/router:Router") if "bgp" in r.inputs], "BGP")
    assert router.inputs["bgp"]["asn"] == config.private.asn
    assert router.inputs["bgp"]["advertisedIpRanges"] == [
        {"range": config.private.control_plane_cidr}
    ]
    network = only(ev.of_type("gcp:compute/network:Network"), "GCP network")
    assert router.inputs["network"] == network.id
    # Every private route table of the AWS network sends every GCP range to the TGW.
    gcp_ranges = {
        config.private.subnet_cidr,
        config.private.pods_cidr,
        config.private.services_cidr,
        config.private.control_plane_cidr,
    }
    private_tables = {
        r.id for r in ev.of_type("aws:ec2/routeTable:RouteTable") if "private" in r.name
    }
    assert len(private_tables) == len(config.public.availability_zones)
    routes = {
        (r.inputs["routeTableId"], r.inputs["destinationCidrBlock"])
        for r in ev.of_type("aws:ec2/route:Route")
        if r.inputs.get("transitGatewayId") == tgw.id
    }
    assert routes == {(table, cidr) for table in private_tables for cidr in gcp_ranges}
    exported = ev.outputs["vpnTunnels"]
    assert [t["insideCidr"] for t in exported] == list(config.vpn_inside_cidrs)


# --- clusters and their GPU pools ----------------------------------------------------------


def test_the_clusters_take_the_stack_config(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    config = ev.config
    eks = only(ev.of_type("aws:eks/cluster:Cluster"), "EKS cluster")
    assert eks.inputs["vpcConfig"]["publicAccessCidrs"] == list(config.admin_cidrs)
    assert eks.inputs["deletionProtection"] is config.deletion_protection
    entries = ev.of_type("aws:eks/accessEntry:AccessEntry")
    assert sorted(e.inputs["principalArn"] for e in entries) == sorted(config.eks_admin_principals)
    oidc = only(ev.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider"), "OIDC")
    assert ev.outputs["publicOidcIssuer"] == oidc.inputs["url"].removeprefix("https://")

    gke = only(ev.of_type("gcp:container/cluster:Cluster"), "GKE cluster")
    private = gke.inputs["privateClusterConfig"]
    assert private["masterIpv4CidrBlock"] == config.private.control_plane_cidr
    assert gke.inputs["releaseChannel"] == {"channel": config.private.release_channel}
    assert gke.inputs["deletionProtection"] is config.deletion_protection
    assert gke.inputs["resourceLabels"]["stack"] == ev.stack
    assert gke.inputs["workloadIdentityConfig"] == {
        "workloadPool": f"{config.private.project}.svc.id.goog"
    }


def test_gke_authorises_the_aws_vpc_and_internal_admin_ranges_only(
    stack_evaluation: StackEvaluation,
) -> None:
    ev = stack_evaluation
    gke = only(ev.of_type("gcp:container/cluster:Cluster"), "GKE cluster")
    networks = [b["cidrBlock"] for b in gke.inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]]
    internal_admins = [c for c in ev.config.admin_cidrs if is_internal(c)]
    assert networks == [ev.config.public.vpc_cidr, *internal_admins]


def test_one_gpu_pool_per_configured_pool(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    groups = {
        g.name: g
        for g in ev.of_type("aws:eks/nodeGroup:NodeGroup")
        if "NVIDIA" in g.inputs["amiType"]
    }
    assert sorted(groups) == sorted(f"public-{p.name}-nodes" for p in ev.config.public.gpu_pools)
    for pool in ev.config.public.gpu_pools:
        group = groups[f"public-{pool.name}-nodes"]
        assert group.inputs["labels"]["hybrid.dev/accelerator"] == pool.gpu.name
        assert group.inputs["instanceTypes"] == [pool.machine_type]
        assert group.inputs["capacityType"] == ("SPOT" if pool.spot else "ON_DEMAND")
        assert group.inputs["scalingConfig"] == {
            "minSize": pool.min_size, "maxSize": pool.max_size, "desiredSize": pool.desired_size,
        }  # fmt: skip

    node_pools = {
        p.name: p
        for p in ev.of_type("gcp:container/nodePool:NodePool")
        if p.inputs["nodeConfig"]["guestAccelerators"]
    }
    assert sorted(node_pools) == sorted(
        f"private-{p.name}-nodes" for p in ev.config.private.gpu_pools
    )
    for pool in ev.config.private.gpu_pools:
        node_pool = node_pools[f"private-{pool.name}-nodes"]
        (accelerator,) = node_pool.inputs["nodeConfig"]["guestAccelerators"]
        assert accelerator["type"] == pool.gpu.gcp_accelerator
        assert accelerator["count"] == pool.gpus_per_node
        assert node_pool.inputs["nodeConfig"]["machineType"] == pool.machine_type
        assert node_pool.inputs["nodeConfig"]["spot"] is pool.spot
        assert node_pool.inputs["autoscaling"]["totalMaxNodeCount"] == pool.max_size


# --- buckets -----------------------------------------------------------------------------


def test_logs_expire_and_incomplete_uploads_are_aborted(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    rules = {
        r.name: r.inputs["rules"]
        for r in ev.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    }
    log_rules = only([v for k, v in rules.items() if k.endswith("-logs-lifecycle")], "log rules")
    assert log_rules[0]["expiration"] == {"days": ev.config.log_retention_days}
    repository = only([v for k, v in rules.items() if "repository" in k], "repository rules")
    abort = [r for r in repository if "abortIncompleteMultipartUpload" in r]
    assert abort and abort[0]["filter"] == {}, "the whole model bucket aborts stale uploads"
    gcs = only(ev.of_type("gcp:storage/bucket:Bucket"), "GCS bucket")
    actions = [rule["action"]["type"] for rule in gcs.inputs["lifecycleRules"]]
    assert "AbortIncompleteMultipartUpload" in actions


# --- secrets and outputs -----------------------------------------------------------------------


def test_secrets_are_secret(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    assert {"publicKubeconfig", "privateKubeconfig"} <= ev.secret_outputs
    for name, value in ev.outputs.items():
        if "PRIVATE KEY" in json.dumps(value):
            assert name in ev.secret_outputs, f"stack output {name} holds a private key in clear"


def test_stack_outputs(stack_evaluation: StackEvaluation) -> None:
    ev = stack_evaluation
    eks = only(ev.of_type("aws:eks/cluster:Cluster"), "EKS")
    gke = only(ev.of_type("gcp:container/cluster:Cluster"), "GKE")
    assert ev.outputs["publicClusterName"] == eks.outputs["name"] == f"hybrid-{ev.stack}"
    assert ev.outputs["privateClusterName"] == gke.outputs["name"]
    assert ev.outputs["publicBucketUrl"] == f"s3://{ev.outputs['publicBucketName']}"
    assert ev.outputs["privateBucketUrl"] == f"gs://{ev.outputs['privateBucketName']}"
    ca = only([c for c in ev.of_type("tls:index/selfSignedCert:SelfSignedCert")], "CA")
    assert ca.inputs["isCaCertificate"] is True
    assert ev.outputs["caCertPem"] == ca.outputs["certPem"]
    kubeconfig = json.loads(ev.outputs["publicKubeconfig"])
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:4] == [
        "eks",
        "get-token",
        "--cluster-name",
        eks.outputs["name"],
    ]


def test_the_private_site_client_certificate_is_exported_as_secret(
    stack_evaluation: StackEvaluation,
) -> None:
    ev = stack_evaluation
    client = only(
        [
            c
            for c in ev.of_type("tls:index/locallySignedCert:LocallySignedCert")
            if "client" in c.name
        ],
        "client certificate",
    )
    assert ev.outputs["clientCertPem"] == client.outputs["certPem"]
    assert "PRIVATE KEY" in ev.outputs["clientKeyPem"]
    assert {"clientCertPem", "clientKeyPem"} <= ev.secret_outputs


def test_prod_is_larger_and_protected(evaluate) -> None:  # type: ignore[no-untyped-def]
    dev, prod = evaluate("dev"), evaluate("prod")
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 2
    assert only(prod.of_type("aws:eks/cluster:Cluster"), "EKS").inputs["deletionProtection"] is True
    assert (
        only(dev.of_type("gcp:container/cluster:Cluster"), "GKE").inputs["deletionProtection"]
        is False
    )
    assert len(prod.resources) > len(dev.resources)
